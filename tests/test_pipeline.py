"""Every script end to end through its main(argv), on tiny synthetic songs and tiny models."""
import argparse
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

import autoencode
import autoencode_test
import combine_encoded_test_data
import conv1d_creater
import create_encoded_data
import lstm_creater
import music_generator
from common import audio, datasets, paths, training
from common.codec import TRANSFORMS
from tests.conftest import TINY_SCORE, write_song

SCRIPTS = [combine_encoded_test_data, autoencode, autoencode_test, create_encoded_data, conv1d_creater, lstm_creater,
           music_generator]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda module: module.__name__)
def test_every_script_has_help_that_fits_one_screen(script, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps help to the terminal's width
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--data-dir" in out and "Example:" in out and out.splitlines()[0].endswith(".py [options]")
    assert len(out.splitlines()) <= 60


def test_step_dataset_is_deterministic_split_by_song_and_described(pipeline):
    index = json.loads((paths.steps_dir(pipeline["data"]) / "index.json").read_text())
    assert index["kind"] == "steps" and index["sample_rate"] == 44100 and index["step_frames"] == 11025
    assert sorted(song["song"] for song in index["songs"]) == ["song 0.wav", "song 1.flac", "song 2.ogg"]
    assert [song["split"] for song in index["songs"]].count("validation") == 1
    assert all(song["num_steps"] == 56 for song in index["songs"])  # 14 s = 56 steps
    # Rerunning with the same inputs gives identical arrays (and the old shards are replaced, not piled up).
    combine_encoded_test_data.main(["--data-dir", str(pipeline["data"]), "-q"])
    second = json.loads((paths.steps_dir(pipeline["data"]) / "index.json").read_text())
    assert second["fingerprint"] == index["fingerprint"]
    assert len([p for p in paths.steps_dir(pipeline["data"]).iterdir() if p.is_dir()]) == 1


def test_autoencoder_artifacts_and_record(pipeline):
    models = pipeline["models"]
    for name in ("autoencoder", "encoder", "decoder"):
        assert paths.model_path(models, name).is_file()
    record = json.loads(paths.model_record_path(models, "autoencoder").read_text())
    # The default sparse code has nothing to train (the trained architectures: tests/test_autoencoders.py).
    assert record["arch"] == "sparse" and record["latent_dim"] == 16 and record["epochs_run"] == 0
    # 16 numbers: 2 envelope blocks (16 // 8), then 6 spectral peaks and 2 band levels.
    assert record["sparse_transform"] == TRANSFORMS[0] and record["envelope_blocks"] == 2
    # Even 16 numbers per step reconstruct the validation song audibly.
    assert record["validation"]["snr_db"] > 3


def test_round_trip_writes_wav_and_figures(pipeline, tmp_path):
    out = tmp_path / "round trip.wav"
    figures = autoencode_test.main(pipeline["dirs"] + ["--out", str(out), "-q"])
    samples, rate = soundfile.read(str(out))
    assert rate == 44100 and samples.shape == (56 * audio.STEP_FRAMES, 2)
    assert figures["snr_db"] > 3 and figures["si_sdr_db"] > 0
    # Cross-faded steps: the error is not concentrated at step boundaries (a click would make this >> 1).
    # (The output's own figure varies with the few boundaries of a 14 s song; the benchmark measures it.)
    assert 0.8 < figures["error_boundary_ratio"] < 1.25
    assert out.with_suffix(".png").is_file() and (tmp_path / "round trip_score.png").is_file()


def test_score_dataset_records_its_autoencoder(pipeline):
    index = json.loads((paths.scores_dir(pipeline["data"]) / "index.json").read_text())
    record = json.loads(paths.model_record_path(pipeline["models"], "autoencoder").read_text())
    assert index["autoencoder_fingerprint"] == record["fingerprint"]
    assert index["latent_dim"] == 16 and index["in_steps"] == 40 and index["out_steps"] == 5
    assert all(song["num_windows"] == 56 - 45 + 1 for song in index["songs"])
    score = datasets.load_song_score(paths.scores_dir(pipeline["data"]), index["songs"][0])
    assert score.shape == (56, 16) and np.isfinite(score).all()


def test_the_generators_pool_holds_every_song_with_what_its_steps_sound_like_but_the_seeds_own(pipeline, tmp_path):
    from common import step_features

    folder = paths.scores_dir(pipeline["data"])
    index = json.loads((folder / "index.json").read_text())
    assert index["step_features"] == step_features.VERSION
    fingerprint = index["autoencoder_fingerprint"]
    pool = datasets.song_steps_heard(folder, fingerprint)
    assert pool.scores.shape == (3 * 56, 16) and pool.features.shape == (3 * 56, step_features.SIZE)
    assert pool.seams.shape == (3 * 56, 2, step_features.SEAM_BANDS)
    assert np.array_equal(np.bincount(pool.sources), [56, 56, 56])
    assert pool.starts.tolist() == [0, 56, 112] and pool.lengths.tolist() == [56, 56, 56]
    # What step 4 stored is what the steps sound like, and their seams.
    steps = datasets.load_song_steps(paths.steps_dir(pipeline["data"]), json.loads(
        (paths.steps_dir(pipeline["data"]) / "index.json").read_text())["songs"][0])
    np.testing.assert_allclose(pool.features[:56], step_features.step_features(steps), atol=1e-4)
    np.testing.assert_allclose(pool.seams[:56], step_features.seam_spectra(steps), atol=1e-3)
    # and each step's local beat: the synthetic songs beat every 0.37 s (found as that or a bar of two).
    np.testing.assert_allclose(pool.beats[:56], step_features.song_beats(steps), atol=1e-5)
    bars = pool.beats[:, 0] / 0.37
    assert np.all(np.isin(np.round(bars), [1, 2])) and np.abs(bars - np.round(bars)).max() < 0.03
    assert pool.beats[:, 1].min() > 0.3
    # A dataset that step 4 made before it stored the beats still loads: its steps are never on a seed's grid.
    older = tmp_path / "scores"
    shutil.copytree(folder, older)
    with np.load(older / index["songs"][0]["file"]) as arrays:
        kept = {name: arrays[name] for name in arrays.files if name != "beats"}
    np.savez(older / index["songs"][0]["file"], **kept)
    assert datasets.song_steps_heard(older, fingerprint).beats is None
    # The seed's own song ("song 1.flac" seeded as "song 1") stays out.
    without = datasets.song_steps_heard(folder, fingerprint, leave_out="song 1")
    assert len(without.sources) == 2 * 56 and 1 not in set(without.sources.tolist())
    assert without.starts.tolist() == [0, 56]
    # The score models' splits: the validation song alone, the others for training.
    splits = {split: datasets.songs_heard(folder, index, split) for split in ("train", "validation")}
    validation = [number for number, song in enumerate(index["songs"]) if song["split"] == "validation"]
    assert set(splits["validation"].sources.tolist()) == set(validation) and len(splits["train"].sources) == 2 * 56


@pytest.fixture(scope="module")
def score_models(pipeline):
    """Both tiny score models trained for one epoch; their main() return values are the validation ranking."""
    one_epoch = TINY_SCORE + ["--epochs", "1"]
    return {"conv1d": conv1d_creater.main(pipeline["dirs"] + one_epoch + ["--filters", "8"]),
            "lstm": lstm_creater.main(pipeline["dirs"] + one_epoch + ["--units", "8"])}


def check_score_model_record(models_dir, name, figures, epochs):
    from common import score_models as shared
    from common import step_features

    record = json.loads(paths.model_record_path(models_dir, name).read_text())
    assert record["output"] == shared.OUTPUT and record["step_features"] == step_features.VERSION
    assert record["in_steps"] == 40 and record["out_steps"] == 5 and record["latent_dim"] == 16
    assert record["epochs_run"] == epochs and record["validation_ranking"] == figures
    assert set(figures) == {"model", "last step", "mean step", "continuity", "history"}
    for summary in figures.values():
        assert summary["queries"] == 3  # the 14-s validation song: windows at steps 40, 44 and 48
        assert 0 <= summary["top1"] <= summary["top5"] <= 1 and summary["top1"] <= summary["mrr"] <= 1
    # Nothing of the score models that predicted a Gaussian over the score.
    assert not {"validation", "residual_std", "nll_beta"} & (set(record) | set(record["args"]))
    return record


@pytest.mark.parametrize("name", ["conv1d", "lstm"])
def test_score_models_train_and_record_the_what_comes_next_test(pipeline, score_models, name):
    check_score_model_record(pipeline["models"], name, score_models[name], epochs=1)
    assert paths.model_path(pipeline["models"], name).is_file()
    assert paths.loss_plot_path(pipeline["models"], name).is_file()


def test_epochs_0_saves_the_untrained_score_models_which_are_their_experts_alone(pipeline, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(pipeline["models"], models,
                    ignore=shutil.ignore_patterns("logs", "checkpoints", "conv1d*", "lstm*"))
    dirs = ["--data-dir", str(pipeline["data"]), "--models-dir", str(models)]
    untrained = {"conv1d": conv1d_creater.main(dirs + TINY_SCORE + ["--epochs", "0", "--filters", "8"]),
                 "lstm": lstm_creater.main(dirs + TINY_SCORE + ["--epochs", "0", "--units", "8"])}
    out = capsys.readouterr().out
    for name, figures in untrained.items():
        check_score_model_record(models, name, figures, epochs=0)
        assert paths.model_path(models, name).is_file()
    # The summary's line: the model's top-1 beside each simple scorer's.
    assert out.count("ranked first among 25 places of the same validation song") == 2
    # Both bodies' last layers start at zero: untrained, both models are the same experts, ranked alike.
    assert untrained["conv1d"] == untrained["lstm"]


@pytest.mark.parametrize("model", ["lstm", "conv1d"])
def test_generator_writes_a_continuation_of_the_requested_length(pipeline, score_models, tmp_path, model):
    seed = tmp_path / "seed song é.flac"
    write_song(seed, seconds=12, seed=7)
    out = tmp_path / "continued.wav"
    args = pipeline["dirs"] + ["--seed-file", str(seed), "--seconds", "3.3", "--model", model, "-q"]
    figures = music_generator.main(args + ["--out", str(out)])
    samples, rate = soundfile.read(str(out), dtype="float32")
    assert rate == 44100 and samples.shape == (40 * audio.STEP_FRAMES + int(3.3 * 44100), 2)
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0
    assert np.sqrt(np.mean(samples[-44100:] ** 2)) > 1e-3  # the continuation is not silent
    assert figures["finite"] and figures["peak"] <= 0.99 + 1e-6
    # Same random seed -> same output; continuation-only writes just the new part.
    only = tmp_path / "only.wav"
    music_generator.main(args + ["--out", str(only), "--continuation-only"])
    new_part, _ = soundfile.read(str(only), dtype="float32")
    np.testing.assert_array_equal(new_part, samples[40 * audio.STEP_FRAMES:])


def test_step_4_before_step_2_names_step_2(tmp_path, capsys):
    data = tmp_path / "data"
    write_song(data / "input" / "a.wav", seconds=2)
    combine_encoded_test_data.main(["--data-dir", str(data), "-q"])
    with pytest.raises(SystemExit) as exit_info:
        create_encoded_data.main(["--data-dir", str(data), "--models-dir", str(tmp_path / "models")])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "run autoencode.py first" in error and len(error.splitlines()) == 1


def test_seed_shorter_than_a_window_is_a_clear_error(pipeline, score_models, tmp_path, capsys):
    seed = tmp_path / "short.wav"
    write_song(seed, seconds=5)
    with pytest.raises(SystemExit) as exit_info:
        music_generator.main(pipeline["dirs"] + ["--seed-file", str(seed), "--model", "lstm"])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert "needs 40 steps (10 s) after --offset 0 s, the song has 20 there" in error


def test_training_into_a_file_writes_one_line_per_epoch_and_no_bar_frames(pipeline, tmp_path, capfd):
    root = tmp_path / "copy"
    shutil.copytree(pipeline["data"].parent, root)  # its own models/: the module's score models stay as trained
    dirs = ["--data-dir", str(root / "data"), "--models-dir", str(root / "models")]
    create_encoded_data.main(dirs)  # its tqdm bar goes to stderr, which is not a terminal here either
    conv1d_creater.main(dirs + ["--epochs", "3", "--patience", "3", "--batch-size", "16", "--filters", "8"])
    out, err = capfd.readouterr()
    assert "\r" not in out + err and "\x08" not in out + err  # no frames of a progress bar
    epoch_lines = [line for line in out.splitlines() if "loss" in line and "epoch" in line.lower()]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"], out
    assert "val_loss" in epoch_lines[-1]


def test_epoch_line_and_verbosity_follow_where_stdout_goes():
    line = training.epoch_line(3, 30, {"loss": 0.62331, "val_loss": 0.624, "note": "x"}, 12.04)
    assert line == "epoch 3/30: loss 0.6233, val_loss 0.624 (12.0 s)"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    args = argparse.Namespace(quiet=False)
    assert training.fit_verbosity(args, Terminal()) == "auto" and training.fit_verbosity(args, io.StringIO()) == 0
    assert training.fit_verbosity(argparse.Namespace(quiet=True), Terminal()) == 0


def run_script(name, args):
    """The script as a user runs it: a fresh Python process, so TensorFlow's start-up happens inside it."""
    return subprocess.run([sys.executable, str(paths.REPO_ROOT / f"{name}.py"), *args], capture_output=True,
                          text=True, timeout=600, check=False)


def test_quiet_keeps_only_the_summary_verbose_adds_debug_lines_and_tensorflow_stays_silent(pipeline, tmp_path):
    out = ["--out", str(tmp_path / "trip.wav")]
    default = run_script("autoencode_test", pipeline["dirs"] + out)
    assert default.returncode == 0, default.stderr
    assert "using validation song" in default.stdout  # progress information
    assert "round trip of" in default.stdout and "SNR" in default.stdout and "trip.png" in default.stdout
    assert default.stderr == ""  # no oneDNN / CUDA / absl start-up lines
    quiet = run_script("autoencode_test", pipeline["dirs"] + out + ["-q"])
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("round trip of") and quiet.stdout in default.stdout  # the summary alone
    verbose = run_script("autoencode_test", pipeline["dirs"] + out + ["-v"])
    assert verbose.returncode == 0 and "round trip of" in verbose.stdout
    assert len(verbose.stdout.splitlines()) > len(default.stdout.splitlines())  # debug lines too
