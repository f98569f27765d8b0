"""common/metrics.py: each figure moves the way it should."""
import numpy as np
import pytest

from common import metrics
from common.audio import STEP_FRAMES
from tests.conftest import synth_song


def test_snr_and_si_sdr_of_known_noise():
    song = synth_song(1.0)
    noise = np.random.default_rng(0).standard_normal(song.shape).astype(np.float32)
    noise *= np.sqrt(np.mean(song ** 2) / np.mean(noise ** 2)) / 10  # 20 dB below the signal
    assert metrics.snr_db(song, song + noise) == pytest.approx(20, abs=0.2)
    si_sdr = metrics.si_sdr_db(song, song + noise)
    assert si_sdr == pytest.approx(20, abs=1.0)  # per channel, and the channels are panned differently
    assert metrics.si_sdr_db(song, 0.5 * (song + noise)) == pytest.approx(si_sdr, abs=1e-6)  # scale does not matter
    assert metrics.snr_db(song, 0.5 * song) == pytest.approx(6.02, abs=0.05)  # but it does for SNR


def test_fidelity_sums_of_pieces_give_the_figures_of_the_whole():
    song = synth_song(3.0) + 0.1  # an offset, so the per-channel means matter to SI-SDR
    estimate = 0.8 * song + 0.05 * np.random.default_rng(1).standard_normal(song.shape).astype(np.float32)
    sums = sum(metrics.fidelity_sums(song[start:start + 30000], estimate[start:start + 30000])
               for start in range(0, len(song), 30000))
    figures = metrics.fidelity_from_sums(sums)
    assert figures["snr_db"] == pytest.approx(metrics.snr_db(song, estimate), abs=1e-6)
    assert figures["si_sdr_db"] == pytest.approx(metrics.si_sdr_db(song, estimate), abs=1e-6)
    assert 5 < figures["si_sdr_db"] < 40


def test_spectral_distances_are_zero_for_identical_audio_and_grow_with_damage():
    song = synth_song(1.0)
    muffled = np.cumsum(song, axis=0) / 50  # a crude low-pass
    assert metrics.log_spectral_distance(song, song) == pytest.approx(0, abs=1e-6)
    assert metrics.log_mel_distance(song, song) == pytest.approx(0, abs=1e-6)
    assert metrics.log_spectral_distance(song, muffled) > 5
    assert metrics.log_mel_distance(song, muffled) > 2


def test_boundary_ratio_sees_clicks_at_step_boundaries():
    song = synth_song(3.0)
    assert 0.8 < metrics.boundary_ratio(song) < 1.25
    clicky = song.copy()
    clicky[STEP_FRAMES::STEP_FRAMES] += 0.3
    assert metrics.boundary_ratio(clicky) > 5


def test_frechet_distance_and_nearest_step_distance():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2000, 4)), rng.standard_normal((2000, 4))
    assert metrics.frechet_distance(a, b) < 0.05
    assert metrics.frechet_distance(a, b + 3) == pytest.approx(36, rel=0.05)
    seed = rng.standard_normal((40, 8))
    assert np.allclose(metrics.nearest_step_distance(seed[:5], seed), 0, atol=1e-6)
    assert metrics.nearest_step_distance(rng.standard_normal((5, 8)), seed).min() > 0.3


def test_loudness_per_second():
    song = np.full((3 * 44100, 2), 0.1, np.float32)
    np.testing.assert_allclose(metrics.loudness_per_second(song), 20 * np.log10(0.1), atol=1e-6)
