"""Bad input gets one clear line, never a traceback; stale or damaged artifacts name the step to rerun.

Each test goes through a script's main(argv) and checks what the user sees: the warnings on stdout, the one
error line on stderr and the exit status.
"""
import errno
import json
import logging
import shutil
import zipfile

import numpy as np
import pytest
import soundfile

import autoencode
import autoencode_test
import combine_encoded_test_data
import conv1d_creater
import create_encoded_data
import music_generator
from common import artifacts, audio, datasets, paths
from common.errors import AudioError
from common.step_choice import MAX_RUN, MIN_RUN
from tests.conftest import TINY_AE, TINY_SCORE, synth_song, write_song


def run_main(script, args, capsys):
    """(exit status, stdout, stderr) of script.main(args): 0 when it returns."""
    try:
        script.main(args)
        status = 0
    except SystemExit as exit_info:
        status = exit_info.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(status, err, *fragments):
    assert status == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def lines_naming(out, name):
    return [line for line in out.splitlines() if name in line]


def dirs_of(root):
    return ["--data-dir", str(root / "data"), "--models-dir", str(root / "models")]


def copy_pipeline(root, target):
    """A private copy of root's data/ and models/ (without logs), for a test that changes them."""
    shutil.copytree(root / "data", target / "data")
    shutil.copytree(root / "models", target / "models", ignore=shutil.ignore_patterns("logs", "checkpoints"))
    return target


def cut(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- step 1: the input folder

def test_missing_input_folder_is_one_line(tmp_path, capsys):
    status, _, err = run_main(combine_encoded_test_data, ["--data-dir", str(tmp_path / "nowhere")], capsys)
    assert_one_error_line(status, err, "input folder", "does not exist: put your songs there")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "input").write_text("a file where the folder should be")
    status, _, err = run_main(combine_encoded_test_data, ["--data-dir", str(tmp_path / "data")], capsys)
    assert_one_error_line(status, err, "input folder", "is a file, not a folder")


def test_folder_without_songs_names_each_file_and_fails(data_dir, capsys):
    (data_dir / "input" / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data_dir / "input" / "notes.txt").write_text("lyrics")
    status, out, err = run_main(combine_encoded_test_data, ["--data-dir", str(data_dir)], capsys)
    assert_one_error_line(status, err, "no audio files in", "put songs")
    for name in ("cover.jpg", "notes.txt"):
        assert lines_naming(out, name) == [f"skipped {name}: not an audio file extension"]
    assert not paths.steps_dir(data_dir).exists()


def write_unusable_songs(folder):
    """One file for every way a song can be unusable; returns {file name: the reason its warning gives}."""
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    (folder / "notes.txt").write_text("verse, chorus, verse")
    (folder / "notes.mp3").write_text("an audio extension, but text inside\n" * 20)
    (folder / "empty.ogg").write_bytes(b"")
    soundfile.write(str(folder / "silence.wav"), np.zeros((44100, 2), np.float32), 44100)
    soundfile.write(str(folder / "tick.wav"), synth_song(0.1), 44100)  # shorter than one 1/4-second step
    for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        song = synth_song(1.0)
        song[1000, 1] = value
        soundfile.write(str(folder / name), song, 44100, subtype="FLOAT")
    return {
        "cover.jpg": "not an audio file extension", "notes.txt": "not an audio file extension",
        "notes.mp3": "not readable as audio (format not recognised)", "empty.ogg": "empty file (0 bytes)",
        "silence.wav": "pure silence", "tick.wav": "shorter than one step (0.25 s)",
        "nan.wav": "contains NaN or infinite samples", "inf.wav": "contains NaN or infinite samples",
    }


def test_unusable_songs_are_skipped_with_one_warning_each(data_dir, capsys):
    expected = write_unusable_songs(data_dir / "input")
    write_song(data_dir / "input" / "good one.wav", seconds=2.0)
    write_song(data_dir / "input" / "good two.flac", seconds=1.5, seed=1)
    status, out, err = run_main(combine_encoded_test_data, ["--data-dir", str(data_dir)], capsys)
    assert status == 0 and err == ""
    for name, reason in expected.items():
        [line] = lines_naming(out, name)
        assert line == f"skipped {name}: {reason}"
    assert "2 of 8 songs used (6 skipped, see the warnings above); 2 files that are not audio ignored" in out
    index = datasets.steps_index(paths.steps_dir(data_dir))
    assert [song["song"] for song in index["songs"]] == ["good one.wav", "good two.flac"]
    assert [song["num_steps"] for song in index["songs"]] == [8, 6]
    recorded = {entry["song"]: entry["reason"] for entry in index["skipped"]}
    assert recorded == {name: reason for name, reason in expected.items() if not name.endswith((".jpg", ".txt"))}


def test_nothing_usable_fails_in_one_line_and_keeps_the_previous_dataset(data_dir, capsys):
    write_song(data_dir / "input" / "good.wav", seconds=1.0)
    combine_encoded_test_data.main(["--data-dir", str(data_dir), "-q"])
    before = (paths.steps_dir(data_dir) / "index.json").read_bytes()
    runs_before = sorted(p.name for p in paths.steps_dir(data_dir).iterdir())
    (data_dir / "input" / "good.wav").unlink()
    write_unusable_songs(data_dir / "input")
    status, out, err = run_main(combine_encoded_test_data, ["--data-dir", str(data_dir)], capsys)
    assert_one_error_line(status, err, "none of the 6 files", "is usable audio (see the warnings above)")
    assert len([line for line in out.splitlines() if line.startswith("skipped ")]) == 8
    assert (paths.steps_dir(data_dir) / "index.json").read_bytes() == before
    assert sorted(p.name for p in paths.steps_dir(data_dir).iterdir()) == runs_before  # failed run cleaned up


def test_full_disk_is_one_line_and_keeps_the_previous_dataset(data_dir, capsys, monkeypatch):
    write_song(data_dir / "input" / "a.wav", seconds=1.0)
    write_song(data_dir / "input" / "b.wav", seconds=1.0, seed=1)
    combine_encoded_test_data.main(["--data-dir", str(data_dir), "-q"])
    folder = paths.steps_dir(data_dir)
    index_bytes, runs_before = (folder / "index.json").read_bytes(), sorted(p.name for p in folder.iterdir())
    write_npz = artifacts.write_npz

    def disk_fills_up_after_one_shard(path, **arrays):
        if any(path.parent.glob("song-*.npz")):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write_npz(path, **arrays)

    monkeypatch.setattr(artifacts, "write_npz", disk_fills_up_after_one_shard)
    status, _, err = run_main(combine_encoded_test_data, ["--data-dir", str(data_dir)], capsys)
    assert_one_error_line(status, err, "error: No space left on device: ", "song-00001.npz")
    assert (folder / "index.json").read_bytes() == index_bytes
    assert sorted(p.name for p in folder.iterdir()) == runs_before  # the half-written run is gone


@pytest.mark.parametrize("name, subtype", [("cut.wav", "PCM_16"), ("cut.aiff", "PCM_16"), ("cut.flac", "PCM_16"),
                                           ("cut.ogg", "VORBIS"), ("cut.mp3", "MPEG_LAYER_III")])
def test_truncated_song_keeps_the_part_that_decodes_with_one_warning(tmp_path, caplog, capfd, name, subtype):
    """Policy: a file cut short (an interrupted download) is used up to where it decodes, with a warning."""
    whole = tmp_path / f"whole{name[3:]}"
    write_song(whole, seconds=4.0, subtype=subtype)
    full = audio.load_audio(whole)
    shutil.copy(whole, tmp_path / name)
    cut(tmp_path / name, 0.6)
    with caplog.at_level(logging.WARNING, logger="common.audio"):
        loaded = audio.load_audio(tmp_path / name)
    assert 0.5 * len(full) < len(loaded) < 0.62 * len(full)
    np.testing.assert_array_equal(loaded, full[: len(loaded)])  # exactly the start of the song
    [record] = caplog.records
    assert record.getMessage().startswith(f"{name}: cut short (") and "s that decode" in record.getMessage()
    native = capfd.readouterr().err  # what the C decoders print on their own (mpg123: "Warning: Xing stream ...")
    assert "Xing" not in native and "Note:" not in native


@pytest.mark.parametrize("name, subtype, keep", [("early.flac", "PCM_16", 0.05), ("early.ogg", "VORBIS", 0.1),
                                                 ("early.mp3", "MPEG_LAYER_III", 0.01)])
def test_song_cut_before_any_audio_is_unreadable(tmp_path, name, subtype, keep):
    write_song(tmp_path / name, seconds=4.0, subtype=subtype)
    cut(tmp_path / name, keep)
    with pytest.raises(AudioError, match=f"^{name}: (not readable as audio|no audio samples) \\("):
        audio.load_audio(tmp_path / name)


def test_truncated_song_in_step_1_is_used_with_a_warning(data_dir, capsys):
    write_song(data_dir / "input" / "whole.wav", seconds=3.0)
    write_song(data_dir / "input" / "cut.mp3", seconds=4.0, subtype="MPEG_LAYER_III", seed=1)
    cut(data_dir / "input" / "cut.mp3", 0.5)
    status, out, _ = run_main(combine_encoded_test_data, ["--data-dir", str(data_dir)], capsys)
    assert status == 0 and "2 of 2 songs used;" in out
    [warning] = lines_naming(out, "cut.mp3")
    assert warning.startswith("cut.mp3: cut short (its header announces 4.0 s); using the ")
    index = datasets.steps_index(paths.steps_dir(data_dir))
    assert {song["song"]: song["num_steps"] for song in index["songs"]} == {"whole.wav": 12, "cut.mp3": 7}


def test_rates_channels_sample_types_and_names_all_become_steps(data_dir, capsys):
    folder = data_dir / "input"
    write_song(folder / "mono 8 kHz ünsigned 8-bit.wav", seconds=3.0, rate=8000, channels=1, subtype="PCM_U8")
    write_song(folder / "six channels 96 kHz 24-bit.wav", seconds=3.0, rate=96000, channels=6, subtype="PCM_24")
    write_song(folder / "日本語 22.05 kHz.flac", seconds=3.0, rate=22050, seed=2)
    soundfile.write(str(folder / "float 48 kHz loud.wav"), 2.5 * synth_song(3.0, rate=48000), 48000, subtype="FLOAT")
    time = np.arange(3 * 48000) / 48000  # a full-scale square wave: resampling rings above 1.0, the file does not
    square = np.sign(np.sin(2 * np.pi * 441 * time))[:, None].repeat(2, axis=1)
    soundfile.write(str(folder / "square 48 kHz.wav"), square, 48000, subtype="PCM_16")
    status, out, err = run_main(combine_encoded_test_data, ["--data-dir", str(data_dir)], capsys)
    assert status == 0 and err == "" and "5 of 5 songs used;" in out
    # Only the float file that really goes beyond full scale is mentioned.
    warnings = [line for line in out.splitlines() if "full scale" in line]
    assert warnings == ["float 48 kHz loud.wav: peak 2 is beyond full scale; scaled down to 1.0"]
    folder = paths.steps_dir(data_dir)
    index = datasets.steps_index(folder)
    steps = {song["song"]: datasets.load_song_steps(folder, song) for song in index["songs"]}
    assert all(len(song) == 12 for song in steps.values())  # 3 s at any rate = 12 steps at 44.1 kHz
    assert all(np.abs(song).max() <= 1.0 for song in steps.values())
    assert np.abs(steps["float 48 kHz loud.wav"]).max() > 0.99  # scaled to full scale, not clipped or lost
    mono = steps["mono 8 kHz ünsigned 8-bit.wav"]
    assert np.array_equal(mono[..., 0], mono[..., 1]) and np.abs(mono).max() > 0.5


def test_opus_songs_at_48_khz_are_resampled_into_steps(data_dir, capsys):
    # 5 s at 48 kHz: 20 steps once resampled to 44.1 kHz; 21 if its frames were taken as 44.1 kHz ones.
    soundfile.write(str(data_dir / "input" / "song.opus"), synth_song(5.0, rate=48000), 48000,
                    format="OGG", subtype="OPUS")
    (data_dir / "input" / "broken.opus").write_text("not an opus stream\n" * 20)
    status, out, err = run_main(combine_encoded_test_data, ["--data-dir", str(data_dir)], capsys)
    assert status == 0 and err == "", err
    assert lines_naming(out, "broken.opus") == ["skipped broken.opus: not readable as audio (format not recognised)"]
    index = datasets.steps_index(paths.steps_dir(data_dir))
    assert [(song["song"], song["num_steps"]) for song in index["songs"]] == [("song.opus", 20)]


# ---------------------------------------------------------------- steps 4 and 7 need trained models

@pytest.fixture(scope="module")
def trained(pipeline, tmp_path_factory):
    """A private copy of the session pipeline with a tiny conv1d score model trained on it."""
    root = copy_pipeline(pipeline["data"].parent, tmp_path_factory.mktemp("trained"))
    conv1d_creater.main(dirs_of(root) + TINY_SCORE + ["--filters", "8"])
    return root


def generate(root, seed_args, capsys):
    args = dirs_of(root) + seed_args + ["--model", "conv1d", "--seconds", "1", "-q"]
    return run_main(music_generator, args + ["--out", str(root / "out.wav")], capsys)


def test_seed_file_mistakes_are_one_line(trained, tmp_path, capsys):
    status, _, err = generate(trained, ["--seed-file", str(tmp_path / "missing song.ogg")], capsys)
    assert_one_error_line(status, err, "missing song.ogg: file not found")
    (tmp_path / "lyrics.mp3").write_text("not audio\n" * 50)
    status, _, err = generate(trained, ["--seed-file", str(tmp_path / "lyrics.mp3")], capsys)
    assert_one_error_line(status, err, "lyrics.mp3: not readable as audio (format not recognised)")
    write_song(tmp_path / "twelve seconds.wav", seconds=12.0)
    status, _, err = generate(trained, ["--seed-file", str(tmp_path / "twelve seconds.wav"), "--offset", "3"], capsys)
    assert_one_error_line(status, err, "twelve seconds", "needs 40 steps", "after --offset 3 s", "has 36 there")
    status, _, err = generate(trained, ["--seed-file", str(tmp_path / "twelve seconds.wav"), "--offset", "-2"], capsys)
    assert_one_error_line(status, err, "--offset must be 0 or more seconds, not -2")
    assert not (trained / "out.wav").exists()


@pytest.mark.parametrize("flag, value", [("--seconds", "0"), ("--temperature", "-1"), ("--level-range", "-1"),
                                         ("--model-weight", "-0.5")])
def test_generation_settings_out_of_range_are_one_line(trained, tmp_path, capsys, flag, value):
    out = tmp_path / "out.wav"
    args = dirs_of(trained) + ["--model", "conv1d", "--seconds", "1", flag, value, "-q", "--out", str(out)]
    status, _, err = run_main(music_generator, args, capsys)
    assert_one_error_line(status, err, "--seconds must be positive, --temperature, --level-range and --model-weight "
                          "at least 0")
    assert not out.exists()


@pytest.mark.parametrize("runs", [["--max-run", "0"], ["--min-run", "0"], ["--min-run", "5", "--max-run", "4"],
                                  ["--min-run", str(MAX_RUN + 1)]])
def test_run_lengths_out_of_order_are_one_line(trained, tmp_path, capsys, runs):
    out = tmp_path / "out.wav"
    args = dirs_of(trained) + ["--model", "conv1d", "--seconds", "1", *runs, "-q", "--out", str(out)]
    status, _, err = run_main(music_generator, args, capsys)
    settings = {"--min-run": MIN_RUN, "--max-run": MAX_RUN, **dict(zip(runs[::2], runs[1::2]))}
    assert_one_error_line(status, err, "--min-run and --max-run need 1 <= min <= max, not "
                          f"{settings['--min-run']} and {settings['--max-run']}")
    assert not out.exists()


def test_round_trip_rejects_a_negative_offset(trained, capsys):
    """A negative offset would silently count from the song's end (numpy slicing)."""
    status, _, err = run_main(autoencode_test, dirs_of(trained) + ["--offset", "-1", "-q"], capsys)
    assert_one_error_line(status, err, "--offset must be 0 or more seconds, not -1")


def test_song_too_short_for_a_window_is_kept_for_seeding_after_rebuilding_steps(trained, tmp_path, capsys):
    """Steps rebuilt from other songs -> step 4 names step 2; after it, the short song only seeds."""
    root = copy_pipeline(trained, tmp_path)
    write_song(root / "data" / "input" / "short.wav", seconds=5.0, seed=9)  # 20 steps < 40 + 5
    combine_encoded_test_data.main(dirs_of(root) + ["-q"])
    status, _, err = run_main(create_encoded_data, dirs_of(root), capsys)
    assert_one_error_line(status, err, "the autoencoder was made from a different", "rerun autoencode.py")
    autoencode.main(dirs_of(root) + TINY_AE + ["--epochs", "1"])
    status, out, err = run_main(create_encoded_data, dirs_of(root), capsys)
    assert status == 0 and err == ""
    assert lines_naming(out, "short.wav") == [
        "short.wav: 20 steps, shorter than one 45-step window; it is kept for seeding only"]
    scores = artifacts.read_dataset_index(paths.scores_dir(root / "data"), "scores")
    windows = {song["song"]: song["num_windows"] for song in scores["songs"]}
    assert windows == {"song 0.wav": 12, "song 1.flac": 12, "song 2.ogg": 12, "short.wav": 0}


def test_only_songs_shorter_than_a_window_is_one_line_at_step_4(tmp_path, capsys):
    for number in range(2):
        write_song(tmp_path / "data" / "input" / f"short {number}.wav", seconds=5.0, seed=number)
    combine_encoded_test_data.main(dirs_of(tmp_path) + ["-q"])
    autoencode.main(dirs_of(tmp_path) + TINY_AE)
    status, out, err = run_main(create_encoded_data, dirs_of(tmp_path), capsys)
    assert_one_error_line(status, err, "no training song is longer than one window (45 steps = 11.25 s)")
    assert len([line for line in out.splitlines() if "kept for seeding only" in line]) == 2
    assert not (paths.scores_dir(tmp_path / "data") / "index.json").exists()


# ---------------------------------------------------------------- stale and mismatched artifacts

def test_autoencoder_retrained_with_another_latent_size_names_what_to_rerun(trained, tmp_path, capsys):
    root = copy_pipeline(trained, tmp_path)
    autoencode.main(dirs_of(root) + TINY_AE + ["--latent-dim", "8", "--epochs", "1"])
    status, _, err = run_main(conv1d_creater, dirs_of(root) + TINY_SCORE, capsys)
    assert_one_error_line(status, err, "the score dataset was made from a different", "rerun create_encoded_data.py")
    seed = tmp_path / "seed.wav"
    write_song(seed, seconds=11.0)
    status, _, err = generate(root, ["--seed-file", str(seed)], capsys)
    assert_one_error_line(status, err, "the conv1d model", "rerun create_encoded_data.py, then conv1d_creater.py")
    # Following the advice works: the score dataset is rebuilt with the new autoencoder's 8 numbers per step.
    assert create_encoded_data.main(dirs_of(root) + ["-q"])["latent_dim"] == 8


def test_encoder_replaced_by_another_model_names_autoencode(trained, tmp_path, capsys):
    root = copy_pipeline(trained, tmp_path)
    shutil.copy(paths.model_path(root / "models", "conv1d"), paths.model_path(root / "models", "encoder"))
    status, _, err = run_main(create_encoded_data, dirs_of(root), capsys)
    assert_one_error_line(status, err, "do not match autoencoder.json: rerun autoencode.py")


# ---------------------------------------------------------------- damaged artifacts: safe loading

def rewrite_keras_archive(path, edit_config):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["config.json"] = json.dumps(edit_config(json.loads(members["config.json"]))).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def with_lambda_layer(config):
    """Swap the encoder's first layer for a Lambda layer carrying Python code: what a malicious file would do."""
    layer = next(layer for layer in config["config"]["layers"] if layer["class_name"] != "InputLayer")
    layer["class_name"], layer["module"], layer["registered_name"] = "Lambda", "keras.layers", None
    layer["config"] = {"name": layer["config"]["name"], "function": {
        "class_name": "__lambda__", "config": {"code": "print('pwned')", "defaults": None, "closure": None}}}
    return config


@pytest.mark.parametrize("damage, message", [
    (lambda path: cut(path, 0.5), "encoder.keras is damaged (truncated or not a .keras archive): rerun autoencode.py"),
    (lambda path: rewrite_keras_archive(path, with_lambda_layer),
     "encoder.keras is damaged or not a model of this project (Requested the deserialization of a `Lambda` layer"),
], ids=["truncated", "lambda-layer"])
def test_damaged_or_tampered_model_is_one_line(trained, tmp_path, capsys, damage, message):
    root = copy_pipeline(trained, tmp_path)
    damage(paths.model_path(root / "models", "encoder"))
    status, _, err = run_main(create_encoded_data, dirs_of(root), capsys)
    assert_one_error_line(status, err, message)


@pytest.mark.parametrize("damage, message", [
    (lambda models: shutil.copy(paths.model_path(models, "encoder"), paths.model_path(models, "conv1d")),
     "conv1d.keras is not the model conv1d.json describes (replaced since?): rerun conv1d_creater.py"),
    (lambda models: cut(paths.model_path(models, "conv1d"), 0.9),
     "conv1d.keras is damaged (truncated or not a .keras archive): rerun conv1d_creater.py"),
], ids=["replaced", "truncated"])
def test_replaced_or_truncated_score_model_is_one_line(trained, tmp_path, capsys, damage, message):
    root = copy_pipeline(trained, tmp_path)
    damage(root / "models")
    write_song(tmp_path / "seed.wav", seconds=11.0)
    status, _, err = generate(root, ["--seed-file", str(tmp_path / "seed.wav")], capsys)
    assert_one_error_line(status, err, message)


def first_shard(folder, split):
    index = json.loads((folder / "index.json").read_text())
    return folder / next(song["file"] for song in index["songs"] if song["split"] == split)


def test_truncated_score_shard_is_one_line(trained, tmp_path, capsys):
    root = copy_pipeline(trained, tmp_path)
    cut(first_shard(paths.scores_dir(root / "data"), "train"), 0.5)
    status, _, err = run_main(conv1d_creater, dirs_of(root) + TINY_SCORE, capsys)
    assert_one_error_line(status, err, "is damaged (truncated or not an .npz): rerun create_encoded_data.py")


def test_non_finite_scores_or_predictions_name_the_step_to_rerun(trained, tmp_path, capsys, monkeypatch):
    root = copy_pipeline(trained, tmp_path)
    seed = tmp_path / "seed.wav"
    write_song(seed, seconds=11.0)
    # A NaN in a stored score reaches every join cost: step 4 made it, so step 4 is what to rerun.
    shard = first_shard(paths.scores_dir(root / "data"), "train")
    arrays = dict(np.load(shard, allow_pickle=False))
    arrays["score"][3, 1] = np.nan
    np.savez(shard, **arrays)
    status, _, err = generate(root, ["--seed-file", str(seed)], capsys)
    assert_one_error_line(status, err, "holds non-finite values: rerun create_encoded_data.py")
    # A score model whose prediction is not finite: retrain that model.
    root = copy_pipeline(trained, tmp_path / "model")
    from common import models

    real_inference = models.inference

    def nan_predictions(model, inputs, **options):  # the codec's own calls pass arrays, a score model's a dict
        if not isinstance(inputs, dict):
            return real_inference(model, inputs, **options)
        return np.full((len(next(iter(inputs.values()))), *model.output_shape[1:]), np.nan, np.float32)

    monkeypatch.setattr(models, "inference", nan_predictions)
    status, _, err = generate(root, ["--seed-file", str(seed)], capsys)
    assert_one_error_line(status, err, "the conv1d model predicts non-finite values: rerun conv1d_creater.py")
    # An encoder that turns the seed into NaNs: retrain the autoencoder.
    monkeypatch.setattr(models, "inference", real_inference)
    monkeypatch.setattr(models, "encode", lambda encoder, steps: np.full((len(steps), 16), np.nan, np.float32))
    status, _, err = generate(root, ["--seed-file", str(seed)], capsys)
    assert_one_error_line(status, err, "the autoencoder encodes seed to non-finite values: rerun autoencode.py")


@pytest.mark.parametrize("damage, message", [
    (lambda path: cut(path, 0.5), "is damaged (truncated or not an .npz)"),
    # A flipped byte inside the samples: only the zip checksum can tell, and it is checked before training.
    (lambda path: flip_byte(path, 5000), "is damaged (Bad CRC-32 for file 'steps.npy')"),
], ids=["truncated", "flipped-byte"])
def test_damaged_step_shard_stops_training_in_one_line(trained, tmp_path, capsys, damage, message):
    root = copy_pipeline(trained, tmp_path)
    damage(first_shard(paths.steps_dir(root / "data"), "train"))
    args = dirs_of(root) + TINY_AE + ["--arch", "dense", "--init", "random", "--preview-seconds", "0", "--epochs", "1"]
    status, _, err = run_main(autoencode, args, capsys)
    assert_one_error_line(status, err, message, "rerun combine_encoded_test_data.py")


@pytest.mark.parametrize("extra, message", [
    (["--envelope-blocks", "-1"], "--envelope-blocks must be 0 to --latent-dim - 3 (13), not -1"),
    (["--envelope-blocks", "14"], "--envelope-blocks must be 0 to --latent-dim - 3 (13), not 14"),
    (["--arch", "dense", "--envelope-blocks", "4"], "--envelope-blocks is for the sparse architecture, not dense"),
    # Zero noise blocks once divided the fine blocks' count (a ZeroDivisionError traceback).
    (["--noise-groups", "2", "--noise-blocks", "0"], "--noise-groups 2 x --noise-blocks 0 leave no room for peaks"),
], ids=["negative", "no-room", "not-sparse", "no-noise-blocks"])
def test_envelope_blocks_out_of_range_are_one_line_and_keep_the_saved_autoencoder(trained, tmp_path, capsys,
                                                                                  extra, message):
    root = copy_pipeline(trained, tmp_path)
    record = paths.model_record_path(root / "models", "autoencoder")
    before = record.read_bytes()
    status, _, err = run_main(autoencode, dirs_of(root) + TINY_AE + extra, capsys)
    assert_one_error_line(status, err, message)
    assert record.read_bytes() == before


@pytest.mark.parametrize("extra, message", [
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--input-noise", "-0.1"], "--input-noise must be >= 0"),
    (["--distractors", "0"], "--distractors must be at least 1"),
], ids=["dropout", "input-noise", "distractors"])
def test_score_model_settings_out_of_range_are_one_line_and_keep_the_saved_score_model(trained, tmp_path, capsys,
                                                                                       extra, message):
    root = copy_pipeline(trained, tmp_path)
    saved = [paths.model_path(root / "models", "conv1d"), paths.model_record_path(root / "models", "conv1d")]
    before = [path.read_bytes() for path in saved]
    status, _, err = run_main(conv1d_creater, dirs_of(root) + TINY_SCORE + extra, capsys)
    assert_one_error_line(status, err, message)
    assert [path.read_bytes() for path in saved] == before
