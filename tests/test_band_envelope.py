"""New 512-number codes keep the step's envelope in 4 bands (below 300 Hz, 0.3-1.5 kHz, 1.5-5 kHz, above) of
24 blocks of 10.4 ms, which models.decode puts back band by band: an attack in one band keeps the quiet before
it that the peaks of a long transform smear over, even where another band's steady tone hides it from a
whole-band envelope."""
import numpy as np
import pytest

import autoencode
from bench import music_features
from common import audio, models
from common.codec import envelope_block_edges, sparse_format
from common.codec.envelope import BAND_ENVELOPE_GAINS, split_bands
from common.codec.layout import BAND_ENVELOPE_BANDS, BAND_ENVELOPE_NUMBERS
from tests.test_noise_envelope import (
    LATENT,
    ONE_BAND,
    assert_a_saved_codec_loads_in_safe_mode_and_codes_the_same,
    round_trip,
)

SR = audio.SAMPLE_RATE
BANDS, BLOCKS = BAND_ENVELOPE_BANDS, BAND_ENVELOPE_NUMBERS // BAND_ENVELOPE_BANDS


def tone(hertz, seconds):
    return np.sin(2 * np.pi * hertz * np.arange(int(seconds * SR)) / SR)


def bass_attack_song(steps=8):
    """A steady 1 kHz tone, and from the third step on a 62 Hz note struck out of silence 150 ms into each step
    and dying away within 90 ms: an attack in the low band alone."""
    song = 0.2 * tone(1000, steps * audio.STEP_FRAMES / SR)
    attacks = np.arange(2, steps) * audio.STEP_FRAMES + int(0.15 * SR)
    note = 0.2 * tone(62, 0.09) * np.exp(-np.arange(int(0.09 * SR)) / (0.03 * SR))
    for attack in attacks:
        song[attack:attack + len(note)] += note
    return (song[:, None] * np.ones(audio.CHANNELS)).astype(np.float32), attacks


def test_the_bands_add_up_to_the_sound_and_each_holds_its_own_frequencies():
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((SR, audio.CHANNELS)).astype(np.float32)
    np.testing.assert_allclose(sum(split_bands(samples, BANDS)), samples, atol=1e-5)
    assert split_bands(samples, 1)[0] is samples
    for hertz, band in ((60, 0), (700, 1), (2700, 2), (12000, 3)):
        parts = split_bands((tone(hertz, 1.0)[:, None] * np.ones(2)).astype(np.float32), BANDS)
        power = [np.mean(part[SR // 4:-SR // 4] ** 2) for part in parts]  # away from the unpadded ends
        assert power[band] > 0.99 * sum(power), (hertz, power)


def test_the_bands_are_the_butterworth_low_passes_run_forward_and_back():
    """split_bands applies the filters' response on FFT blocks: away from the ends its bands are SciPy's
    sosfiltfilt ones to -80 dB, across the blocks of a long sound (2 s: 6 blocks) and for each row of a batch
    split along axis 1 (the encoder's segments), as the same row alone."""
    import scipy.signal

    from common.codec.layout import envelope_splits

    rng = np.random.default_rng(3)
    samples = rng.standard_normal((2 * SR, audio.CHANNELS)).astype(np.float32)
    expected, below = [], 0.0
    for hertz in envelope_splits(BANDS):
        sos = scipy.signal.butter(4, hertz, "low", fs=SR, output="sos")
        low = scipy.signal.sosfiltfilt(sos, samples.astype(np.float64), axis=0)
        expected.append(low - below)
        below = low
    expected.append(samples - below)
    inner = slice(SR // 10, -SR // 10)
    for part, reference in zip(split_bands(samples, BANDS), expected):
        assert part.dtype == np.float32 and part.shape == samples.shape
        error = np.sqrt(np.mean((part[inner] - reference[inner]) ** 2) / np.mean(samples ** 2))
        assert 20 * np.log10(error) < -80, 20 * np.log10(error)
    batch = samples[:3 * 12049].reshape(3, 12049, audio.CHANNELS)
    for band, part in enumerate(split_bands(batch, BANDS, axis=1)):
        for row in range(3):
            np.testing.assert_allclose(part[row], split_bands(batch[row], BANDS)[band], atol=1e-5)


def test_the_encoder_keeps_the_rms_of_each_block_of_each_band():
    """Noise whose level changes from block to block differently in each band: the code's last 96 numbers are
    the natural log of each band's RMS in each block of the step."""
    rng = np.random.default_rng(1)
    steps = 5
    noise = rng.standard_normal((steps * audio.STEP_FRAMES, audio.CHANNELS)).astype(np.float32)
    edges = envelope_block_edges(BLOCKS)
    song = np.zeros_like(noise)
    for part in split_bands(noise, BANDS):
        gains = rng.uniform(0.05, 0.5, steps * BLOCKS)
        sizes = np.tile(np.diff(edges), steps)
        song += part * np.repeat(gains, sizes)[:, None].astype(np.float32)
    encoder, decoder = autoencode.build_sparse(LATENT)
    assert sparse_format(decoder).envelope_bands == BANDS and sparse_format(decoder).fine_blocks == 0
    codes = models.encode(encoder, audio.frame_steps(song))
    expected = np.stack([[np.sqrt(np.mean(np.square(step[a:b], dtype=np.float64)))
                          for step in audio.frame_steps(part) for a, b in zip(edges[:-1], edges[1:])]
                         for part in split_bands(song, BANDS)]).reshape(BANDS, steps, BLOCKS).transpose(1, 0, 2)
    measured = np.exp(codes[:, -BANDS * BLOCKS:].reshape(steps, BANDS, BLOCKS))
    # Inner steps: the encoder splits each segment, whose margins settle the filters as the song's do.
    np.testing.assert_allclose(measured[1:-1], expected[1:-1], rtol=0.02)


def test_an_attack_in_one_band_keeps_the_quiet_before_it():
    """The peaks of a long transform spread the bass note over its step: 30 ms before each attack the one-band
    code's low band is 36 dB over the original's (-49 dB against -85), the band code's 24 dB (-62), and the
    attack itself keeps its level and comes out stronger in the onset envelope (0.35 against 0.28 of the
    original's, librosa's, what onset detection and the pulse read). (With the DCT of codes saved before the
    trimmed one, -60 and -71: there the 1 kHz tone, 250 periods a step, is one of the DCT's cosines.)"""
    song, attacks = bass_attack_song()

    def low_band_db(samples, start, stop):
        low = split_bands(samples, BANDS)[0]
        return np.mean([10 * np.log10(np.mean(low[attack + start:attack + stop] ** 2)) for attack in attacks])

    figures = {}
    for name, settings in (("bands", {}), ("one band", ONE_BAND)):
        decoded = round_trip(song, **settings)
        strength = music_features.attack_strength(music_features.onset_envelope(song),
                                                  music_features.onset_envelope(decoded))
        figures[name] = (low_band_db(decoded, -1300, -200), low_band_db(decoded, 0, 1300), strength)
    before, after = low_band_db(song, -1300, -200), low_band_db(song, 0, 1300)
    assert figures["bands"][0] < figures["one band"][0] - 10 and figures["bands"][0] < before + 25, figures
    assert abs(figures["bands"][1] - after) < 1, figures
    assert figures["bands"][2] > figures["one band"][2] + 0.03, figures


def test_the_band_gains_stay_within_their_bounds():
    """A code asking for 40 dB more or less in every block of the top band: the decoded band moves by the
    bound (x4 or /16), the other bands (tones far from the splits) stay as they were."""
    import scipy.signal

    encoder, decoder = autoencode.build_sparse(LATENT)
    rng = np.random.default_rng(2)
    frames = 6 * audio.STEP_FRAMES
    high = scipy.signal.sosfilt(scipy.signal.butter(8, 9000, "highpass", fs=SR, output="sos"),
                                rng.standard_normal(frames))
    song = 0.1 * (tone(100, frames / SR) + tone(1000, frames / SR) + high)
    song = (song[:, None] * np.ones(audio.CHANNELS)).astype(np.float32)
    codes = models.encode(encoder, audio.frame_steps(song))
    plain = split_bands(models.decode(decoder, codes), BANDS)
    for change, bound in ((np.log(100.0), BAND_ENVELOPE_GAINS[1]), (-np.log(100.0), BAND_ENVELOPE_GAINS[0])):
        changed = codes.copy()
        changed[:, -BLOCKS:] += change  # the top band's blocks: the code's last numbers
        parts = split_bands(models.decode(decoder, changed), BANDS)
        inner = slice(audio.STEP_FRAMES, -audio.STEP_FRAMES)
        ratio = np.sqrt(np.mean(parts[-1][inner] ** 2) / np.mean(plain[-1][inner] ** 2))
        np.testing.assert_allclose(ratio, bound, rtol=0.05)
        for band in (0, 1):
            np.testing.assert_allclose(np.sqrt(np.mean(parts[band][inner] ** 2) / np.mean(plain[band][inner] ** 2)),
                                       1.0, atol=0.02)


def test_codes_saved_with_3_bands_keep_their_splits_and_blocks():
    """Codes saved before the 4 bands (3 x 32, split at 300 Hz and 3 kHz) decode as they did: their layout
    from their layers' config, their splits from their band count."""
    _, decoder = autoencode.build_sparse(LATENT, envelope_bands=3)
    assert (sparse_format(decoder).envelope_bands, sparse_format(decoder).envelope_blocks) == (3, 32)
    two_kilohertz = (tone(2000, 1.0)[:, None] * np.ones(2)).astype(np.float32)
    for bands, band in ((3, 1), (4, 2)):
        power = [np.mean(part[SR // 4:-SR // 4] ** 2) for part in split_bands(two_kilohertz, bands)]
        assert power[band] > 0.95 * sum(power), (bands, power)


def test_five_bands_split_the_highs_at_10_kilohertz():
    """--envelope-bands 5: the same 96 numbers as 5 x 19 blocks; a 12 kHz tone lies in the fifth band, a 7 kHz
    one in the fourth, and the round trip of the attack song over soft white noise keeps each band's level
    within 1 dB."""
    encoder, decoder = autoencode.build_sparse(LATENT, envelope_bands=5)
    assert (sparse_format(decoder).envelope_bands, sparse_format(decoder).envelope_blocks) == (5, 19)
    for hertz, band in ((12000, 4), (7000, 3)):
        high = (tone(hertz, 1.0)[:, None] * np.ones(2)).astype(np.float32)
        power = [np.mean(part[SR // 4:-SR // 4] ** 2) for part in split_bands(high, 5)]
        assert power[band] > 0.95 * sum(power), (hertz, power)
    song, _ = bass_attack_song()
    song += 0.02 * np.random.default_rng(5).standard_normal(song.shape).astype(np.float32)
    decoded = models.decode(decoder, models.encode(encoder, audio.frame_steps(song)))
    inner = slice(audio.STEP_FRAMES, -audio.STEP_FRAMES)
    for original, part in zip(split_bands(song, 5), split_bands(decoded, 5)):
        level = 10 * np.log10(np.mean(part[inner] ** 2) / np.mean(original[inner] ** 2))
        assert abs(level) < 1.0, level


def test_decoding_a_band_code_in_batches_gives_the_whole_scores_sound():
    song, _ = bass_attack_song(steps=9)
    encoder, decoder = autoencode.build_sparse(LATENT)
    codes = models.encode(encoder, audio.frame_steps(song))
    # Each batch is split into bands with a neighbouring step on either side: the filters' ends differ by -100 dB.
    np.testing.assert_allclose(models.decode(decoder, codes, batch_size=2), models.decode(decoder, codes),
                               rtol=1e-4, atol=1e-5)


def test_a_band_codec_saved_and_loaded_in_safe_mode_decodes_the_same(tmp_path):
    song, _ = bass_attack_song(steps=4)
    assert_a_saved_codec_loads_in_safe_mode_and_codes_the_same(*autoencode.build_sparse(LATENT), song, tmp_path)


@pytest.mark.parametrize("bands", [2, 6])
def test_an_envelope_in_another_number_of_bands_is_refused(bands):
    from common.codec import SparseSpectrumDecoding

    with pytest.raises(ValueError, match="envelope_bands"):
        SparseSpectrumDecoding(161, 46, envelope_blocks=32, envelope_bands=bands)


@pytest.mark.parametrize("bands", [1, BANDS])
def test_imposing_the_envelope_leaves_the_decoded_sound_it_was_given_as_it_was(bands):
    """impose_envelope scales its bands in place: the sound it was given (the one band itself, where there is
    one) stays untouched, and imposing the envelope on a copy gives the same result."""
    from common.codec import impose_envelope

    encoder, decoder = autoencode.build_sparse(LATENT, **({} if bands > 1 else ONE_BAND))
    song, _ = bass_attack_song()
    codes = models.encode(encoder, audio.frame_steps(song))
    decoded = models.decode(decoder, codes)
    given = decoded.copy()
    shaped = impose_envelope(decoded, codes, sparse_format(decoder))
    np.testing.assert_array_equal(decoded, given)
    assert not np.shares_memory(shaped, decoded)
    np.testing.assert_array_equal(shaped, impose_envelope(given.copy(), codes, sparse_format(decoder)))
