"""Score models and continuations: baselines, the Gaussian read-out, continuations from real steps,
determinism, and 60-second continuations that keep the seed's loudness without clipping."""
import numpy as np
import pytest
import soundfile

import lstm_creater
import music_generator
from common import audio, metrics, paths, score_models, step_features
from tests.conftest import TINY_SCORE, synth_song, write_song


def test_baselines_on_a_hand_made_score():
    train = np.array([[0, 0], [2, 2]], np.float32)  # mean step (1, 1)
    song = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], np.float32)
    # Windows of 2 -> 1 steps: [0 1] -> 2 and [1 2] -> 3. Repeat last: errors 1, 1 per dimension;
    # mean step: errors 1 and 2 per dimension -> MSE (1 + 1 + 4 + 4) / 4.
    for batch in (1, 4096):
        figures = score_models.baselines(train, song, np.array([0, 1]), in_steps=2, out_steps=1, batch=batch)
        assert figures == {"repeat_last_step": pytest.approx(1.0), "mean_step": pytest.approx(2.5)}


def test_gaussian_loss_and_mean_error_by_hand():
    from common.score_layers import gaussian_nll, mean_mse

    targets = np.ones((1, 1, 2), np.float32)
    prediction = np.array([[[0.0, 3.0, 2.0, 1.0]]], np.float32)  # means (0, 3), stds (2, 1)
    expected_nll = np.mean([0.5 * (1 / 2) ** 2 + np.log(2), 0.5 * 2 ** 2 + np.log(1)])
    assert float(gaussian_nll(targets, prediction)[0]) == pytest.approx(expected_nll, rel=1e-5)
    assert float(mean_mse(targets, prediction)[0]) == pytest.approx((1 + 4) / 2)


def test_beta_nll_trusts_windows_by_their_spread_and_keeps_the_spreads_optimum():
    import tensorflow as tf

    from common.score_layers import BetaGaussianNLL, gaussian_nll

    def mean_gradients(beta, spreads, errors):
        """Gradient of the loss on each window's predicted mean and spread (two windows, one step, one number)."""
        targets = tf.zeros((2, 1, 1))
        means, spreads = tf.Variable(np.float32(errors)), tf.Variable(np.float32(spreads))
        with tf.GradientTape() as tape:
            prediction = tf.reshape(tf.stack([means, spreads], axis=-1), (2, 1, 2))
            loss = BetaGaussianNLL(beta)(targets, prediction)
        return [gradient.numpy() for gradient in tape.gradient(loss, [means, spreads])]

    # The same error (1) in two windows, predicted spreads 0.1 and 1: the plain NLL pulls the first window's
    # mean 100x as hard as the second's (error / variance), beta 0.5 10x, beta 1 as hard (MSE).
    for beta, ratio in ((0.0, 100.0), (0.5, 10.0), (1.0, 1.0)):
        on_mean, _ = mean_gradients(beta, [0.1, 1.0], [1.0, 1.0])
        assert on_mean[0] / on_mean[1] == pytest.approx(ratio, rel=1e-4)
    # Each spread equal to its window's |error| is the NLL's optimum: the weight (no gradient) keeps it there.
    _, on_spread = mean_gradients(0.5, [1.0, 0.5], [1.0, 0.5])
    np.testing.assert_allclose(on_spread, 0.0, atol=1e-6)
    # Beta 0 is the plain NLL, value for value.
    prediction = np.array([[[0.0, 2.0]], [[3.0, 1.0]]], np.float32)
    targets = np.ones((2, 1, 1), np.float32)
    assert float(BetaGaussianNLL(0.0)(targets, prediction)) == pytest.approx(
        float(np.mean(gaussian_nll(targets, prediction))), rel=1e-6)


def tiny_model(latent=3, in_steps=8, out_steps=2, seed=1):
    """A wrapped LSTM score model with random (not zero) read-out weights, so its predictions depend on its input."""
    import keras

    keras.utils.set_random_seed(seed)
    mean, variance = np.linspace(-1, 1, latent), np.linspace(1, 4, latent)
    model = score_models.wrap_body(lstm_creater.build_body(in_steps, out_steps, latent, units=4), in_steps, out_steps,
                                   latent, mean, variance, input_noise=0.1, name="lstm")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "Dense":  # the body's read-out and the bridge
            layer.set_weights([rng.normal(0, 0.3, weights.shape) for weights in layer.get_weights()])
    return model, mean, variance


def test_untrained_model_predicts_the_references_mean_step_and_spread():
    latent, in_steps = 3, 8
    mean, variance = np.array([1.0, -2.0, 0.5]), np.array([1.0, 4.0, 0.25])
    model = score_models.wrap_body(lstm_creater.build_body(in_steps, 2, latent, units=4), in_steps, 2, latent,
                                   mean, variance, input_noise=0.0, name="lstm")
    window = np.random.default_rng(0).normal(size=(1, in_steps, latent)).astype(np.float32)
    alternating = np.sign(np.arange(in_steps) % 2 - 0.5)[:, None]  # -1, +1, -1, ...
    reference = (np.array([5.0, 0.0, -1.0]) + np.array([3.0, 0.0, 1.0]) * alternating)[None].astype(np.float32)
    prediction = model.predict(score_models.model_inputs(window, reference), verbose=0)
    predicted_mean, spread = prediction[0, :, :latent], prediction[0, :, latent:]
    np.testing.assert_allclose(predicted_mean, np.tile([5.0, 0.0, -1.0], (2, 1)), atol=1e-5)
    # The reference's std per dimension, with the floor of 1 % of the training variance.
    np.testing.assert_allclose(spread, np.tile(np.sqrt(np.array([9.0, 0.0, 1.0]) + 0.01 * variance), (2, 1)),
                               rtol=1e-5)


def test_a_twice_as_loud_window_gets_a_twice_as_loud_prediction():
    """Reversible normalisation: scaling window and reference about the training mean scales mean and spread."""
    model, mean, _ = tiny_model()
    window = (mean + 20 * np.random.default_rng(0).normal(size=(1, 8, 3))).astype(np.float32)  # floor negligible
    louder = (mean + 2 * (window - mean)).astype(np.float32)
    base_mean, base_spread = np.split(model.predict(score_models.model_inputs(window), verbose=0), 2, axis=-1)
    loud_mean, loud_spread = np.split(model.predict(score_models.model_inputs(louder), verbose=0), 2, axis=-1)
    assert np.abs(base_mean - mean).min() > 1e-3  # the body does move the prediction away from the mean
    np.testing.assert_allclose(loud_mean - mean, 2 * (base_mean - mean), rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(loud_spread, 2 * base_spread, rtol=2e-3)


def test_the_lstm_is_compiled_with_xla_for_generation_and_predicts_as_without_it():
    import conv1d_creater
    from common import models

    model, mean, _ = tiny_model()
    conv1d = score_models.wrap_body(conv1d_creater.build_body(8, 2, 3, filters=4, kernel_size=3), 8, 2, 3, mean,
                                    np.ones(3), input_noise=0.0, name="conv1d")
    assert score_models.is_recurrent(model) and not score_models.is_recurrent(conv1d)
    window = (mean + np.random.default_rng(3).normal(size=(1, 8, 3))).astype(np.float32)
    inputs = score_models.model_inputs(window)
    plain, compiled = (models.inference(model, inputs, jit_compile=jit) for jit in (False, True))
    np.testing.assert_allclose(compiled, plain, rtol=1e-4, atol=1e-5)
    assert np.abs(plain - model.predict(inputs, verbose=0)).max() < 1e-5
    # A pool of two 30-step songs of random steps, whatever they sound like.
    rng = np.random.default_rng(0)
    pool = (rng.normal(size=(60, 3)).astype(np.float32), rng.normal(size=(60, step_features.SIZE)).astype(np.float32),
            np.repeat([0, 1], 30))
    music_generator.continue_with_real_steps(model, window[0], rng.normal(size=(8, step_features.SIZE)), pool, 4,
                                             1.0, 4, rng, quiet=True)
    assert set(model.__dict__["_musicgen_inference"]) == {False, True}  # the generator took the compiled one


@pytest.fixture(scope="module")
def lstm_dirs(pipeline, tmp_path_factory):
    """The pipeline's step dataset, with this module's own 64-number autoencoder, scores and tiny lstm.

    64 score numbers rather than the pipeline's 16: a minute sampled from 16 numbers per step swings by
    several dB from second to second by chance alone, which is not what the loudness test is about.
    """
    import shutil

    import autoencode
    import create_encoded_data

    root = tmp_path_factory.mktemp("generation")
    shutil.copytree(paths.steps_dir(pipeline["data"]), paths.steps_dir(root / "data"))
    dirs = ["--data-dir", str(root / "data"), "--models-dir", str(root / "models")]
    autoencode.main(dirs + ["--arch", "dense", "--latent-dim", "64", "--epochs", "1", "--pca-segments", "128",
                            "--batch-size", "16", "--preview-seconds", "0", "-q"])
    create_encoded_data.main(dirs + ["-q"])
    figures = lstm_creater.main(dirs + TINY_SCORE + ["--units", "8", "--epochs", "3"])
    return dirs, figures


def test_score_model_reports_both_baselines(lstm_dirs):
    _, figures = lstm_dirs
    assert figures["mean_step_mse"] < figures["repeat_last_step_mse"]
    assert figures["improvement_over_mean"] == pytest.approx(1 - figures["val_mse"] / figures["mean_step_mse"])
    assert 0.3 < figures["calibration"] < 3  # the predicted spread is of the size of the real errors


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


def test_same_random_seed_same_wav_another_seed_another(lstm_dirs, tmp_path):
    first, _ = generate(lstm_dirs, tmp_path, "a", "--seconds", "4", "--random-seed", "3")
    again, _ = generate(lstm_dirs, tmp_path, "b", "--seconds", "4", "--random-seed", "3")
    other, _ = generate(lstm_dirs, tmp_path, "c", "--seconds", "4", "--random-seed", "4")
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.1 * np.abs(first).mean()
    mean_a, _ = generate(lstm_dirs, tmp_path, "d", "--seconds", "4", "--temperature", "0", "--random-seed", "3")
    mean_b, _ = generate(lstm_dirs, tmp_path, "e", "--seconds", "4", "--temperature", "0", "--random-seed", "4")
    np.testing.assert_array_equal(mean_a, mean_b)


def test_a_minute_of_real_steps_joins_songs_keeps_the_level_and_replays_nothing_for_long(lstm_dirs, tmp_path):
    samples, figures = generate(lstm_dirs, tmp_path, "real", "--seconds", "60", "--max-run", "6")
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
    from common import datasets, step_features
    from common.models import encode, load_codec

    dirs, _ = lstm_dirs
    encoder, _, autoencoder = load_codec(dirs[3])
    model, _ = music_generator.load_score_model(dirs[3], "lstm", autoencoder)
    scores, _, _ = pool = datasets.song_steps_heard(paths.scores_dir(dirs[1]), autoencoder["fingerprint"])
    seed_steps = audio.frame_steps(synth_song(10, seed=7))  # a song the corpus does not have
    seed_score = encode(encoder, seed_steps)
    new, chooser = music_generator.continue_with_real_steps(
        model, seed_score, step_features.step_features(seed_steps), pool, 48, 1.0, 4, np.random.default_rng(0),
        quiet=True)
    everything = np.concatenate([seed_score, scores])
    # Each new step is one of the pool's, exactly (no level hold here), in the order the chooser played them
    # (it chooses whole windows of 5: 50 steps, of which the first 48 are kept).
    assert np.array_equal(new, everything[chooser.history[len(seed_score):len(seed_score) + 48]])
    assert chooser.longest_run <= 4 and chooser.joins >= 48 // 4
    # No short loops: no step comes back within 4 s (16 steps) of being played.
    played = chooser.history
    assert all(played[i] not in played[max(0, i - 16):i] for i in range(len(seed_score), len(played)))


def test_real_steps_need_step_features_and_say_which_step_to_rerun(lstm_dirs, tmp_path, capsys):
    import json
    import shutil

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


@pytest.mark.parametrize("missing", ["output", "autoencoder_fingerprint"])
def test_an_old_style_score_model_names_the_script_to_rerun(lstm_dirs, tmp_path, capsys, missing):
    import json
    import shutil

    dirs, _ = lstm_dirs
    models = tmp_path / "models"
    shutil.copytree(dirs[3], models)
    record_path = models / "lstm.json"
    record = json.loads(record_path.read_text())
    record.pop(missing)
    record_path.write_text(json.dumps(record))
    seed = tmp_path / "seed.wav"
    write_song(seed, seconds=12)
    with pytest.raises(SystemExit) as exit_info:
        music_generator.main(["--data-dir", dirs[1], "--models-dir", str(models), "--seed-file", str(seed), "-q"])
    assert exit_info.value.code == 1
    assert "rerun lstm_creater.py" in capsys.readouterr().err


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


@pytest.mark.parametrize("transform", ["dct", "lapped"])
def test_the_level_hold_keeps_every_second_within_its_range_of_the_seeds_level(transform):
    decoder = sparse_decoder(64, transform)
    seed_score = random_sparse_codes(8, 64, transform, 0.05, 1e-3, seed=1)
    hold = music_generator.LevelHold(decoder, seed_score, range_db=2.0)
    reference = hold.step_energies(seed_score).mean()
    # Ten steps at the seed's level, then ten 10 dB louder, then ten 10 dB quieter.
    steps = random_sparse_codes(30, 64, transform, 0.05, 1e-3, seed=2)
    steps[10:20] = random_sparse_codes(10, 64, transform, 0.05 * np.sqrt(10), 1e-3 * np.sqrt(10), seed=3)
    steps[20:] = random_sparse_codes(10, 64, transform, 0.05 / np.sqrt(10), 1e-3 / np.sqrt(10), seed=4)
    held = hold(steps[:28])
    level_db = 10 * np.log10(hold.step_energies(held).reshape(7, 4).mean(axis=1) / reference)  # whole seconds
    # The lapped code's noise takes another pattern when scaled, so its energy moves by a little.
    assert np.all(np.abs(level_db) <= 2.0 + (0.2 if transform == "lapped" else 1e-3)), level_db
    gains = np.array(hold.gains).reshape(7, 4)
    assert np.all(gains[:2] == 1.0)  # seconds inside the range are left alone
    assert np.all(gains == gains[:, :1])  # one gain a second: its steps keep their own dynamics
    assert hold.largest_change_db() > 5.0
    unheld = 10 * np.log10(hold.step_energies(steps[:28]).reshape(7, 4).mean(axis=1) / reference)
    assert unheld.max() > 7 and unheld.min() < -7


def test_the_continuation_benchmark_seeds_each_song_back_to_back_while_a_continuation_fits():
    import argparse

    from bench.continuation import seed_offsets

    args = argparse.Namespace(offset=20.0, seed_spacing=70.0, seconds=60.0)
    assert seed_offsets(230.0, args) == [20.0, 90.0, 160.0]  # 160 + 10 s of seed + 60 s = 230
    assert seed_offsets(229.0, args) == [20.0, 90.0]
    assert seed_offsets(25.0, args) == [0.0] and seed_offsets(9.0, args) == []
    assert seed_offsets(230.0, argparse.Namespace(offset=20.0, seed_spacing=0.0, seconds=60.0)) == [20.0]


def test_the_level_is_held_by_a_gain_on_the_code_for_sparse_and_dense_codes_not_conv():
    codes = np.array([[0.25, 0.5, -1.0]], np.float32)  # sparse layout for 3 numbers: 1 peak, 1 band
    np.testing.assert_allclose(music_generator.level_scaler({"arch": "dense"})(codes, np.array([2.0])),
                               [[0.5, 1.0, -2.0]])
    np.testing.assert_allclose(music_generator.level_scaler({"arch": "sparse"})(codes, np.array([2.0])),
                               [[0.25, 1.0, -1.0 + np.log(2.0)]], rtol=1e-6)
    assert music_generator.level_scaler({"arch": "conv"}) is None


def test_a_narrow_level_range_holds_every_second_of_a_dense_continuation_to_it(lstm_dirs, tmp_path):
    samples, figures = generate(lstm_dirs, tmp_path, "held", "--seconds", "30", "--level-range", "0.5")
    seed_level = audio.rms_db(soundfile.read(str(tmp_path / "seed.wav"), dtype="float32")[0][:40 * audio.STEP_FRAMES])
    drift = metrics.loudness_per_second(samples)[2:] - seed_level
    # The hold measures each step between its cross-fades; the cross-fades and the limiter add a little.
    assert np.all(np.abs(drift) <= 0.5 + 0.3), drift
    assert figures["level_hold_max_db"] > 0.3  # it acted (real steps of the seed's corpus vary by ~1 dB)
    free, free_figures = generate(lstm_dirs, tmp_path, "free", "--seconds", "30", "--level-range", "0")
    free_drift = metrics.loudness_per_second(free)[2:] - seed_level
    assert np.abs(free_drift).max() > 1.0 and free_figures["level_hold_max_db"] == 0.0
