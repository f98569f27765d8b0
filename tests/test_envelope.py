"""The sparse code's envelope: each step's loudness in blocks of time, kept by the encoder and put back on the
decoded sound, so that a score model's peaks, whose signs are a guess, still sound with their beats."""
import numpy as np
import pytest

import autoencode
from common import audio, models
from common.codec import (
    MAX_ENVELOPE_GAIN,
    MIN_ENVELOPE_GAIN,
    TRANSFORMS,
    SparseFormat,
    SparseSpectrumDecoding,
    code_layout,
    envelope_block_edges,
    record_format,
    scale_codes,
    sparse_format,
)

LATENT = 64  # 8 envelope blocks, 24 peaks, 8 bands
BLOCKS = 8


def block_rms(samples):
    """(steps, BLOCKS) RMS over both channels of each envelope block of each step."""
    steps = audio.frame_steps(samples)
    edges = envelope_block_edges(BLOCKS)
    return np.stack([np.sqrt(np.mean(np.square(steps[:, a:b], dtype=np.float64), axis=(1, 2)))
                     for a, b in zip(edges[:-1], edges[1:])], axis=1)


def beat_song(steps=10, seed=0):
    """A 150 Hz + 1.3 kHz note struck in the third block of every step and dying away within it: all of each
    step's energy in one 31 ms block."""
    rng = np.random.default_rng(seed)
    edges = envelope_block_edges(BLOCKS)
    t = np.arange(edges[3] - edges[2]) / audio.SAMPLE_RATE
    note = (np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 1300 * t)) * np.exp(-t / 0.008)
    song = np.zeros((steps * audio.STEP_FRAMES, audio.CHANNELS), np.float32)
    for step in range(steps):
        start = step * audio.STEP_FRAMES + edges[2]
        song[start:start + len(note)] = 0.4 * note[:, None] * rng.uniform(0.8, 1.2, audio.CHANNELS)
    return song


def with_random_signs(codes, code_format, seed=0):
    """The codes with every peak's sign at random, as a score model that cannot tell phase would give them."""
    peaks, _ = code_format.layout(codes.shape[1])
    codes = codes.copy()
    codes[:, peaks:2 * peaks] *= np.random.default_rng(seed).choice(np.float32([-1, 1]), size=(len(codes), peaks))
    return codes


def test_the_layout_leaves_the_envelope_at_the_end_and_the_default_scales_with_tiny_codes():
    assert code_layout(512, 8) == (220, 64) and code_layout(512) == (224, 64)  # codes saved before the envelope
    assert code_layout(LATENT, BLOCKS) == (24, 8) and code_layout(16, 2) == (6, 2)
    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=LATENT)
    assert sparse_format(decoder) == SparseFormat(TRANSFORMS[0], BLOCKS) and encoder.output_shape == (None, LATENT)
    assert sparse_format(autoencode.build_architecture("sparse", latent_dim=16, lapped=True)[1]) == \
        SparseFormat("lapped", 2)
    assert record_format({}) == SparseFormat("dct", 0)  # a record from before the lapped transform and envelope


def test_a_decoder_saved_before_the_envelope_reads_as_one_without():
    config = SparseSpectrumDecoding(24, 8, name="reconstruction").get_config()
    del config["envelope_blocks"]
    assert SparseSpectrumDecoding.from_config(config).envelope_blocks == 0


@pytest.mark.parametrize("transform", ["dct", "lapped"])
def test_the_encoder_keeps_the_rms_of_each_block_of_the_step(transform):
    encoder, _ = autoencode.build_architecture("sparse", latent_dim=LATENT, lapped=transform == "lapped")
    rng = np.random.default_rng(1)
    loudness = rng.uniform(0.01, 0.5, (6, BLOCKS))
    edges = envelope_block_edges(BLOCKS)
    steps = rng.standard_normal((6, audio.STEP_FRAMES, audio.CHANNELS)).astype(np.float32)
    for block, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        steps[:, a:b] *= loudness[:, block, None, None]
    codes = models.encode(encoder, steps)
    np.testing.assert_allclose(np.exp(codes[:, -BLOCKS:]), block_rms(audio.unframe_steps(steps)), rtol=1e-4)


@pytest.mark.parametrize("transform", ["dct", "lapped"])
def test_random_peak_signs_keep_the_beat_with_the_envelope_and_lose_it_without(transform):
    """The reason for the envelope: with random signs a struck note smears over the whole step."""
    song = beat_song()
    contrast = {}
    for blocks in (BLOCKS, 0):
        encoder, decoder = autoencode.build_architecture("sparse", latent_dim=LATENT, lapped=transform == "lapped",
                                                         envelope_blocks=blocks)
        code_format = sparse_format(decoder)
        decoded = models.decode(decoder, with_random_signs(models.encode(encoder, audio.frame_steps(song)),
                                                           code_format))
        rms = block_rms(decoded)[1:-1]  # steps with both neighbours
        contrast[blocks] = 20 * np.log10(np.median(rms[:, 2] / np.delete(rms, 2, axis=1).mean(axis=1)))
    original = block_rms(song)[1:-1]
    assert np.all(np.delete(original, 2, axis=1) < 1e-6 * original[:, 2:3])  # the note is all in block 2
    # Without it the note's block is no louder than the others; with it, as much louder as the gain's
    # bounds allow through a curve between block centres (+12 dB between the bounds at the centres).
    assert contrast[BLOCKS] > 6.5 and contrast[0] < 1, contrast


def test_decoding_in_batches_gives_the_whole_scores_envelope():
    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=LATENT)
    song = beat_song(steps=9) + 0.01 * np.random.default_rng(2).standard_normal(
        (9 * audio.STEP_FRAMES, audio.CHANNELS)).astype(np.float32)
    codes = with_random_signs(models.encode(encoder, audio.frame_steps(song)), sparse_format(decoder))
    np.testing.assert_allclose(models.decode(decoder, codes, batch_size=2), models.decode(decoder, codes),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("change_db", [40, -40])
def test_the_envelope_gain_is_bounded_both_ways(change_db):
    """An envelope far louder or quieter than its peaks (a wild prediction) moves their sound by at most
    MAX_ENVELOPE_GAIN up and MIN_ENVELOPE_GAIN down: no noise blown up, no dropout."""
    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=LATENT)
    # The same peaks and bands without the envelope: code_layout(LATENT - BLOCKS) is the same (24, 8).
    _, raw_decoder = autoencode.build_architecture("sparse", latent_dim=LATENT - BLOCKS, envelope_blocks=0)
    song = beat_song(steps=4) + 0.05 * np.random.default_rng(4).standard_normal(
        (4 * audio.STEP_FRAMES, audio.CHANNELS)).astype(np.float32)
    codes = models.encode(encoder, audio.frame_steps(song))
    codes[:, -BLOCKS:] += np.log(10 ** (change_db / 20))
    changed, raw = models.decode(decoder, codes), models.decode(raw_decoder, codes[:, :-BLOCKS])
    heard = np.abs(raw) > 1e-3 * np.abs(raw).max()
    ratio = np.abs(changed)[heard] / np.abs(raw)[heard]
    assert MIN_ENVELOPE_GAIN * (1 - 1e-5) <= ratio.min() and ratio.max() <= MAX_ENVELOPE_GAIN * (1 + 1e-5)
    bound = MAX_ENVELOPE_GAIN if change_db > 0 else MIN_ENVELOPE_GAIN
    np.testing.assert_allclose(np.median(ratio), bound, rtol=1e-3)  # the bound is what it gets


def test_a_scaled_code_with_an_envelope_decodes_louder_by_the_gain():
    encoder, decoder = autoencode.build_architecture("sparse", latent_dim=LATENT)
    codes = with_random_signs(models.encode(encoder, audio.frame_steps(beat_song(steps=5))), sparse_format(decoder))
    scaled = scale_codes(codes, np.full(len(codes), 0.5), sparse_format(decoder))
    np.testing.assert_allclose(models.decode(decoder, scaled), 0.5 * models.decode(decoder, codes),
                               rtol=1e-4, atol=1e-6)
