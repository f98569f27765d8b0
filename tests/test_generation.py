"""Continuations: the score model steering real steps, determinism, and 60-second continuations that keep the
seed's loudness without clipping. (The score models' parts: tests/common/test_score_layers.py.)"""
import argparse
import json
import shutil

import numpy as np
import pytest
import soundfile

import lstm_creater
import music_generator
from common import audio, beat_joins, datasets, metrics, paths, ranking, score_models, step_features
from common.models import decode, encode, load_codec
from tests.conftest import TINY_SCORE, synth_song, write_song


def generation_args(**settings):
    """The generator's settings continue_with_real_steps reads, as its flags give them."""
    defaults = {"temperature": 1.0, "min_run": 2, "max_run": 4, "model_weight": 1.0, "seed_steps_only": False,
                "quiet": True}
    return argparse.Namespace(**{**defaults, **settings})


def random_songs(lengths, latent, rng):
    """datasets.SongsHeard of songs of random steps."""
    total = sum(lengths)
    return datasets.SongsHeard(rng.normal(size=(total, latent)).astype(np.float32),
                               rng.normal(size=(total, step_features.SIZE)).astype(np.float32),
                               rng.normal(size=(total, 2, step_features.SEAM_BANDS)).astype(np.float32),
                               np.repeat(np.arange(len(lengths)), lengths), np.cumsum([0] + lengths[:-1]),
                               np.array(lengths))


@pytest.mark.parametrize("max_run", [3, 6])
def test_the_generator_asks_the_model_about_the_windows_it_plays_one_gaussian_each(max_run, monkeypatch):
    """However many places a run may leave at, each window's Gaussian is the model's for that window alone."""
    import keras

    keras.utils.set_random_seed(0)
    latent, in_steps, out_steps = 3, 40, 5
    body = lstm_creater.build_body(in_steps, out_steps, score_models.body_outputs(), units=4)
    model = score_models.wrap_body(body, in_steps, out_steps, latent, np.ones(step_features.SIZE, np.float32),
                                   np.ones(latent), 0.0, "lstm")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # a body whose outputs matter, so that windows are told apart
        if layer.__class__.__name__ in ("Dense", "LSTM"):
            layer.set_weights([rng.normal(0, 0.3, weights.shape) for weights in layer.get_weights()])
    pool = random_songs([30, 50, 40], latent, rng)
    seed_score = rng.normal(size=(in_steps, latent)).astype(np.float32)
    seed_features = rng.normal(size=(in_steps, step_features.SIZE)).astype(np.float32)
    seed_seams = rng.normal(size=(in_steps, 2, step_features.SEAM_BANDS)).astype(np.float32)
    asked = []

    class Recording(music_generator.StepChoice):
        def extend(self, predict, steps):
            def recorded(windows):
                gaussians = predict(windows)
                asked.append((windows, gaussians))
                return gaussians
            return super().extend(recorded, steps)

    monkeypatch.setattr(music_generator, "StepChoice", Recording)
    new, chooser = music_generator.continue_with_real_steps(
        model, seed_score, seed_features, seed_seams, (None, 0.0, None, 1), pool, 30, generation_args(max_run=max_run),
        rng)
    everything = np.concatenate([seed_score, pool.scores])
    assert new.shape == (30, latent) and np.array_equal(new, everything[chooser.history[in_steps:in_steps + 30]])
    assert len(asked) == chooser.joins and max(len(windows) for windows, _ in asked) > 1
    features = np.concatenate([seed_features, pool.features])
    for windows, gaussians in asked[:6]:
        assert gaussians.shape == (len(windows), out_steps, 2 * step_features.SIZE)
        alone = np.concatenate([model.predict(score_models.model_inputs(everything[window][None],
                                                                        features[window][None]), verbose=0)
                                for window in windows])
        np.testing.assert_allclose(gaussians, alone, rtol=1e-4, atol=1e-5)
    assert len({gaussian.tobytes() for _, gaussians in asked for gaussian in gaussians}) > 10  # not one answer


@pytest.fixture(scope="module")
def lstm_dirs(pipeline, tmp_path_factory):
    """The pipeline's step dataset, with this module's own 64-number autoencoder, scores and tiny lstm.

    64 score numbers rather than the pipeline's 16: a minute sampled from 16 numbers per step swings by
    several dB from second to second by chance alone, which is not what the loudness test is about.
    """
    import autoencode
    import create_encoded_data

    root = tmp_path_factory.mktemp("generation")
    shutil.copytree(paths.steps_dir(pipeline["data"]), paths.steps_dir(root / "data"))
    dirs = ["--data-dir", str(root / "data"), "--models-dir", str(root / "models")]
    autoencode.main(dirs + ["--arch", "dense", "--latent-dim", "64", "--epochs", "1", "--pca-segments", "128",
                            "--batch-size", "16", "--preview-seconds", "0", "-q"])
    create_encoded_data.main(dirs + ["-q"])
    figures = lstm_creater.main(dirs + TINY_SCORE + ["--units", "8", "--epochs", "1"])
    return dirs, figures


def test_the_record_holds_the_validation_ranking_that_the_saved_model_and_the_simple_scorers_give(lstm_dirs):
    """The what-comes-next test on the validation song, done again here from the saved files."""
    from common.models import load_codec

    dirs, figures = lstm_dirs
    models_dir, folder = dirs[3], paths.scores_dir(dirs[1])
    record = json.loads(paths.model_record_path(models_dir, "lstm").read_text())
    assert record["validation_ranking"] == figures and record["output"] == score_models.OUTPUT
    assert record["step_features"] == step_features.VERSION and record["epochs_run"] == 1
    _, _, autoencoder = load_codec(models_dir)
    model, _ = music_generator.load_score_model(models_dir, "lstm", autoencoder)
    index = datasets.score_index(folder, autoencoder["fingerprint"])
    train, validation = (datasets.songs_heard(folder, index, split) for split in ("train", "validation"))
    queries = ranking.same_song_queries(validation, 40, 5, np.std(train.features, axis=0),
                                        train.scores.var(axis=0) + 1e-6, score_models.VALIDATION_STRIDE)
    scorers = {"model": score_models.model_figures(model), **ranking.BASELINES}
    again = {name: ranking.summary(ranking.ranks(scorer(queries))) for name, scorer in scorers.items()}
    assert set(figures) == {"model", "last step", "mean step", "continuity", "history"}
    # One 14-s validation song: windows at steps 40, 44 and 48.
    assert all(summary["queries"] == 3 for summary in figures.values())
    for name, summary in figures.items():
        assert summary == pytest.approx(again[name]), name


def generate(lstm_dirs, tmp_path, name, *extra):
    dirs, _ = lstm_dirs
    seed = tmp_path / "seed.wav"
    if not seed.exists():
        # The opening of a training song: the tiny 16-number autoencoder reconstructs it well (a song it has
        # never heard loses 10 dB in its round trip), so what is measured here is the score model.
        write_song(seed, seconds=12, seed=0)
    out = tmp_path / f"{name}.wav"
    figures = music_generator.main(dirs + ["--seed-file", str(seed), "--model", "lstm", "--continuation-only",
                                           "--out", str(out), "-q", *extra])
    samples, _ = soundfile.read(str(out), dtype="float32")
    return samples, figures


@pytest.mark.parametrize("model_weight", ["1", "0"])
def test_same_random_seed_same_wav_another_seed_another(lstm_dirs, tmp_path, model_weight):
    """With the score model's part in every join (weight 1) and with joins by sound alone (0). The seed is a song
    the corpus does not have: a training song's opening goes on with that song's own next steps, whatever the
    random seed. At temperature 1 this seed's first join is the cheapest with probability 0.997, so the draws
    are compared at temperature 4, where the random seed decides."""
    write_song(tmp_path / "seed.wav", seconds=12, seed=7)
    weight = ["--model-weight", model_weight, "--temperature", "4"]
    first, _ = generate(lstm_dirs, tmp_path, "a", "--seconds", "4", "--random-seed", "3", *weight)
    again, _ = generate(lstm_dirs, tmp_path, "b", "--seconds", "4", "--random-seed", "3", *weight)
    other, _ = generate(lstm_dirs, tmp_path, "c", "--seconds", "4", "--random-seed", "4", *weight)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.1 * np.abs(first).mean()
    weight = ["--model-weight", model_weight]
    best_a, _ = generate(lstm_dirs, tmp_path, "d", "--seconds", "4", "--temperature", "0", "--random-seed", "3",
                         *weight)
    best_b, _ = generate(lstm_dirs, tmp_path, "e", "--seconds", "4", "--temperature", "0", "--random-seed", "4",
                         *weight)
    np.testing.assert_array_equal(best_a, best_b)


def test_seed_steps_only_continues_with_the_seeds_own_steps(lstm_dirs, tmp_path):
    # This seed (a training song's opening, its own song left out of the pool) takes other songs' steps by
    # default; with --seed-steps-only every new step is the seed's.
    _, mixed = generate(lstm_dirs, tmp_path, "mixed", "--seconds", "20", "--random-seed", "2")
    samples, own = generate(lstm_dirs, tmp_path, "own", "--seconds", "20", "--random-seed", "2", "--seed-steps-only")
    assert mixed["share_from_seed"] < 0.9
    assert own["share_from_seed"] == 1.0 and len(samples) == 20 * audio.SAMPLE_RATE and np.isfinite(samples).all()


def test_a_minute_of_real_steps_joins_songs_keeps_the_level_and_replays_nothing_for_long(lstm_dirs, tmp_path):
    samples, figures = generate(lstm_dirs, tmp_path, "real", "--seconds", "60", "--min-run", "4", "--max-run", "6")
    seed_level = audio.rms_db(soundfile.read(str(tmp_path / "seed.wav"), dtype="float32")[0][:40 * audio.STEP_FRAMES])
    drift = metrics.loudness_per_second(samples)[2:] - seed_level
    assert len(samples) == 60 * audio.SAMPLE_RATE and np.isfinite(samples).all() and np.abs(samples).max() <= 1
    assert np.all(np.abs(drift) <= 3.0), drift
    assert figures["limiter_max_reduction_db"] >= 0 and figures["min_drift_db"] == pytest.approx(drift.min(), abs=0.01)
    # Against the seed as decoded (the autoencoder's round trip may lose level): the same seconds, shifted.
    shift = figures["seed_rms_db"] - figures["decoded_seed_rms_db"]
    assert figures["min_drift_decoded_db"] == pytest.approx(figures["min_drift_db"] + shift, abs=1e-6)
    assert figures["max_drift_decoded_db"] == pytest.approx(figures["max_drift_db"] + shift, abs=1e-6)
    assert -20 < figures["decoded_seed_rms_db"] < 0
    # Runs of one song's consecutive steps of at most 6 (1.5 s), so at least 240 / 6 - 1 joins.
    assert figures["longest_run_seconds"] <= 1.5 and figures["joins"] >= 39


def test_real_steps_are_steps_of_the_seed_or_the_corpus_and_the_model_reads_them_back(lstm_dirs):
    from common.models import encode, load_codec

    dirs, _ = lstm_dirs
    encoder, _, autoencoder = load_codec(dirs[3])
    model, _ = music_generator.load_score_model(dirs[3], "lstm", autoencoder)
    pool = datasets.song_steps_heard(paths.scores_dir(dirs[1]), autoencoder["fingerprint"])
    seed_steps = audio.frame_steps(synth_song(10, seed=7))  # a song the corpus does not have
    seed_score = encode(encoder, seed_steps)
    new, chooser = music_generator.continue_with_real_steps(
        model, seed_score, step_features.step_features(seed_steps), step_features.seam_spectra(seed_steps),
        music_generator.seed_beat(seed_steps), pool, 48, generation_args(), np.random.default_rng(0))
    everything = np.concatenate([seed_score, pool.scores])
    # Each new step is one of the pool's, exactly (no level hold here), in the order the chooser played them
    # (whole runs: of the steps played, the first 48 are kept).
    assert len(chooser.history) >= len(seed_score) + 48
    assert np.array_equal(new, everything[chooser.history[len(seed_score):len(seed_score) + 48]])
    assert chooser.longest_run <= 4 and chooser.joins >= 48 // 4
    # No short loops: no step comes back within 4 s (16 steps) of being played.
    played = chooser.history
    assert all(played[i] not in played[max(0, i - 16):i] for i in range(len(seed_score), len(played)))


def test_real_steps_need_step_features_and_say_which_step_to_rerun(lstm_dirs, tmp_path, capsys):
    dirs, _ = lstm_dirs
    data = tmp_path / "data"
    shutil.copytree(dirs[1], data)
    index_path = paths.scores_dir(data) / "index.json"
    index = json.loads(index_path.read_text())
    index.pop("step_features")  # a score dataset made before step 4 kept what each step sounds like
    index_path.write_text(json.dumps(index))
    seed = tmp_path / "seed.wav"
    write_song(seed, seconds=12)
    with pytest.raises(SystemExit) as exit_info:
        music_generator.main(["--data-dir", str(data), "--models-dir", dirs[3], "--seed-file", str(seed), "-q"])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert "rerun create_encoded_data.py" in error and len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("change", [{"output": None}, {"autoencoder_fingerprint": None}, {"output": "gaussian"},
                                    {"step_features": 1}],
                         ids=["no-output", "no-fingerprint", "gaussian", "features-1"])
def test_a_score_model_from_before_names_the_steps_to_rerun(lstm_dirs, tmp_path, capsys, change):
    """Records without an output or fingerprint, score models that predicted a Gaussian over the score ("gaussian")
    and models trained on step features of version 1."""
    dirs, _ = lstm_dirs
    models = tmp_path / "models"
    shutil.copytree(dirs[3], models, ignore=shutil.ignore_patterns("logs", "checkpoints"))
    record_path = models / "lstm.json"
    record = json.loads(record_path.read_text())
    for key, value in change.items():
        if value is None:
            del record[key]
        else:
            record[key] = value
    record_path.write_text(json.dumps(record))
    seed, out = tmp_path / "seed.wav", tmp_path / "out.wav"
    write_song(seed, seconds=12)
    with pytest.raises(SystemExit) as exit_info:
        music_generator.main(["--data-dir", dirs[1], "--models-dir", str(models), "--seed-file", str(seed), "-q",
                              "--out", str(out)])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: ") and "Traceback" not in error
    assert error.endswith("rerun create_encoded_data.py, then lstm_creater.py") and not out.exists()


def sparse_decoder(latent, transform):
    import keras

    from common.codec import SparseSpectrumDecoding, code_layout

    peaks, bands = code_layout(latent)
    return keras.Sequential([keras.Input((latent,)), SparseSpectrumDecoding(peaks, bands, transform=transform)])


def random_sparse_codes(steps, latent, transform, value_size, level, seed=0):
    from common.codec import code_layout, spectrum_bins

    peaks, bands = code_layout(latent)
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.integers(0, spectrum_bins(transform), size=(steps, peaks)), axis=1)
    return np.concatenate([positions / spectrum_bins(transform), rng.normal(0, value_size, (steps, peaks)),
                           np.full((steps, bands), np.log(level))], axis=1).astype(np.float32)


def test_a_scaled_sparse_code_decodes_to_the_scaled_sound():
    from common.codec import scale_codes
    from common.models import inference

    decoder = sparse_decoder(64, "dct")
    codes = random_sparse_codes(3, 64, "dct", 0.05, 1e-3)
    gains = np.array([0.5, 1.0, 3.0])
    np.testing.assert_allclose(inference(decoder, scale_codes(codes, gains)),
                               inference(decoder, codes) * gains[:, None, None], rtol=1e-4, atol=1e-7)


def noise_at(levels, seed):
    """Stereo noise, one RMS level per step (steps, STEP_FRAMES, 2)."""
    rng = np.random.default_rng(seed)
    steps = rng.standard_normal((len(levels), audio.STEP_FRAMES, audio.CHANNELS)).astype(np.float32)
    return steps * np.asarray(levels, np.float32)[:, None, None]


def test_the_level_hold_brings_each_second_back_in_range_by_one_ramped_gain():
    seed = noise_at(np.full(8, 0.1), seed=1)
    hold = music_generator.LevelHold(seed, range_db=2.0)
    # Two seconds at the seed's level, two 10 dB louder, two 10 dB quieter; within each second a loud and a
    # quiet step, as a beat has them.
    pattern = np.tile([1.4, 0.6, 1.0, 1.0], 6) * np.repeat([1.0, 1.0, 10 ** 0.5, 10 ** 0.5, 10 ** -0.5, 10 ** -0.5], 4)
    samples = noise_at(0.1 * pattern, seed=2).reshape(-1, audio.CHANNELS)
    held = hold(samples)
    second = 4 * audio.STEP_FRAMES
    reference = np.mean(np.square(seed))
    level_db = 10 * np.log10(np.mean(np.square(held.reshape(6, second, 2)), axis=(1, 2)) / reference)
    assert np.all(np.abs(level_db[:2]) < 1.0)  # left alone
    # Inside the range (a ramp's part of a second at its neighbour's gain measured and made up for), just.
    assert np.all(np.abs(level_db[2:]) <= 2.0 + 1e-3), level_db
    assert level_db[3] > 1.9 and level_db[5] < -1.9  # not at the seed's level
    gain = held[:, 0] / samples[:, 0]
    assert np.all(gain[:second - audio.CROSSFADE_FRAMES] == 1.0)
    inside = gain.reshape(6, second)[:, audio.CROSSFADE_FRAMES:-audio.CROSSFADE_FRAMES]
    np.testing.assert_allclose(inside, inside[:, :1] * np.ones_like(inside), rtol=1e-5)  # one gain a second
    assert np.max(np.abs(np.diff(gain))) < 0.01  # ramps, not jumps
    assert 7.0 < hold.largest_change_db() < 9.0
    silent = music_generator.LevelHold(np.zeros_like(seed), range_db=2.0)
    np.testing.assert_array_equal(silent(samples), samples)  # nothing to hold to


def test_the_continuation_benchmark_seeds_each_song_back_to_back_while_a_continuation_fits():
    from bench.continuation import seed_offsets

    args = argparse.Namespace(offset=20.0, seed_spacing=70.0, seconds=60.0)
    assert seed_offsets(230.0, args) == [20.0, 90.0, 160.0]  # 160 + 10 s of seed + 60 s = 230
    assert seed_offsets(229.0, args) == [20.0, 90.0]
    assert seed_offsets(25.0, args) == [0.0] and seed_offsets(9.0, args) == []
    assert seed_offsets(230.0, argparse.Namespace(offset=20.0, seed_spacing=0.0, seconds=60.0)) == [20.0]


def test_a_narrow_level_range_holds_every_second_of_a_dense_continuation_to_it(lstm_dirs, tmp_path):
    samples, figures = generate(lstm_dirs, tmp_path, "held", "--seconds", "30", "--level-range", "0.5")
    seed_level = audio.rms_db(soundfile.read(str(tmp_path / "seed.wav"), dtype="float32")[0][:40 * audio.STEP_FRAMES])
    drift = metrics.loudness_per_second(samples)[2:] - seed_level
    # The hold measures the decoded seconds themselves; only its ramps and the limiter add a little.
    assert np.all(np.abs(drift) <= 0.5 + 0.1), drift
    assert figures["level_hold_max_db"] > 0.3  # it acted (real steps of the seed's corpus vary by ~1 dB)
    free, free_figures = generate(lstm_dirs, tmp_path, "free", "--seconds", "30", "--level-range", "0")
    free_drift = metrics.loudness_per_second(free)[2:] - seed_level
    assert np.abs(free_drift).max() > 1.0 and free_figures["level_hold_max_db"] == 0.0


def test_runs_of_the_seed_are_read_from_the_seed_shifted_onto_its_beat(lstm_dirs, tmp_path, monkeypatch):
    # The songs' beat is 0.37 s, 1.48 steps: joins of whole steps land off it, so runs that follow runs on the
    # seed's grid are read from their source up to half a step early or late. Without the level hold, the
    # continuation inside such a run is the decoded seed at that shift, sample for sample.
    from common import models

    decoded_steps = []
    monkeypatch.setattr(models, "decode",
                        lambda decoder, score: decoded_steps.append(len(score)) or decode(decoder, score))
    samples, figures = generate(lstm_dirs, tmp_path, "on", "--seconds", "20", "--random-seed", "2",
                                "--level-range", "0")
    monkeypatch.undo()
    beats = figures["beat_seconds"] / 0.37  # the seed's beat, or a bar of 2 or 3 of them
    assert round(beats) in (1, 2, 3) and abs(beats - round(beats)) < 0.03
    assert figures["bar_beats"] in (1, 2, 3, 4)
    runs = figures["runs"]
    assert sum(stop - start for start, stop, _, _ in runs) >= 80 and runs[0][0] == 0
    shifted = [(start, stop, first, shift) for start, stop, first, shift in runs if shift and first < 40]
    assert shifted and all(abs(shift) <= beat_joins.MAX_SHIFT for *_, shift in shifted)
    # The other songs beat every 0.37 s too: step 4 found their beat, and their runs are read onto the seed's.
    assert any(shift for start, stop, first, shift in runs if first >= 40)
    assert figures["other_songs_runs_on_the_beat"] == sum(1 for *_, first, _ in runs if first >= 40) > 0
    # One decode: the seed once with its edge step again either side, each other song's run with a neighbour
    # either side; not each run of seed steps again with its neighbours.
    other_songs = [stop - start + 2 for start, stop, first, _ in runs if first >= 40]
    assert decoded_steps == [40 + 2 + sum(other_songs)]
    dirs, _ = lstm_dirs
    encoder, decoder, _ = load_codec(dirs[3])
    seed_steps = audio.frame_steps(soundfile.read(str(tmp_path / "seed.wav"), dtype="float32")[0])[:40]
    # The seed decoded with its edge step again either side, as the generator reads its runs from it.
    seed = decode(decoder, encode(encoder, seed_steps)[np.r_[0, np.arange(40), 39]])
    margin = audio.CROSSFADE_FRAMES  # away from the cross-fades at either end of the run
    for start, stop, first, shift in shifted:
        inside = slice(start * audio.STEP_FRAMES + margin, stop * audio.STEP_FRAMES - margin)
        source = slice((1 + first) * audio.STEP_FRAMES + shift + margin,
                       (1 + first + stop - start) * audio.STEP_FRAMES + shift - margin)
        np.testing.assert_allclose(samples[inside], seed[source], atol=2e-4)
