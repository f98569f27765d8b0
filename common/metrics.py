"""How close two pieces of audio are, and how music-like a continuation stays. Pure NumPy/SciPy.

All functions take float32 (frames, channels) arrays at SAMPLE_RATE; reference first, estimate second.
"""
import numpy as np
import scipy.linalg
import scipy.signal

from common.audio import SAMPLE_RATE, STEP_FRAMES

EPSILON = 1e-10


def _trim(reference, estimate):
    length = min(len(reference), len(estimate))
    return reference[:length].astype(np.float64), estimate[:length].astype(np.float64)


def snr_db(reference, estimate):
    """Signal-to-noise ratio: energy of the reference over energy of the difference."""
    reference, estimate = _trim(reference, estimate)
    noise = np.sum((reference - estimate) ** 2)
    return float(10 * np.log10((np.sum(reference ** 2) + EPSILON) / (noise + EPSILON)))


def si_sdr_db(reference, estimate):
    """Scale-invariant signal-to-distortion ratio (Le Roux et al. 2019), per channel, averaged."""
    reference, estimate = _trim(reference, estimate)
    values = []
    for channel in range(reference.shape[1]):
        ref, est = reference[:, channel] - reference[:, channel].mean(), estimate[:, channel] - estimate[:, channel].mean()
        scale = np.dot(est, ref) / (np.dot(ref, ref) + EPSILON)
        target = scale * ref
        values.append(10 * np.log10((np.sum(target ** 2) + EPSILON) / (np.sum((est - target) ** 2) + EPSILON)))
    return float(np.mean(values))


def fidelity_sums(reference, estimate, block_frames=1 << 18):
    """(6, channels) float64 sums that SNR and SI-SDR are made of: frames, sum of r, of e, of r*r, e*e and r*e.

    Sums of consecutive pieces add up to those of the whole recording, so fidelity_from_sums gives its
    figures without the whole recording ever being in memory; each piece is summed in blocks, so at most a
    block is ever converted to float64.
    """
    length = min(len(reference), len(estimate))
    sums = np.zeros((6, reference.shape[1]), np.float64)
    for start in range(0, length, block_frames):
        ref, est = _trim(reference[start:min(start + block_frames, length)], estimate[start:start + block_frames])
        sums += np.stack([np.full(ref.shape[1], len(ref), np.float64), ref.sum(axis=0), est.sum(axis=0),
                          np.sum(ref ** 2, axis=0), np.sum(est ** 2, axis=0), np.sum(ref * est, axis=0)])
    return sums


def fidelity_from_sums(sums):
    """{"snr_db", "si_sdr_db"} of a recording from its fidelity_sums: what snr_db and si_sdr_db give."""
    frames, ref_sum, est_sum, ref_ref, est_est, ref_est = np.asarray(sums, np.float64)
    noise = np.sum(ref_ref - 2 * ref_est + est_est)
    snr = 10 * np.log10((np.sum(ref_ref) + EPSILON) / (max(noise, 0.0) + EPSILON))
    # Per channel, about the channel's mean: sum (r - mr)(e - me) = sum r e - n mr me, and so on.
    ref_mean, est_mean = ref_sum / frames, est_sum / frames
    ref_power = ref_ref - frames * ref_mean ** 2
    cross = ref_est - frames * ref_mean * est_mean
    est_power = est_est - frames * est_mean ** 2
    scale = cross / (ref_power + EPSILON)
    target = scale ** 2 * ref_power
    distortion = np.maximum(est_power - 2 * scale * cross + target, 0.0)
    si_sdr = 10 * np.log10((target + EPSILON) / (distortion + EPSILON))
    return {"snr_db": float(snr), "si_sdr_db": float(np.mean(si_sdr))}


def power_spectrogram(samples, fft_size=2048):
    """(frames, channels) -> (channels, bins, times) power, Hann window, 75 % overlap."""
    _, _, spectrum = scipy.signal.stft(samples.T, fs=SAMPLE_RATE, nperseg=fft_size, noverlap=fft_size * 3 // 4)
    return np.abs(spectrum) ** 2


def log_spectral_distance(reference, estimate, fft_size=2048):
    """RMS over frequency of the dB difference between power spectra, averaged over time (dB)."""
    reference, estimate = _trim(reference, estimate)
    ref_db = 10 * np.log10(power_spectrogram(reference, fft_size) + EPSILON)
    est_db = 10 * np.log10(power_spectrogram(estimate, fft_size) + EPSILON)
    # Floor at 80 dB below the loudest bin so digital silence does not dominate.
    floor = ref_db.max() - 80
    ref_db, est_db = np.maximum(ref_db, floor), np.maximum(est_db, floor)
    return float(np.mean(np.sqrt(np.mean((ref_db - est_db) ** 2, axis=1))))


def mel_filterbank(num_mels=64, fft_size=2048, low_hz=20.0, high_hz=SAMPLE_RATE / 2):
    """(num_mels, fft_size // 2 + 1) triangular filters on the HTK mel scale."""
    def hz_to_mel(hz):
        return 2595 * np.log10(1 + hz / 700)

    mels = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_mels + 2)
    edges = 700 * (10 ** (mels / 2595) - 1)
    bins = np.linspace(0, SAMPLE_RATE / 2, fft_size // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return np.maximum(0, np.minimum(rising, falling))


def log_mel_frames(samples, num_mels=64, fft_size=2048):
    """(times, num_mels) log-mel energies (dB) of the channel mix, for distances and Frechet statistics."""
    mono = samples.astype(np.float64).mean(axis=1, keepdims=True)
    power = power_spectrogram(mono, fft_size)[0]  # (bins, times)
    return (10 * np.log10(mel_filterbank(num_mels, fft_size) @ power + EPSILON)).T


def log_mel_distance(reference, estimate):
    """Mean absolute dB difference of log-mel spectrograms (floored 80 dB below the reference's peak)."""
    reference, estimate = _trim(reference, estimate)
    ref, est = log_mel_frames(reference), log_mel_frames(estimate)
    floor = ref.max() - 80
    return float(np.mean(np.abs(np.maximum(ref, floor) - np.maximum(est, floor))))


def boundary_ratio(samples, step_frames=STEP_FRAMES):
    """Mean |first difference| on 1/4-second step boundaries over its mean elsewhere: 1.0 is seamless.

    Decoding steps independently leaves a jump at every boundary, which is heard as a 4 Hz click.
    """
    difference = np.abs(np.diff(samples.astype(np.float64), axis=0)).mean(axis=1)
    on_boundary = np.zeros(len(difference), bool)
    on_boundary[np.arange(step_frames - 1, len(difference), step_frames)] = True
    if not on_boundary.any() or on_boundary.all():
        return float("nan")
    return float(difference[on_boundary].mean() / (difference[~on_boundary].mean() + EPSILON))


def loudness_per_second(samples):
    """RMS level in dBFS of each whole second."""
    seconds = len(samples) // SAMPLE_RATE
    blocks = samples[: seconds * SAMPLE_RATE].astype(np.float64).reshape(seconds, SAMPLE_RATE, -1)
    return 10 * np.log10(np.mean(blocks ** 2, axis=(1, 2)) + EPSILON)


def frechet_distance(frames_a, frames_b):
    """Frechet distance between Gaussian fits of two sets of feature frames (as in FAD, on log-mel frames)."""
    mean_a, mean_b = frames_a.mean(axis=0), frames_b.mean(axis=0)
    cov_a, cov_b = np.cov(frames_a, rowvar=False), np.cov(frames_b, rowvar=False)
    root, _ = scipy.linalg.sqrtm(cov_a @ cov_b, disp=False)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * np.real(root)))


def nearest_step_distance(generated_score, seed_score):
    """For each generated score step, the distance to its nearest seed step, relative to the seed's spread.

    Near 0 means the continuation copies steps of the seed; about 1 or more means new material.
    """
    spread = np.sqrt(np.mean(np.sum((seed_score - seed_score.mean(axis=0)) ** 2, axis=1))) + EPSILON
    squared = (np.sum(generated_score ** 2, axis=1)[:, None] + np.sum(seed_score ** 2, axis=1)[None, :]
               - 2 * generated_score @ seed_score.T)
    return np.sqrt(np.maximum(squared.min(axis=1), 0)) / spread
