"""Nothing already made is lost when a step is killed (SIGKILL: no cleanup code runs) part-way through.

Each test starts a real script as a subprocess, watches its artifacts appear on disk, kills it mid-run, and
checks what a user would find afterwards.
"""
import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import autoencode
import combine_encoded_test_data
from common import datasets, paths
from tests.conftest import TINY_AE, write_song

POLL_SECONDS = 0.02
TIMEOUT_SECONDS = 60


def start_script(name, args):
    return subprocess.Popen([sys.executable, str(paths.REPO_ROOT / name), *args], cwd=paths.REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def kill_when(process, condition):
    """SIGKILL process as soon as condition() holds; fail if it ended (or took too long) before that."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the script ended before it could be killed:\n{process.stdout.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the script never reached the point where it should be killed")
        time.sleep(POLL_SECONDS)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def dataset_arrays(folder):
    index = datasets.steps_index(folder)
    return {song["song"]: datasets.load_song_steps(folder, song) for song in index["songs"]}


def run_folders(folder):
    return sorted(child.name for child in folder.iterdir() if child.is_dir())


def finished_shards(run_folder):
    return sorted(run_folder.glob("song-*.npz"))  # not the .song-*.tmp.npz being written


def test_killed_step_1_leaves_the_previous_dataset_intact(data_dir):
    folder = paths.steps_dir(data_dir)
    for number in range(3):
        write_song(data_dir / "input" / f"first {number}.wav", seconds=2.0, seed=number)
    combine_encoded_test_data.main(["--data-dir", str(data_dir), "-q"])
    index_bytes, before, [old_run] = (folder / "index.json").read_bytes(), dataset_arrays(folder), run_folders(folder)
    # A second run over many more songs (48 kHz, so each is resampled), killed once it has written a shard.
    write_song(data_dir / "input" / "more 00.wav", seconds=6.0, rate=48000, seed=5)
    for number in range(1, 40):
        shutil.copy(data_dir / "input" / "more 00.wav", data_dir / "input" / f"more {number:02d}.wav")
    process = start_script("combine_encoded_test_data.py", ["--data-dir", str(data_dir), "-q"])
    kill_when(process, lambda: any(finished_shards(folder / run) for run in run_folders(folder) if run != old_run))

    assert (folder / "index.json").read_bytes() == index_bytes
    after = dataset_arrays(folder)
    assert list(after) == ["first 0.wav", "first 1.wav", "first 2.wav"]
    for name, steps in before.items():
        np.testing.assert_array_equal(after[name], steps)
    [new_run] = [run for run in run_folders(folder) if run != old_run]
    assert 1 <= len(finished_shards(folder / new_run)) < 43  # it really was killed part-way
    # The next complete run replaces the dataset and clears away the killed run's shards.
    index = combine_encoded_test_data.main(["--data-dir", str(data_dir), "-q"])
    assert len(index["songs"]) == 43 and len(run_folders(folder)) == 1


def read_history(path):
    with open(path, newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def test_killed_training_resumes_from_its_last_epoch(pipeline, tmp_path, capsys):
    shutil.copytree(pipeline["data"], tmp_path / "data")
    dirs = ["--data-dir", str(tmp_path / "data"), "--models-dir", str(tmp_path / "models")]
    args = dirs + TINY_AE + ["--arch", "dense", "--epochs", "6", "--patience", "100", "--preview-seconds", "0",
                             "--run-name", "run"]
    history = paths.log_dir(tmp_path / "models", "run") / "history.csv"
    backup = paths.checkpoint_dir(tmp_path / "models", "autoencoder")
    process = start_script("autoencode.py", args)
    kill_when(process, lambda: history.is_file() and len(history.read_text().splitlines()) >= 2)
    saved_epoch = json.loads((backup / "training_metadata.json").read_text())["epoch"]  # epochs completed
    before = read_history(history)
    assert 1 <= saved_epoch < 6 and not paths.model_path(tmp_path / "models", "autoencoder").exists()

    # Resuming with a model of another shape is refused in one line, and the backup survives for a proper resume.
    with pytest.raises(SystemExit) as exit_info:
        autoencode.main(args + ["--resume", "--latent-dim", "8"])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: cannot resume: the backup in") and "holds a model of another shape" in error
    assert len(error.splitlines()) == 1

    autoencode.main(args + ["--resume"])
    rows = read_history(history)
    resumed = rows[len(before):]
    # The resumed run did only the epochs that were missing, numbered on from the saved one ...
    assert [row["epoch"] for row in resumed] == list(range(saved_epoch, 6))
    record = json.loads(paths.model_record_path(tmp_path / "models", "autoencoder").read_text())
    assert record["epochs_run"] == 6 - saved_epoch
    # ... starting from the saved weights: a fresh random start (no PCA with --resume) has a far larger loss.
    assert resumed[0]["loss"] < 2 * before[0]["loss"]
    assert not backup.exists()  # finished: the backup is gone


def test_resume_with_nothing_to_resume_starts_from_the_beginning(pipeline, tmp_path, capsys):
    """--resume after a run killed before its first epoch ended: a normal start, PCA included, not a random one."""
    shutil.copytree(pipeline["data"], tmp_path / "data")
    dirs = ["--data-dir", str(tmp_path / "data"), "--models-dir", str(tmp_path / "models")]
    args = dirs + TINY_AE + ["--arch", "dense", "--epochs", "1", "--preview-seconds", "0"]
    figures = autoencode.main(args + ["--resume"])
    out = capsys.readouterr().out
    assert "--resume: no interrupted autoencoder training to continue; starting from the beginning" in out
    assert figures["snr_db"] > 3  # the PCA start; one epoch from random weights stays near 0 dB
