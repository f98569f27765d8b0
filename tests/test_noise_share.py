"""Newer sparse codes fill noise at the share of each group that the decoded peaks leave over the whole step,
following the whole sound's level in time, instead of each 62.5-ms block's own leftover: a difference of two
near-equal levels that flickered from block to block under held notes (the flutter of soft, sustained music).
Decoders saved before decode as they did."""
import keras
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

import autoencode
from common import audio, models
from common.codec import SparseSpectrumDecoding
from common.codec.noise import _steady_share_of_the_rest, _what_the_peaks_leave
from tests.test_noise_envelope import LATENT
from tests.test_noise_fill import tone_with_a_burst

SR = audio.SAMPLE_RATE


def test_the_noise_follows_the_whole_sounds_level_at_the_share_the_peaks_leave():
    """Per group: the noise's energy over the step is the whole sound's minus the peaks' (none where the peaks
    carry more), and from block to block its level moves exactly as the whole sound's does; each block's own
    leftover, on the same levels, swings by more than 15 dB where the peaks come near the whole sound."""
    groups, blocks = 3, 4
    log_total = np.log(np.array([[[0.10, 0.11, 0.10, 0.12],     # a held note, the peaks carry most of it
                                  [0.01, 0.01, 0.30, 0.25],     # an attack in the third block
                                  [0.05, 0.05, 0.05, 0.05]]]))  # the peaks carry more than all of it
    log_peaks = np.log(np.array([[[0.099, 0.090, 0.0995, 0.10],
                                  [0.05, 0.04, 0.20, 0.20],
                                  [0.06, 0.06, 0.06, 0.06]]]))
    flat = lambda levels: tf.constant(levels.reshape(1, -1), tf.float32)  # noqa: E731
    steady = np.asarray(_steady_share_of_the_rest(flat(log_total), flat(log_peaks), groups, blocks))
    steady = steady.reshape(groups, blocks)
    energy = lambda log_rms: np.exp(2 * log_rms).sum(axis=-1)  # noqa: E731
    left = np.maximum(energy(log_total[0]) - energy(log_peaks[0]), 0)
    np.testing.assert_allclose(energy(steady[:2]), left[:2], rtol=1e-4)
    np.testing.assert_allclose(np.diff(steady[:2], axis=-1), np.diff(log_total[0, :2], axis=-1), atol=1e-5)
    assert np.all(np.exp(steady[2]) < 1e-6), steady[2]  # no noise where the peaks carry it all
    by_block = np.asarray(_what_the_peaks_leave(flat(log_total), flat(log_peaks))).reshape(groups, blocks)
    swing_db = lambda log_rms: 20 / np.log(10) * np.ptp(log_rms[0])  # noqa: E731
    assert swing_db(steady) < 2 and swing_db(by_block) > 15, (swing_db(steady), swing_db(by_block))


def held_chord(steps=16, seed=3):
    """A chord of 14 partials held throughout over a faint bed of white noise: the peaks carry nearly all of
    each group's sound, so a leftover measured block by block is a difference of two near-equal levels."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps * audio.STEP_FRAMES) / SR
    partials = (196, 247, 294, 392, 494, 587, 784, 988, 1175, 1568, 1976, 2349, 3136, 3951)
    chord = sum(0.3 / (k + 1) * np.sin(2 * np.pi * hertz * t) for k, hertz in enumerate(partials))
    return (chord[:, None] * np.ones(audio.CHANNELS) + 0.002 * rng.standard_normal((len(t), 2))).astype(np.float32)


def rise_db(samples, low, high):
    """Mean rise (dB) from one 10-ms frame to the next of the channel mix's bins between low and high Hz, what an
    onset detector reads (spectral flux), half a second cut off either end."""
    frequencies, _, spectrum = scipy.signal.stft(samples[SR // 2:-SR // 2].mean(axis=1), SR, nperseg=1024,
                                                 noverlap=1024 - 441)
    level = 10 * np.log10(np.abs(spectrum[(frequencies >= low) & (frequencies < high)]) ** 2 + 1e-12)
    return float(np.mean(np.maximum(np.diff(level, axis=1), 0)))


def test_a_held_chord_does_not_flutter():
    """Its round trip's 0.3-1.5 kHz bins rise from frame to frame as little as the original's (within 15%); a
    decoder that fills each block's own leftover (what codes saved before do) makes them rise 1.5x as much."""
    song = held_chord()
    encoder, decoder = autoencode.build_sparse(LATENT)
    config = decoder.layers[-1].get_config()
    assert config["noise_share"] == "step"
    score = keras.Input((LATENT,))
    by_block = keras.Model(score, SparseSpectrumDecoding.from_config({**config, "noise_share": "block"})(score))
    codes = models.encode(encoder, audio.frame_steps(song))
    rises = {name: rise_db(samples, 300, 1500) for name, samples in
             (("original", song), ("new", models.decode(decoder, codes)), ("by block", models.decode(by_block, codes)))}
    assert abs(rises["new"] / rises["original"] - 1) < 0.15 < rises["by block"] / rises["original"] - 1.3, rises


def test_a_codec_with_the_settings_saved_at_24a5ef5_decodes_the_samples_it_did():
    """The default code as saved at commit 24a5ef5 (4 envelope bands; its decoder's config has no noise_share,
    so it fills each block's own leftover) decodes a fixed song, a tone with a noise burst, to the samples that
    commit's code gave."""
    song = tone_with_a_burst()
    encoder, decoder = autoencode.build_sparse(LATENT, transform="dct")
    config = decoder.layers[-1].get_config()
    config.pop("noise_share")
    score = keras.Input((LATENT,))
    saved = keras.Model(score, SparseSpectrumDecoding.from_config(config)(score))
    decoded = models.decode(saved, models.encode(encoder, audio.frame_steps(song.astype(np.float32))))
    np.testing.assert_allclose(decoded[[1000, 20000, 40000, 45000, 60000], 0],
                               [0.08385058492422104, -0.2652694880962372, 0.30305513739585876, -0.258377343416214,
                                -0.08781301975250244], atol=2e-6)
    np.testing.assert_allclose(np.sqrt(np.mean(decoded.astype(np.float64) ** 2)), 0.15286593743987048, rtol=1e-5)


def test_an_unknown_noise_share_is_refused():
    with pytest.raises(ValueError, match="noise share"):
        SparseSpectrumDecoding(161, 46, noise_share="frame")
