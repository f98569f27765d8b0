"""What a listener hears in one 1/4-s step, as a short vector: which notes (chroma), the spectrum's shape
(log-mel), where in the step the sound comes (its envelope) and how loud it is.

Step 4 stores them beside every song's score and step 7 computes them for the seed: the generator joins real
steps whose neighbours sound alike (common/step_choice.py), so that a continuation's lines, harmony and
beat go on across each join. Pure NumPy on the steps' audio, the same for every code.
"""
import numpy as np

from common.audio import SAMPLE_RATE, STEP_FRAMES
from common.metrics import mel_filterbank

VERSION = 1  # stored in the score dataset's index: features of another version mean "rerun step 4"
FFT_SIZE = 8192  # 5.4 Hz bins: a semitone is 6.5 Hz wide at 110 Hz, so chroma holds from there up
FFT_HOP = STEP_FRAMES - FFT_SIZE  # two frames cover the step
MEL_BANDS = 32
CHROMA_RANGE_HZ = (110.0, 5000.0)
ENVELOPE_BLOCKS = 8  # 31 ms each: where the beat falls inside the step
GROUPS = {"log_mel": MEL_BANDS, "chroma": 12, "envelope": ENVELOPE_BLOCKS, "loudness": 1}
# How much each group counts when steps are compared; the beat counts twice: with all groups alike, joins
# broke the beat (continuations' pulse 0.65x the round trip's on both kinds of music).
GROUP_WEIGHTS = {"log_mel": 1.0, "chroma": 1.0, "envelope": 2.0, "loudness": 1.0}
SIZE = sum(GROUPS.values())  # 53 numbers per step
FLOOR_DB = -100.0


def _chroma_matrix():
    """(bins, 12) 0/1 matrix: which pitch class each FFT bin in CHROMA_RANGE_HZ belongs to."""
    frequencies = np.fft.rfftfreq(FFT_SIZE, 1 / SAMPLE_RATE)
    inside = (frequencies >= CHROMA_RANGE_HZ[0]) & (frequencies <= CHROMA_RANGE_HZ[1])
    pitch_class = np.round(12 * np.log2(np.maximum(frequencies, 1.0) / 440.0) + 69).astype(int) % 12
    matrix = np.zeros((len(frequencies), 12), np.float32)
    matrix[np.flatnonzero(inside), pitch_class[inside]] = 1.0
    return matrix


def step_features(steps, chunk=256):
    """(num_steps, STEP_FRAMES, channels) audio -> (num_steps, SIZE) float32, in GROUPS' order:
    log-mel in dB, chroma summing to 1, the envelope's 8 block levels in dB relative to the step's, and the
    step's RMS in dB."""
    steps = np.asarray(steps, np.float32)
    if steps.ndim != 3 or steps.shape[1] != STEP_FRAMES:
        raise ValueError(f"steps must be (num_steps, {STEP_FRAMES}, channels), not {steps.shape}")
    window = np.hanning(FFT_SIZE).astype(np.float32)
    mel = mel_filterbank(MEL_BANDS, FFT_SIZE).astype(np.float32).T  # (bins, MEL_BANDS)
    chroma_of_bin = _chroma_matrix()
    features = []
    for first in range(0, len(steps), chunk):
        mono = steps[first:first + chunk].mean(axis=2)  # (n, STEP_FRAMES)
        frames = np.stack([mono[:, start:start + FFT_SIZE] for start in (0, FFT_HOP)], axis=1) * window
        power = np.mean(np.abs(np.fft.rfft(frames, axis=-1)) ** 2, axis=1)  # (n, bins)
        log_mel = 10 * np.log10(power @ mel + 1e-10)
        chroma = power @ chroma_of_bin
        chroma /= np.maximum(chroma.sum(axis=1, keepdims=True), 1e-20)
        blocks = mono[:, :STEP_FRAMES // ENVELOPE_BLOCKS * ENVELOPE_BLOCKS].reshape(len(mono), ENVELOPE_BLOCKS, -1)
        block_db = 10 * np.log10(np.mean(np.square(blocks), axis=2) + 1e-10)
        loudness = 10 * np.log10(np.mean(np.square(mono), axis=1, keepdims=True) + 1e-10)
        features.append(np.concatenate([log_mel, chroma, block_db - loudness, loudness], axis=1))
    features = np.concatenate(features) if features else np.zeros((0, SIZE), np.float32)
    return np.maximum(features, FLOOR_DB).astype(np.float32)


def comparable(features, scale):
    """Features made comparable by squared Euclidean distance: each number in units of scale (its spread over a
    corpus, (SIZE,)), each group's squared distance divided by its size and times its GROUP_WEIGHTS."""
    weights = np.concatenate([np.full(size, np.sqrt(GROUP_WEIGHTS[group] / size), np.float32)
                              for group, size in GROUPS.items()])
    return (np.asarray(features, np.float32) / np.maximum(scale, 1e-6) * weights).astype(np.float32)


def beat_period(features, lags_seconds=(0.25, 1.5)):
    """(period in envelope blocks, strength 0..1) of consecutive steps' features (num_steps, SIZE): the lag
    at which the rises of their block levels repeat most (normalised autocorrelation, as the pulse of an
    onset envelope is measured); (None, 0.0) where nothing rises."""
    start = MEL_BANDS + 12
    levels = (np.asarray(features, np.float64)[:, start:start + ENVELOPE_BLOCKS]
              + np.asarray(features, np.float64)[:, -1:]).ravel()  # each block's level in dB, in time order
    rises = np.maximum(np.diff(levels), 0.0)
    rises -= rises.mean()
    energy = float(np.dot(rises, rises))
    block_seconds = 0.25 / ENVELOPE_BLOCKS
    low, high = int(round(lags_seconds[0] / block_seconds)), int(round(lags_seconds[1] / block_seconds))
    if energy <= 0 or len(rises) <= high:
        return None, 0.0
    correlations = np.array([np.dot(rises[:-lag], rises[lag:]) for lag in range(low, high + 1)]) / energy
    best = int(np.argmax(correlations))
    return low + best, float(max(correlations[best], 0.0))
