"""The sparse code's noise envelope: the loudness over time, in a few frequency groups, of what the peaks
leave out, which the decoder's short-time noise follows, so an attack's noise comes with the attack instead of
spreading over its quarter second (and a round trip keeps the beat)."""
import keras
import numpy as np
import pytest
import scipy.signal

import autoencode
from common import audio, models
from common.codec_layers import (
    DEFAULT_NOISE_BLOCKS,
    DEFAULT_NOISE_GROUPS,
    NOISE_GAIN,
    SparseFormat,
    SparseSpectrumDecoding,
    _residual_envelope,
    code_layout,
    noise_group_of_hertz,
    record_format,
    scale_codes,
    sparse_format,
)

LATENT = 512  # the default: 8 envelope blocks, 3 x 16 noise blocks
GROUPS, BLOCKS = DEFAULT_NOISE_GROUPS, DEFAULT_NOISE_BLOCKS
SR = audio.SAMPLE_RATE


def hat_song(steps=12, seed=0):
    """A soft chord with a hi-hat-like burst of noise above 3 kHz every 0.29 s (off the step grid): attacks that
    the chord's peaks do not hold, so it is the noise fill that must keep them."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps * audio.STEP_FRAMES) / SR
    chord = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate((220, 277, 330, 440)))
    song = 0.1 * chord[:, None] * np.ones(audio.CHANNELS)
    hits = np.arange(int(0.13 * SR), len(t) - SR // 10, int(0.29 * SR))
    decay = np.exp(-np.arange(4000) / 1300)[:, None]
    high_pass = scipy.signal.butter(4, 3000, "highpass", fs=SR, output="sos")
    for hit in hits:
        song[hit:hit + 4000] += 0.5 * scipy.signal.sosfilt(high_pass, rng.standard_normal((4000, 2)), axis=0) * decay
    return song.astype(np.float32), hits


def round_trip(song, **settings):
    encoder, decoder = autoencode.build_sparse(LATENT, **settings)
    return models.decode(decoder, models.encode(encoder, audio.frame_steps(song)))


def test_new_codes_have_a_noise_envelope_and_tiny_and_old_ones_do_not():
    assert code_layout(512, 8, GROUPS, BLOCKS) == (199, 58) and code_layout(512, 8) == (220, 64)
    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=LATENT)
    assert sparse_format(decoder) == SparseFormat("dct", 8, GROUPS, BLOCKS) and encoder.output_shape == (None, LATENT)
    assert sparse_format(autoencode.build_architecture("sparse", latent_dim=64)[1]) == SparseFormat("dct", 8)
    assert record_format(autoencode.sparse_record(decoder)) == SparseFormat("dct", 8, GROUPS, BLOCKS)
    assert record_format({"envelope_blocks": 8}) == SparseFormat("dct", 8, 0, 0)  # a record from before it
    config = SparseSpectrumDecoding(199, 58, envelope_blocks=8, name="reconstruction").get_config()
    del config["noise_groups"], config["noise_blocks"]  # a decoder saved before the noise envelope
    assert SparseSpectrumDecoding.from_config(config).noise_groups == 0


def test_the_groups_split_at_log_spaced_frequencies():
    assert list(noise_group_of_hertz([0, 700, 900, 2400, 2600, 20000], 3)) == [0, 0, 1, 1, 2, 2]


def test_the_encoder_keeps_the_rms_of_what_the_peaks_leave_out_in_each_group_and_block():
    """Loud noise above 3 kHz in one block of each step over a steady low tone: the top group's envelope
    has it in that block, the bottom group's (the tone is all peaks, its rest is tiny) stays low and flat."""
    rng = np.random.default_rng(1)
    t = np.arange(4 * audio.STEP_FRAMES) / SR
    song = 0.3 * np.sin(2 * np.pi * 110 * t)[:, None] * np.ones(2)
    burst = scipy.signal.sosfilt(scipy.signal.butter(4, 3000, "highpass", fs=SR, output="sos"),
                                 rng.standard_normal((4 * audio.STEP_FRAMES, 2)), axis=0)
    hop = audio.STEP_FRAMES // BLOCKS
    for step in range(4):
        start = step * audio.STEP_FRAMES + 5 * hop
        song[start:start + hop] += 0.2 * burst[start:start + hop]
    encoder, decoder = autoencode.build_sparse(LATENT)
    peaks, bands = code_layout(LATENT, 8, GROUPS, BLOCKS)
    codes = models.encode(encoder, audio.frame_steps(song.astype(np.float32)))
    envelope = codes[1:-1, 2 * peaks + bands:2 * peaks + bands + GROUPS * BLOCKS].reshape(-1, GROUPS, BLOCKS)
    top = np.delete(envelope[:, -1], 5, axis=1)
    assert np.all(envelope[:, -1, 5] > top.max(axis=1) + np.log(10))  # +20 dB in the burst's block
    np.testing.assert_allclose(np.exp(envelope[:, -1, 5]), 0.2 * np.sqrt(np.mean(burst ** 2)), rtol=0.25)
    assert np.all(envelope[:, 0] < envelope[:, -1, 5:6] - np.log(10))


def test_the_decoded_noise_has_the_level_its_envelope_asks_for_in_each_group_and_block():
    """A code with no peaks: what it decodes to is all noise, whose RMS per group and block, measured as the
    encoder measures it, is NOISE_GAIN times the envelope's."""
    import tensorflow as tf

    _, decoder = autoencode.build_sparse(LATENT)
    peaks, bands = code_layout(LATENT, 8, GROUPS, BLOCKS)
    rng = np.random.default_rng(2)
    codes = np.zeros((6, LATENT), np.float32)
    codes[:, :peaks] = np.sort(rng.uniform(0, 1, (6, peaks)), axis=1)
    codes[:, 2 * peaks:2 * peaks + bands] = rng.uniform(-6, -3, (6, bands))
    # Groups within 17 dB of each other, blocks within +/-3 dB of their group's level: a frame's window reaches
    # a quarter of a block into its neighbours, and a short FFT's bins into their neighbours, so far larger
    # jumps leak.
    targets = (rng.uniform(-5, -3, (6, GROUPS, 1)) + rng.uniform(-0.35, 0.35, (6, GROUPS, BLOCKS)))
    targets = targets.reshape(6, -1).astype(np.float32)
    codes[:, 2 * peaks + bands:2 * peaks + bands + GROUPS * BLOCKS] = targets
    segments = models.inference(decoder, codes)
    measured = np.asarray(_residual_envelope(tf.constant(segments), GROUPS, BLOCKS))
    # The noise is random and a block is short (16 ms): each block's level is off by about 1 dB, few by 3.
    error_db = 20 / np.log(10) * (measured - targets - np.log(NOISE_GAIN))
    assert np.abs(np.median(error_db)) < 0.5 and np.median(np.abs(error_db)) < 1.5, error_db
    assert np.percentile(np.abs(error_db), 95) < 3 and np.max(np.abs(error_db)) < 6, error_db


def test_a_round_trip_of_hi_hats_keeps_their_onsets_and_their_attacks_sharper():
    """Today's code before the noise envelope spreads a hit's noise over its step: onsets move or vanish and
    the quiet before each hit fills with noise. With it, the round trip's onsets are the original's (librosa,
    within 25 ms) and the hits stand out of the 50 ms before them by 4 dB more above 3 kHz. (The peaks that
    the bursts' largest coefficients take still smear over their step: that part of the pre-echo remains.)"""
    import librosa
    import mir_eval

    song, hits = hat_song()
    high_pass = scipy.signal.butter(4, 3000, "highpass", fs=SR, output="sos")

    def onsets(samples):
        return librosa.onset.onset_detect(y=samples.mean(axis=1), sr=SR, units="time")

    def attack_contrast_db(decoded):  # high-band energy in the 50 ms after each hit over the 50 to 5 ms before
        high = scipy.signal.sosfiltfilt(high_pass, decoded, axis=0)
        before = sum(np.sum(high[hit - SR // 20:hit - SR // 200] ** 2) for hit in hits)
        return 10 * np.log10(sum(np.sum(high[hit:hit + SR // 20] ** 2) for hit in hits) / before)

    figures = {}
    for name, settings in (("before", {"noise_groups": 0}), ("now", {})):
        decoded = round_trip(song, **settings)
        figures[name] = (mir_eval.onset.f_measure(onsets(song), onsets(decoded), window=0.025)[0],
                         attack_contrast_db(decoded))
    assert figures["now"][0] >= 0.85 and figures["before"][0] <= 0.75, figures
    assert figures["now"][1] > figures["before"][1] + 3, figures


def test_a_scaled_code_with_a_noise_envelope_decodes_louder_by_the_gain():
    encoder, decoder = autoencode.build_sparse(LATENT)
    song, _ = hat_song(steps=5)
    codes = models.encode(encoder, audio.frame_steps(song))
    scaled = scale_codes(codes, np.full(len(codes), 0.5), sparse_format(decoder))
    np.testing.assert_allclose(models.decode(decoder, scaled), 0.5 * models.decode(decoder, codes),
                               rtol=1e-3, atol=1e-6)


def test_steps_of_a_steady_sound_get_different_noise():
    """The same peak bins every step (a steady chord): the noise still changes from step to step, or the
    round trip would repeat one noise pattern four times a second."""
    t = np.arange(6 * audio.STEP_FRAMES) / SR
    song = (0.2 * np.sin(2 * np.pi * 220 * t)[:, None] * np.ones(2)
            + 0.02 * np.random.default_rng(3).standard_normal((len(t), 2))).astype(np.float32)
    decoded = round_trip(song)
    steps = audio.frame_steps(decoded - song)[1:-1]
    correlation = np.corrcoef(steps[:, :, 0])
    assert np.max(np.abs(correlation[np.triu_indices(len(steps), 1)])) < 0.3


def test_a_noise_envelope_codec_saved_and_loaded_in_safe_mode_decodes_the_same(tmp_path):
    encoder, decoder = autoencode.build_sparse(LATENT)
    song, _ = hat_song(steps=4)
    codes = models.encode(encoder, audio.frame_steps(song))
    for model, name in ((encoder, "encoder"), (decoder, "decoder")):
        models.save_model(model, tmp_path / f"{name}.keras")
    loaded_encoder = keras.saving.load_model(tmp_path / "encoder.keras", compile=False, safe_mode=True)
    loaded_decoder = keras.saving.load_model(tmp_path / "decoder.keras", compile=False, safe_mode=True)
    np.testing.assert_array_equal(models.encode(loaded_encoder, audio.frame_steps(song)), codes)
    np.testing.assert_array_equal(models.decode(loaded_decoder, codes), models.decode(decoder, codes))


@pytest.mark.parametrize("flag", ["--noise-groups", "--noise-blocks"])
def test_the_noise_envelope_flags_are_for_the_sparse_code_only(flag):
    from common.errors import PipelineError

    with pytest.raises(PipelineError, match=flag):
        autoencode.build_architecture("dense", latent_dim=64, **{flag[2:].replace("-", "_"): 2})


def test_a_wild_score_decodes_to_finite_audio_through_the_noise_envelope():
    _, decoder = autoencode.build_sparse(LATENT)
    rng = np.random.default_rng(5)
    codes = rng.normal(0, 100, (8, LATENT)).astype(np.float32)  # as test_autoencoders' wild score
    assert np.all(np.isfinite(models.decode(decoder, codes)))
