"""What a listener hears in one 1/4-s step, as a short vector: which notes (chroma), the spectrum's shape
(log-mel), where in the step the sound comes (its envelope) and how loud it is; and, apart, the spectrum of its
first and last 23 ms (its seams).

Step 4 stores them beside every song's score and step 7 computes them for the seed. The score models predict
what the next steps sound like in these features (common/score_models.py), and the generator joins real steps
whose neighbours sound alike and whose seam carries on the sound the last step ends with
(common/step_choice.py), so that a continuation's lines, harmony and beat go on across each join. Pure NumPy
on the steps' audio, the same for every code.
"""
import numpy as np

from common.audio import SAMPLE_RATE, STEP_FRAMES
from common.metrics import mel_filterbank

VERSION = 2  # stored in the score dataset's index: features of another version mean "rerun step 4"
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
MAX_BAR_SECONDS = 2.5  # a bar at most as long as a run (joins come every 2-2.5 s)
BAR_MARGIN = 0.15  # a bar stands out where the onsets repeat at it more than at other multiples of the beat, by
# at least this share of how much they repeat at one beat
# Seams: the log-mel spectrum of a step's first and last SEAM_FRAMES. Where one step ends and the next begins,
# held notes, reverb and noise carry on; at a join they should too. The shorter the edge, the more it tells:
# the real next step of a song was told from 24 other places of it 0.77 of the time with 23-ms edges, 0.59
# with 46 ms and 0.34 with 93 ms (12 orchestral songs).
SEAM_FRAMES = 1024  # 23 ms
SEAM_BANDS = 24
SEAM_LOW_HZ = 60.0  # a 1024-point FFT's bins are 43 Hz apart: no narrower bands below


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


def seam_spectra(steps, chunk=1024):
    """(num_steps, STEP_FRAMES, channels) audio -> (num_steps, 2, SEAM_BANDS) float32: the log-mel spectrum in
    dB of each step's first and of its last SEAM_FRAMES (channel mix, Hann window)."""
    steps = np.asarray(steps, np.float32)
    window = np.hanning(SEAM_FRAMES).astype(np.float32)
    mel = mel_filterbank(SEAM_BANDS, SEAM_FRAMES, low_hz=SEAM_LOW_HZ).astype(np.float32).T
    spectra = []
    for first in range(0, len(steps), chunk):
        mono = steps[first:first + chunk].mean(axis=2)
        edges = np.stack([mono[:, :SEAM_FRAMES], mono[:, -SEAM_FRAMES:]], axis=1) * window
        spectra.append(10 * np.log10(np.abs(np.fft.rfft(edges, axis=-1)) ** 2 @ mel + 1e-10))
    spectra = np.concatenate(spectra) if spectra else np.zeros((0, 2, SEAM_BANDS), np.float32)
    return np.maximum(spectra, FLOOR_DB).astype(np.float32)


def seam_distance(ends, starts):
    """Mean squared dB difference between the last SEAM_FRAMES of steps (..., SEAM_BANDS) and the first of the
    steps that would follow them (broadcast against each other): 0 where the sound carries on unchanged."""
    return np.mean(np.square(np.asarray(starts, np.float32) - np.asarray(ends, np.float32)), axis=-1)


def tonalness(features):
    """(N,) how tonal each step is, from its features' chroma: 1 - its entropy / log 12 (1: one pitch class, 0:
    all twelve alike, as in noise or drums)."""
    chroma = np.clip(np.asarray(features, np.float64)[:, MEL_BANDS:MEL_BANDS + 12], 1e-12, 1.0)  # after the log-mel
    return 1.0 + np.sum(chroma * np.log(chroma), axis=1) / np.log(12)


def comparable_multipliers(scale):
    """(SIZE,) what comparable() multiplies each feature by: 1 / its spread over a corpus (scale), times the
    square root of its group's weight over the group's size."""
    weights = np.concatenate([np.full(size, np.sqrt(GROUP_WEIGHTS[group] / size), np.float32)
                              for group, size in GROUPS.items()])
    return (weights / np.maximum(np.asarray(scale, np.float32), 1e-6)).astype(np.float32)


def group_of_each_feature():
    """(SIZE,) the number of each feature's group, in GROUPS' order."""
    return np.concatenate([np.full(size, number) for number, size in enumerate(GROUPS.values())])


def comparable(features, scale):
    """Features made comparable by squared Euclidean distance: each number in units of scale (its spread over a
    corpus, (SIZE,)), each group's squared distance divided by its size and times its GROUP_WEIGHTS."""
    return (np.asarray(features, np.float32) * comparable_multipliers(scale)).astype(np.float32)


ONSET_FFT, ONSET_HOP, ONSET_BANDS = 2048, 512, 40  # 11.6-ms frames of a spectral-flux onset envelope
# Samples from an envelope frame's start to the onset it rises for: a click in silence rises as it enters a frame
# (~ONSET_FFT + ONSET_HOP / 2), a note in music nearer the frame's middle. Beats found on the seed and on other songs
# the same way are compared with each other, so only this being the same for both matters.
ONSET_DELAY = ONSET_FFT


def onset_frames(first_frame, stop_frame):
    """The slice of a song's onset_envelope that the onset_envelope of its frames first_frame .. stop_frame - 1
    holds, as near as 11.6-ms frames go."""
    first = -(-first_frame // ONSET_HOP)
    return slice(first, first + max((stop_frame - first_frame - ONSET_FFT) // ONSET_HOP, 0))


def onset_envelope(samples, chunk_frames=2 ** 20):
    """(frames, channels) audio -> (frames // ONSET_HOP,) onset strength: the rise of the log-mel spectrum from
    one 11.6-ms frame to the next, summed over bands (spectral flux, as librosa's onset_strength measures it).
    Long audio is taken in chunks of chunk_frames (a whole number of hops, each with the frames the next needs
    to rise from): the FFT frames of a 10-minute song at once take ~1.5 GB."""
    if len(samples) > chunk_frames + ONSET_FFT:
        return np.concatenate([_onset_envelope(samples[first:first + chunk_frames + ONSET_FFT])
                               for first in range(0, len(samples) - ONSET_FFT, chunk_frames)])
    return _onset_envelope(samples)


def _onset_envelope(samples):
    """onset_envelope of audio short enough to frame at once."""
    mono = np.asarray(samples, np.float32).mean(axis=1)
    if len(mono) < ONSET_FFT + ONSET_HOP:
        return np.zeros(0, np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(mono, ONSET_FFT)[::ONSET_HOP] * np.hanning(ONSET_FFT)
    power = np.abs(np.fft.rfft(frames.astype(np.float32), axis=1)) ** 2
    log_mel = np.log10(power @ mel_filterbank(ONSET_BANDS, ONSET_FFT).astype(np.float32).T + 1e-10)
    return np.sum(np.maximum(np.diff(log_mel, axis=0), 0.0), axis=1)


def beat_period(steps, lags_seconds=(0.25, 1.5)):
    """(period in seconds, strength 0..1) of consecutive steps of audio (num_steps, STEP_FRAMES, channels): the
    lag at which their onset envelope repeats most (normalised autocorrelation, as the pulse of a continuation
    is measured); (None, 0.0) where nothing rises. A step holds 0.25 s: few beats fit a whole number of them."""
    return beat_of_onsets(onset_envelope(np.asarray(steps).reshape(-1, np.asarray(steps).shape[-1])), lags_seconds)


def beat_grid(steps, lags_seconds=(0.25, 1.5)):
    """(period in seconds, strength 0..1, seconds from the first step's start to its first beat) of consecutive
    steps of audio, as beat_period finds the period; (None, 0.0, None) where nothing rises."""
    envelope = onset_envelope(np.asarray(steps).reshape(-1, np.asarray(steps).shape[-1]))
    period, strength = beat_of_onsets(envelope, lags_seconds)
    if period is None:
        return None, 0.0, None
    return period, strength, float(_first_beat(envelope, period) % (period * SAMPLE_RATE)) / SAMPLE_RATE


def beats_in_a_bar(steps, period):
    """How many beats of period seconds make a bar of consecutive steps of audio (num_steps, STEP_FRAMES,
    channels): the multiple (2, 3 or 4, at most MAX_BAR_SECONDS long) at which their onset envelope repeats
    more than at the other multiples, by at least BAR_MARGIN of how much it repeats at one beat; 1 where no bar
    stands out or there is no beat (period None). wesnoth's return_to_wesnoth (a 0.40-s beat, 3 to the bar)
    repeats at its 1.2-s bar 0.33 through the codec, its continuations on the beat but not on the bar 0.21."""
    if period is None:
        return 1
    envelope = onset_envelope(np.asarray(steps).reshape(-1, np.asarray(steps).shape[-1]))
    envelope = envelope - envelope.mean() if len(envelope) else envelope
    variance = float(np.mean(np.square(envelope))) if len(envelope) else 0.0
    frames_per_beat = period * SAMPLE_RATE / ONSET_HOP
    multiples = [count for count in range(1, 5) if count * period <= MAX_BAR_SECONDS
                 and count * frames_per_beat <= len(envelope) / 2]
    if variance <= 0 or len(multiples) < 2:
        return 1

    def repeats(lag):  # autocorrelation per overlapping frame (no fall with the lag), between frames linearly
        low = int(lag)
        at = [np.mean(envelope[:-k] * envelope[k:]) / variance for k in (low, low + 1)]
        return at[0] + (lag - low) * (at[1] - at[0])

    at = {count: repeats(count * frames_per_beat) for count in multiples}
    stands_out = {count: at[count] - np.mean([at[other] for other in multiples if other % count])
                  for count in multiples[1:]}
    bar = max(stands_out, key=stands_out.get)
    return bar if stands_out[bar] >= BAR_MARGIN * max(at[1], 0.0) and at[1] > 0 else 1


def _first_beat(envelope, period):
    """Samples from the start of an onset envelope's audio to the first beat of period seconds (beat_phase), the
    one reading of a phase that the seed's beat (beat_grid) and other songs' (song_beats) share."""
    return beat_phase(envelope, period * SAMPLE_RATE / ONSET_HOP) * ONSET_HOP + ONSET_DELAY


def beat_phase(envelope, period_frames, resolution=0.5):
    """The onset-envelope frame (0 <= phase < period_frames, in steps of resolution) on which a grid of beats
    period_frames apart collects the most onset strength: where the beats fall."""
    phases = np.arange(0.0, period_frames, resolution)
    beats = np.arange(max(int((len(envelope) - 1) // period_frames), 1))
    positions = phases[:, None] + period_frames * beats[None]
    return float(phases[np.argmax(np.interp(positions, np.arange(len(envelope)), envelope).sum(axis=1))])


def song_beats(steps, window_steps=40, every_steps=4):
    """(num_steps, 3) float32 the local beat of every step of a song (num_steps, STEP_FRAMES, channels): the
    period in seconds and its strength (beat_period of the window_steps around it, found every every_steps),
    and the seconds from the step's start to the first beat of that window's grid at or after it; a row of
    zeros where no beat is found. The generator reads another song's steps onto the seed's beat by them."""
    steps = np.asarray(steps)
    num_steps = len(steps)
    beats = np.zeros((num_steps, 3), np.float32)
    envelope = onset_envelope(steps.reshape(-1, steps.shape[-1]))
    for centre in range(every_steps // 2, num_steps + every_steps // 2, every_steps):
        first = int(np.clip(centre - window_steps // 2, 0, max(num_steps - window_steps, 0)))
        frames = onset_frames(first * STEP_FRAMES, min(first + window_steps, num_steps) * STEP_FRAMES)
        period, strength = beat_of_onsets(envelope[frames])
        if period is None:
            continue
        period_samples = period * SAMPLE_RATE
        beat = frames.start * ONSET_HOP + _first_beat(envelope[frames], period)
        rows = np.arange(max(centre - every_steps // 2, 0), min(centre + every_steps - every_steps // 2, num_steps))
        beats[rows] = np.stack([np.full(len(rows), period), np.full(len(rows), strength),
                                (beat - rows * STEP_FRAMES) % period_samples / SAMPLE_RATE], axis=1)
    return beats


def beat_of_onsets(envelope, lags_seconds=(0.25, 1.5)):
    """beat_period of an onset envelope (onset_envelope's)."""
    envelope = envelope - envelope.mean() if len(envelope) else envelope
    energy = float(np.dot(envelope, envelope))
    frame_seconds = ONSET_HOP / SAMPLE_RATE
    low, high = int(round(lags_seconds[0] / frame_seconds)), int(round(lags_seconds[1] / frame_seconds))
    if energy <= 0 or len(envelope) <= high + 1:
        return None, 0.0
    correlations = np.array([np.dot(envelope[:-lag], envelope[lag:]) for lag in range(low - 1, high + 2)]) / energy
    best = 1 + int(np.argmax(correlations[1:-1]))
    # The peak between frames (a parabola through it and its neighbours): 11.6-ms frames are coarse for a grid
    # that must hold over a minute.
    before, peak, after = correlations[best - 1:best + 2]
    curvature = before - 2 * peak + after
    offset = 0.5 * (before - after) / curvature if curvature < 0 else 0.0
    return float((low - 1 + best + offset) * frame_seconds), float(max(peak, 0.0))
