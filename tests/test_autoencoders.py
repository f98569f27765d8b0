"""autoencode.py's architectures: shapes, a tiny training of each through main() with a safe-mode reload, the
sparse code's exactness and noise fill, the dense autoencoder's PCA start, and the training loss."""
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import soundfile

import autoencode
from common import audio, crossfade, datasets, metrics, paths
from common.codec import TRANSFORMS, code_layout, spectrum_bins
from tests.conftest import synth_song

TINY_FLAGS = {"sparse": [], "sparse-lapped": ["--lapped"], "dense": ["--no-lapped", "--pca-segments", "64"],
              "dense-lapped": ["--lapped", "--pca-segments", "64"], "conv": ["--width", "4"]}


def tensorboard_audio(log_dir):
    """{(tag, step): (samples, sample rate)} of the audio summaries in a TensorBoard log folder."""
    import tensorflow as tf

    found = {}
    for events in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "audio":
                    wav = tf.make_ndarray(value.tensor).reshape(-1)[0]  # [encoded WAV, label] per clip
                    found[(value.tag, event.step)] = soundfile.read(io.BytesIO(wav))
    return found


def segments_of(song):
    return audio.segments_from_steps(audio.frame_steps(song))  # (steps, SEGMENT_FRAMES, 2)


DCT_BINS = spectrum_bins("dct")  # sparse codes saved before the lapped transform


def sparse_codec(latent_dim, transform, **decoder_settings):
    """(encoder, decoder) of the sparse code with the given transform (autoencode.py builds "lapped" ones)."""
    import keras

    from common.codec import SparseSpectrumDecoding, SparseSpectrumEncoding

    peaks, bands = code_layout(latent_dim)
    segment, score = keras.Input((audio.SEGMENT_FRAMES, audio.CHANNELS)), keras.Input((latent_dim,))
    return (keras.Model(segment, SparseSpectrumEncoding(peaks, bands, transform=transform)(segment)),
            keras.Model(score, SparseSpectrumDecoding(peaks, bands, transform=transform, **decoder_settings)(score)))


def segment_from_spectrum(spectrum, transform="dct"):
    """(spectrum_bins(transform),) mid/side DCT coefficients -> (1, SEGMENT_FRAMES, 2) float32 segment ("dct" or
    "trimmed-dct", whose frames outside the transform's are silent)."""
    mid, side = scipy.fft.idct(spectrum.reshape(2, -1), norm="ortho")
    segment = np.zeros((1, audio.SEGMENT_FRAMES, 2), np.float32)
    first = (audio.SEGMENT_FRAMES - len(mid)) // 2
    segment[0, first:first + len(mid)] = np.stack([mid + side, mid - side], axis=-1)
    return segment


@pytest.mark.parametrize("arch", autoencode.ARCHITECTURES)
def test_each_architecture_maps_segments_to_the_latent_size_and_back(arch):
    encoder, decoder = autoencode.build_architecture(arch, latent_dim=16, width=4)
    segments = segments_of(synth_song(1.0))
    score = encoder.predict(segments, verbose=0)
    assert score.shape == (4, 16) and np.isfinite(score).all()
    assert decoder.predict(score, verbose=0).shape == segments.shape == (4, audio.SEGMENT_FRAMES, audio.CHANNELS)


def test_dense_is_lapped_unless_told_otherwise_and_the_other_codes_are_not():
    assert [autoencode.parse_args(["--arch", arch]).lapped for arch in ("dense", "sparse", "conv")] == \
        [True, False, False]
    assert autoencode.parse_args(["--arch", "dense", "--no-lapped"]).lapped is False
    assert autoencode.parse_args(["--lapped"]).lapped is True  # the sparse default, lapped on request


@pytest.mark.parametrize("variant", TINY_FLAGS)
def test_each_architecture_trains_through_main_and_reloads_in_safe_mode(pipeline, tmp_path, variant):
    from common.models import load_codec

    arch = variant.split("-")[0]
    models = tmp_path / "models"
    # --max-minutes this small stops after the first epoch of the three asked for.
    args = ["--data-dir", str(pipeline["data"]), "--models-dir", str(models), "--arch", arch, "--latent-dim", "16",
            "--epochs", "3", "--max-minutes", "1e-6", "--batch-size", "16", "--preview-seconds", "1", "-q"]
    figures = autoencode.main(args + TINY_FLAGS[variant])
    record = json.loads(paths.model_record_path(models, "autoencoder").read_text())
    assert record["arch"] == arch and record["latent_dim"] == 16
    assert record["sparse_transform"] == {"sparse": TRANSFORMS[0], "sparse-lapped": "lapped"}.get(variant)
    assert record["lapped"] == variant.endswith("-lapped")
    assert record["epochs_run"] == (0 if arch == "sparse" else 1)
    if arch != "sparse":  # what trained architectures leave besides the model
        assert paths.loss_plot_path(models, "autoencoder").stat().st_size > 10_000
        assert list((models / "logs").glob("autoencoder-*/train/events.out.tfevents.*"))
        previews = tensorboard_audio(next((models / "logs").glob("autoencoder-*/audio")))
        assert sorted(previews) == [("original", 0), ("reconstruction", 1)]  # the song once, then each epoch
        for samples, rate in previews.values():  # --preview-seconds 1 of a validation song, as a stereo WAV
            assert rate == audio.SAMPLE_RATE and samples.shape == (audio.SAMPLE_RATE, audio.CHANNELS)
        assert np.abs(previews[("original", 0)][0]).max() > 0.1  # the song itself, not silence
    encoder, decoder, _ = load_codec(models)  # safe mode: no code runs while loading
    folder = paths.steps_dir(pipeline["data"])
    again = autoencode.validation_figures(encoder, decoder, folder, datasets.steps_index(folder), "validation")
    assert again["snr_db"] == pytest.approx(figures["snr_db"], abs=1e-3)


def test_dense_keeps_its_pca_start_when_fine_tuning_makes_validation_worse(pipeline, tmp_path):
    """Adam steps of 0.1 wreck a PCA start; the saved model must then be exactly the PCA projection (of the
    segments: the seed's dense layers, --no-lapped)."""
    models = tmp_path / "models"
    figures = autoencode.main(["--data-dir", str(pipeline["data"]), "--models-dir", str(models), "--arch", "dense",
                               "--no-lapped", "--latent-dim", "16", "--pca-segments", "64", "--learning-rate", "0.1",
                               "--epochs", "2", "--batch-size", "16", "--preview-seconds", "0", "-q"])
    record = json.loads(paths.model_record_path(models, "autoencoder").read_text())
    assert record["kept_start"] is True and record["epochs_run"] == 2
    assert not list(models.rglob("*.npz"))  # the starting and best weights waited in files, gone now
    with zipfile.ZipFile(paths.model_path(models, "autoencoder")) as saved:  # for inference: no optimizer
        assert not json.loads(saved.read("config.json")).get("compile_config")
    # The same PCA, computed here, projects the validation song to the same figures.
    folder = paths.steps_dir(pipeline["data"])
    index = datasets.steps_index(folder)
    mean, basis = autoencode.fit_pca(autoencode.sample_segments(folder, index, "train", 64, seed=0), 16)
    steps = datasets.load_song_steps(folder, datasets.songs_in_split(index, "validation")[0])
    flat = segments_of(audio.unframe_steps(steps)).reshape(len(steps), -1)
    projected = ((flat - mean) @ basis @ basis.T + mean).reshape(len(steps), audio.SEGMENT_FRAMES, audio.CHANNELS)
    expected = metrics.snr_db(audio.unframe_steps(steps), crossfade.overlap_add(projected))
    assert figures["snr_db"] == pytest.approx(expected, abs=0.01)


def test_pca_of_fewer_samples_than_components_keeps_only_the_directions_they_span():
    """20 samples span 19 directions once centred; asking for 30 must not return the null directions scaled
    up from rounding noise (which made a PCA start of 300 real steps for 512 numbers 24 dB worse than none)."""
    random = np.random.default_rng(0)
    samples = (random.standard_normal((20, 6)) @ random.standard_normal((6, 400))
               + 0.1 * random.standard_normal((20, 400))).astype(np.float32)
    held_out = samples[:5] + 0.0  # fit_pca centres its input in place
    mean, basis = autoencode.fit_pca(samples.copy(), 30)
    assert basis.shape == (400, 19)
    np.testing.assert_allclose(basis.T @ basis, np.eye(19), atol=1e-4)
    np.testing.assert_allclose((held_out - mean) @ basis @ basis.T + mean, held_out, atol=1e-3)  # in the span


def test_pca_segments_are_cut_off_the_step_grid_reproducibly(pipeline):
    folder = paths.steps_dir(pipeline["data"])
    index = datasets.steps_index(folder)
    first, again = (autoencode.sample_segments(folder, index, "train", 40, seed=3) for _ in range(2))
    assert first.shape == (40, audio.SEGMENT_FRAMES * audio.CHANNELS) and np.array_equal(first, again)
    on_grid = {segment.tobytes() for song in datasets.songs_in_split(index, "train")
               for segment in segments_of(audio.unframe_steps(datasets.load_song_steps(folder, song))).reshape(
                   -1, audio.SEGMENT_FRAMES * audio.CHANNELS)}
    assert sum(segment.tobytes() in on_grid for segment in first) < 5  # 1 in 11025 offsets is on the grid


@pytest.mark.parametrize("first", [-audio.SEGMENT_MARGIN, -5, 0, 3000, 20000 - audio.SEGMENT_FRAMES + 7])
def test_sampled_segments_are_those_of_the_song_padded_with_silence(first):
    """Cut from the song as stored (int16) without padding a float32 copy: the same numbers as padding it."""
    random = np.random.default_rng(0)
    stored = random.integers(-30000, 30000, (20000, audio.CHANNELS)).astype(np.int16)
    padded = np.pad(datasets.decode_stored_steps(stored), ((audio.SEGMENT_MARGIN, audio.SEGMENT_MARGIN), (0, 0)))
    start = first + audio.SEGMENT_MARGIN
    np.testing.assert_array_equal(autoencode.segment_with_silent_margins(stored, first),
                                  padded[start:start + audio.SEGMENT_FRAMES])


@pytest.mark.parametrize("transform", ["dct", "trimmed-dct"])
def test_dct_sparse_code_is_exact_for_a_segment_with_fewer_coefficients_than_peaks(transform):
    bins = spectrum_bins(transform)
    spectrum = np.zeros(bins)
    where = [40, 41, 900, bins // 2 + 300, 20000]  # three in the mid spectrum, two in the side one
    spectrum[where] = [3.0, -2.0, 1.0, 0.5, -0.25]
    segment = segment_from_spectrum(spectrum, transform)
    encoder, decoder = autoencode.build_sparse(16, envelope_blocks=0, transform=transform)
    peaks, bands = code_layout(16)
    code = encoder.predict(segment, verbose=0)[0]
    assert (peaks, bands) == (7, 2)
    positions = np.round(code[:peaks] * bins).astype(int)
    assert set(where) <= set(positions) and np.all(np.diff(positions) > 0)  # ascending frequency
    values = code[peaks:2 * peaks]
    np.testing.assert_allclose(values[np.isin(positions, where)], [3.0, -2.0, 1.0, 0.5, -0.25], atol=1e-5)
    np.testing.assert_allclose(decoder.predict(code[None], verbose=0), segment, atol=1e-5)


def test_the_default_dct_is_a_fast_length_and_both_its_paths_invert_it():
    """New codes' DCT drops the segment's outermost frames (where cross-fades weigh it under 2e-5) for a length
    SciPy's FFTs take in a few passes: SEGMENT_FRAMES is prime. SciPy's DCTs (codes with a noise envelope) and
    TensorFlow's agree, and the inverse gives the segment back, silent outside the transform's frames."""
    import tensorflow as tf

    from common.codec.layout import bins_per_channel
    from common.codec.transforms import _fast_spectrum, _fast_waveform, _spectrum, _waveform

    def largest_prime_factor(number):
        factor = 2
        while factor * factor <= number:
            if number % factor:
                factor += 1
            else:
                number //= factor
        return number

    length = bins_per_channel(TRANSFORMS[0])
    assert TRANSFORMS[0] == "trimmed-dct" and largest_prime_factor(length) <= 17  # 13770 = 2 x 3^4 x 5 x 17
    assert largest_prime_factor(audio.SEGMENT_FRAMES) == audio.SEGMENT_FRAMES
    first, last = (audio.SEGMENT_FRAMES - length) // 2, (audio.SEGMENT_FRAMES + length) // 2
    assert crossfade.crossfade_window()[max(first, audio.SEGMENT_FRAMES - last)] < 2e-5
    segment = np.random.default_rng(0).standard_normal((3, audio.SEGMENT_FRAMES, 2)).astype(np.float32)
    inside = np.zeros_like(segment)
    inside[:, first:last] = segment[:, first:last]
    by_scipy = np.asarray(_fast_spectrum(tf.constant(segment), TRANSFORMS[0]))
    by_tensorflow = np.asarray(_spectrum(tf.constant(segment), TRANSFORMS[0]))
    np.testing.assert_allclose(by_scipy, by_tensorflow, atol=1e-5)
    assert by_scipy.shape == (3, spectrum_bins(TRANSFORMS[0]))
    np.testing.assert_allclose(np.asarray(_fast_waveform(tf.constant(by_scipy), TRANSFORMS[0])), inside, atol=1e-5)
    np.testing.assert_allclose(np.asarray(_waveform(tf.constant(by_scipy), TRANSFORMS[0])), inside, atol=1e-5)


def hand_made_song_codes(num_steps, latent_dim, transform, log_levels, seed=0):
    """(num_steps, latent_dim) sparse codes: peaks at random distinct bins (ascending) with values of 0.5-2 in
    either sign, every band at log_levels."""
    peaks, bands = code_layout(latent_dim)
    rng = np.random.default_rng(seed)
    bins = np.sort([rng.choice(spectrum_bins(transform), peaks, replace=False) for _ in range(num_steps)], axis=1)
    values = rng.uniform(0.5, 2.0, (num_steps, peaks)) * rng.choice([-1, 1], (num_steps, peaks))
    levels = np.broadcast_to(np.asarray(log_levels, float), (num_steps, bands))
    return np.concatenate([bins / spectrum_bins(transform), values, levels], axis=1).astype(np.float32)


def test_lapped_sparse_code_round_trips_a_song_of_few_coefficients_exactly():
    """The lapped transform is orthonormal over the song: a song whose steps each hold fewer coefficients
    than the code has peaks comes back with the same codes."""
    from common import models
    from common.codec import decoded_segments_are_lapped

    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=16, lapped=True, envelope_blocks=0)
    assert decoded_segments_are_lapped(decoder) and code_layout(16) == (7, 2)
    codes = hand_made_song_codes(6, 16, "lapped", [-30.0, -30.0])  # band levels too low for audible noise
    song = models.decode(decoder, codes)
    again = models.encode(encoder, audio.frame_steps(song))
    # The first and last steps have no neighbour on one side, so their margins are not all in the song.
    np.testing.assert_allclose(again[1:-1, :14], codes[1:-1, :14], atol=2e-5)
    # Decoded parts are cross-faded as they are: the energy correction would break this.
    assert not decoded_segments_are_lapped(sparse_codec(16, "dct")[1])


def test_lapped_decoder_fills_the_bins_it_has_no_value_for_at_a_fraction_of_their_level():
    """Noise at NOISE_GAIN times each band's level: the decoded song, encoded again, has that level."""
    from common import models
    from common.codec import NOISE_GAIN, band_of_each_bin

    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=64, lapped=True, envelope_blocks=0)
    codes = hand_made_song_codes(6, 64, "lapped", np.log(np.geomspace(0.1, 0.001, code_layout(64)[1])))
    again = models.encode(encoder, audio.frame_steps(models.decode(decoder, codes)))
    peaks, bands = code_layout(64)
    wide = np.bincount(band_of_each_bin(bands, "lapped")) > 1000  # enough bins for the noise's RMS to settle
    np.testing.assert_allclose(np.exp(again[1:-1, 2 * peaks:])[:, wide],
                               NOISE_GAIN * np.exp(codes[1:-1, 2 * peaks:])[:, wide], rtol=0.1)
    np.testing.assert_allclose(again[1:-1, :2 * peaks], codes[1:-1, :2 * peaks], atol=1e-3)  # peaks stay


def test_lapped_decoder_noise_changes_from_step_to_step_of_a_steady_sound():
    """A steady chord keeps its peak bins, with values that barely move: its noise must not repeat every step
    (a 4 Hz pattern) nor be a shifted copy of the neighbour's (step edges smoother than the rest)."""
    from common import models

    _, decoder = autoencode.build_architecture("sparse", latent_dim=64, lapped=True)
    steady = np.repeat(hand_made_song_codes(1, 64, "lapped", np.log(np.full(code_layout(64)[1], 0.05))), 400, axis=0)
    peaks = code_layout(64)[0]
    # Quiet peaks (the noise is what is measured) whose size swings from step to step, as a steady tone's
    # coefficients do with its phase.
    swell = np.random.default_rng(1).uniform(0.5, 1.5, (400, 1))
    steady[:, peaks:2 * peaks] = 1e-3 * np.sign(steady[:, peaks:2 * peaks]) * swell
    song = models.decode(decoder, steady)
    steps = audio.frame_steps(song)
    assert np.corrcoef(steps[10].ravel(), steps[11].ravel())[0, 1] < 0.1
    assert 0.85 < metrics.boundary_ratio(song) < 1.2  # a shifted copy: 0.6; five seeds: 1.02-1.07


def test_lapped_analysis_and_synthesis_give_the_song_back_exactly():
    """What a dense --lapped autoencoder wraps its two linear layers in: with nothing lost between them, the
    decoded parts cross-fade (with no energy correction) into the song itself, apart from its first and last
    margin, which have no neighbour to fold with."""
    import keras

    from common import models
    from common.codec import LappedAnalysis, LappedSynthesis, decoded_segments_are_lapped

    song = synth_song(3.0)
    steps = audio.frame_steps(song)
    score = keras.Input((audio.CHANNELS * audio.STEP_FRAMES,))
    identity_decoder = keras.Model(score, LappedSynthesis()(score))
    assert decoded_segments_are_lapped(identity_decoder)
    folded = np.asarray(LappedAnalysis()(segments_of(song)))
    assert folded.shape == (len(steps), audio.CHANNELS * audio.STEP_FRAMES)
    # Orthonormal: the folded steps hold the song's energy (its margins folded, not counted twice; only the
    # song's first and last margin are partly folded into steps outside it).
    np.testing.assert_allclose(np.sum(folded ** 2), np.sum(song[:len(steps) * audio.STEP_FRAMES] ** 2), rtol=0.01)
    assert np.sum(np.asarray(segments_of(song)) ** 2) > 1.2 * np.sum(folded ** 2)  # segments double the margins
    decoded = models.decode(identity_decoder, folded)
    margin = audio.SEGMENT_MARGIN
    np.testing.assert_allclose(decoded[margin:-margin], audio.unframe_steps(steps)[margin:-margin], atol=1e-5)


def test_the_bound_keeps_exactly_each_steps_largest_lapped_coefficients():
    """bench/fidelity.py's bound: analysed again, the steps it gives back hold each step's count largest
    coefficients of the song, at their values, and no others (away from the song's first and last margin)."""
    import tensorflow as tf

    from common.codec import keep_largest_coefficients
    from common.codec.transforms import _spectrum

    song = synth_song(2.0) + 0.01 * np.random.default_rng(0).standard_normal((88200, 2)).astype(np.float32)
    segments = audio.segments_from_steps(audio.frame_steps(song))
    count = 300
    kept = crossfade.overlap_add(keep_largest_coefficients(segments, count), keep_energy=False)
    original = np.asarray(_spectrum(tf.constant(segments), "lapped"))[1:-1]
    again = np.asarray(_spectrum(tf.constant(audio.segments_from_steps(audio.frame_steps(kept))), "lapped"))[1:-1]
    largest = np.argsort(-np.abs(original), axis=1)[:, :count]
    expected = np.zeros_like(original)
    np.put_along_axis(expected, largest, np.take_along_axis(original, largest, axis=1), axis=1)
    np.testing.assert_allclose(again, expected, atol=1e-4 * np.abs(original).max())
    assert np.all(np.count_nonzero(np.abs(again) > 1e-3 * np.abs(original).max(), axis=1) <= count)


def test_sparse_layers_saved_before_the_lapped_transform_load_as_dct():
    """Their configs have no "transform": they keep decoding as they were made, with the energy correction."""
    from common.codec import SparseSpectrumDecoding, SparseSpectrumEncoding, decoded_segments_are_lapped

    for layer_class in (SparseSpectrumEncoding, SparseSpectrumDecoding):
        config = layer_class(7, 2, transform="lapped").get_config()
        assert config.pop("transform") == "lapped"
        assert layer_class.from_config(config).transform == "dct"
    with pytest.raises(ValueError, match="unknown sparse-code transform"):
        SparseSpectrumDecoding(7, 2, transform="mdst")
    assert not decoded_segments_are_lapped(autoencode.build_architecture("dense", latent_dim=16)[1])


def test_dct_sparse_decoder_fills_the_bins_it_has_no_value_for_at_a_fraction_of_their_level():
    """Band levels are the RMS of the coefficients not kept; the decoder puts noise at NOISE_GAIN times that there."""
    from common.codec import NOISE_GAIN, band_of_each_bin

    rng = np.random.default_rng(0)
    spectrum = rng.standard_normal(DCT_BINS) * np.repeat([1.0, 0.1], audio.SEGMENT_FRAMES)  # quieter side
    encoder, decoder = sparse_codec(64, "dct")
    peaks, bands = code_layout(64)
    code = encoder.predict(segment_from_spectrum(spectrum), verbose=0)[0]
    kept = np.zeros(DCT_BINS, bool)
    kept[np.round(code[:peaks] * DCT_BINS).astype(int)] = True
    band = band_of_each_bin(bands, "dct")
    rest_rms = np.array([np.sqrt(np.mean(spectrum[(band == b) & ~kept] ** 2)) for b in range(bands)])
    np.testing.assert_allclose(np.exp(code[2 * peaks:]), rest_rms, rtol=1e-3)
    decoded = decoder.predict(code[None], verbose=0)[0]
    mid_side = np.stack([decoded[:, 0] + decoded[:, 1], decoded[:, 0] - decoded[:, 1]]) / 2
    filled = scipy.fft.dct(mid_side, norm="ortho").reshape(-1)
    filled_rms = np.array([np.sqrt(np.mean(filled[(band == b) & ~kept] ** 2)) for b in range(bands)])
    wide = np.bincount(band) > 1000  # enough bins for the noise's RMS to be close to its expectation
    np.testing.assert_allclose(filled_rms[wide], NOISE_GAIN * rest_rms[wide], rtol=0.1)
    np.testing.assert_allclose(filled[kept], spectrum[kept], atol=1e-4)


def test_sparse_decoder_turns_any_score_into_finite_audio():
    """A score model's predictions are not codes the encoder made: positions off the grid, wild levels."""
    _, decoder = autoencode.build_architecture("sparse", latent_dim=16)
    wild = np.random.default_rng(0).normal(0, 100, (8, 16)).astype(np.float32)
    assert np.isfinite(decoder.predict(wild, verbose=0)).all()


def test_sparse_code_beats_the_pca_of_the_same_size_on_an_unheard_song():
    train = np.concatenate([synth_song(6.0, seed=seed) for seed in (1, 2, 3)])
    mean, basis = autoencode.fit_pca(segments_of(train).reshape(-1, audio.SEGMENT_FRAMES * audio.CHANNELS), 32)
    test_segments = segments_of(synth_song(4.0, seed=4))
    flat = test_segments.reshape(len(test_segments), -1)
    pca = crossfade.overlap_add(((flat - mean) @ basis @ basis.T + mean).reshape(test_segments.shape))
    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=32)
    sparse = crossfade.overlap_add(decoder.predict(encoder.predict(test_segments, verbose=0), verbose=0))
    original = crossfade.overlap_add(test_segments)
    assert metrics.si_sdr_db(original, sparse) > metrics.si_sdr_db(original, pca) + 3
    # Not the spectral distances: on these pure synthetic tones the noise fill of quiet bands costs more log-mel
    # distance than PCA's muffling does; on real music it is the other way round (bench/fidelity.py, docs/codec.md).


def test_loss_ranks_reconstructions_by_how_close_they_are():
    from common.models import SpectralWaveformLoss

    loss = SpectralWaveformLoss()
    segments = segments_of(synth_song(2.0))
    noise = np.random.default_rng(0).standard_normal(segments.shape).astype(np.float32) * segments.std()

    def value(estimate):
        return float(np.mean(loss(segments, estimate.astype(np.float32))))

    late = np.roll(segments, 22, axis=1)  # half a millisecond late: right spectrum, wrong waveform
    assert value(segments) < value(segments + 0.03 * noise) < value(segments + 0.3 * noise) < value(0 * segments)
    assert value(segments + 0.03 * noise) < value(late) < value(0 * segments)
    # Floors: a silent target with a -80 dBFS error is a small loss, not a division by (almost) zero.
    silence = np.zeros_like(segments)
    assert float(np.mean(loss(silence, 1e-4 * noise / segments.std()))) < 1.0
