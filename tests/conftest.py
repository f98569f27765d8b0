"""Shared fixtures: synthetic songs written by the tests into temp folders, one tiny pipeline run, and the
README's two commands."""
import os
import re

import numpy as np
import pytest
import soundfile

from common import paths

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests run on the CPU even where a GPU exists

RATE = 44100


def readme_commands():
    """The commands of README.md's first bash block (demo, tests), their trailing `# comments` dropped."""
    block = re.search(r"^```bash\n(.*?)^```", (paths.REPO_ROOT / "README.md").read_text(encoding="utf-8"),
                      re.MULTILINE | re.DOTALL).group(1)
    lines = (re.sub(r"\s+#.*$", "", line).rstrip() for line in block.splitlines())
    return [line for line in lines if line]


def synth_song(seconds, rate=RATE, channels=2, seed=0):
    """A little chord with a beat and a slow pan: deterministic float32 (frames, channels) in [-0.8, 0.8]."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * rate)) / rate
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    tone = sum(np.sin(2 * np.pi * root * ratio * time) / (k + 1) for k, ratio in enumerate((1, 1.25, 1.5, 2)))
    beat = np.exp(-12 * (time % 0.37)) * np.sin(2 * np.pi * 60 * time)  # not on the 1/4-second grid
    mono = tone / 2.5 + 0.5 * beat + 0.02 * rng.standard_normal(len(time))
    pan = 0.5 + 0.4 * np.sin(2 * np.pi * 0.1 * time)
    stereo = np.stack([mono * pan, mono * (1 - pan)] + [mono * 0.5] * (channels - 2), axis=1)
    if channels == 1:
        stereo = mono[:, None]
    return (0.8 * stereo / np.abs(stereo).max()).astype(np.float32)


def write_song(path, seconds=2.0, rate=RATE, channels=2, seed=0, subtype=None, format=None):
    audio = synth_song(seconds, rate, channels, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, rate, subtype=subtype, format=format)
    return audio


@pytest.fixture
def data_dir(tmp_path):
    """An empty data folder with an input/ sub-folder."""
    (tmp_path / "data" / "input").mkdir(parents=True)
    return tmp_path / "data"


TINY_AE = ["--latent-dim", "16", "--epochs", "2", "--pca-segments", "64", "--batch-size", "16", "-q"]
TINY_SCORE = ["--epochs", "2", "--batch-size", "16", "-q"]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """Steps 1, 2 and 4 run once on three 14-second synthetic songs with tiny sizes; tests read the artifacts."""
    import autoencode
    import combine_encoded_test_data
    import create_encoded_data

    root = tmp_path_factory.mktemp("pipeline")
    data, models = root / "data", root / "models"
    for number, fmt in enumerate(("wav", "flac", "ogg")):
        write_song(data / "input" / f"song {number}.{fmt}", seconds=14, seed=number)
    dirs = ["--data-dir", str(data), "--models-dir", str(models)]
    combine_encoded_test_data.main(dirs + ["-q"])
    autoencode.main(dirs + TINY_AE)
    create_encoded_data.main(dirs + ["-q"])
    return {"data": data, "models": models, "dirs": dirs}
