"""Audio in and out, and the 1/4-second steps the whole pipeline is built on.

Every song becomes float32 stereo at 44.1 kHz. A song is cut into steps of STEP_FRAMES frames; the
autoencoder sees each step together with a short margin of its neighbours (a "segment") and the decoder's
segments are cross-faded, so decoding a score step by step leaves no click at step boundaries.
"""
import fractions
import logging
import math
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile

from common.errors import AudioError

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100  # Hz, every song is resampled to this
CHANNELS = 2  # stereo; mono is duplicated, more channels are mixed down
STEP_SECONDS = 0.25  # one step of the machine's score
STEP_FRAMES = int(SAMPLE_RATE * STEP_SECONDS)  # 11025 frames per step
# Neighbouring segments overlap by this many frames and are cross-faded there (62.5 ms).
CROSSFADE_FRAMES = STEP_FRAMES // 4 // 2 * 2  # 2756, even so the margin is the same on both sides
SEGMENT_MARGIN = CROSSFADE_FRAMES // 2  # frames borrowed from each neighbour
SEGMENT_FRAMES = STEP_FRAMES + CROSSFADE_FRAMES  # 13781 frames the autoencoder sees per step

# Extensions we try to read; anything else in the input folder is skipped with a warning.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64")
# Resampling ratios are rounded to a fraction with at most this denominator (< 0.01 % pitch error),
# so an odd rate such as 44101 Hz does not produce a gigantic polyphase filter.
MAX_RESAMPLE_DENOMINATOR = 1000


def list_audio_files(folder):
    """Audio files in folder (sorted, recursive) and the other files found there, so callers can warn."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"input folder {folder} does not exist: put your songs there")
    audio, other = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        (audio if path.suffix.lower() in AUDIO_EXTENSIONS else other).append(path)
    return audio, other


def to_stereo(audio):
    """(frames, channels) -> (frames, 2). Mono is duplicated; 5.1 uses the ITU downmix; others alternate L/R."""
    channels = audio.shape[1]
    if channels == 2:
        return audio
    if channels == 1:
        return np.repeat(audio, 2, axis=1)
    if channels == 6:  # L R C LFE Ls Rs: ITU-R BS.775 downmix, LFE dropped
        left = audio[:, 0] + 0.7071 * audio[:, 2] + 0.7071 * audio[:, 4]
        right = audio[:, 1] + 0.7071 * audio[:, 2] + 0.7071 * audio[:, 5]
        return np.stack([left, right], axis=1) / (1 + 2 * 0.7071)
    return np.stack([audio[:, 0::2].mean(axis=1), audio[:, 1::2].mean(axis=1)], axis=1)


def resample(audio, rate):
    """Resample (frames, channels) from rate to SAMPLE_RATE with a polyphase filter."""
    if rate == SAMPLE_RATE:
        return audio
    ratio = fractions.Fraction(SAMPLE_RATE, int(rate)).limit_denominator(MAX_RESAMPLE_DENOMINATOR)
    return scipy.signal.resample_poly(audio, ratio.numerator, ratio.denominator, axis=0).astype(np.float32)


def load_audio(path):
    """Read any soundfile-readable file as float32 (frames, 2) at 44.1 kHz, or raise AudioError saying why."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: empty file (0 bytes)")
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError, OSError, EOFError) as error:
        raise AudioError(f"{path.name}: not readable as audio ({_first_line(error)})") from None
    return prepare_audio(audio, rate, name=path.name)


def prepare_audio(audio, rate, name="audio"):
    """Bring decoded samples of any rate, channel count and dtype to float32 (frames, 2) at 44.1 kHz."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0 or audio.shape[1] == 0:
        raise AudioError(f"{name}: no audio samples")
    if not np.issubdtype(audio.dtype, np.number) or np.issubdtype(audio.dtype, np.complexfloating):
        raise AudioError(f"{name}: samples of type {audio.dtype} are not audio")
    if np.issubdtype(audio.dtype, np.integer):  # integer PCM: full scale -> +/-1.0
        info = np.iinfo(audio.dtype)
        audio = (audio.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    audio = audio.astype(np.float32)
    if not np.isfinite(audio).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    if not (isinstance(rate, (int, np.integer)) or float(rate).is_integer()) or not 1000 <= rate <= 768000:
        raise AudioError(f"{name}: unsupported sample rate {rate} Hz")
    audio = resample(to_stereo(audio), int(rate))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1.0:  # louder than full scale (float files can be): scale down rather than clip
        log.warning("%s: peak %.2f is beyond full scale; scaled down to 1.0", name, peak)
        audio = audio / peak
    return np.ascontiguousarray(audio, dtype=np.float32)


def write_wav(path, audio):
    """Write float32 (frames, 2) as a 16-bit 44.1 kHz WAV via a temporary file, so a kill leaves no half file."""
    from common.artifacts import atomic_path

    with atomic_path(path) as temporary:
        soundfile.write(str(temporary), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return Path(path)


def frame_steps(audio):
    """(frames, 2) -> (num_steps, STEP_FRAMES, 2). The incomplete last step is dropped."""
    num_steps = audio.shape[0] // STEP_FRAMES
    return audio[: num_steps * STEP_FRAMES].reshape(num_steps, STEP_FRAMES, audio.shape[1])


def unframe_steps(steps):
    """(num_steps, STEP_FRAMES, 2) -> (num_steps * STEP_FRAMES, 2); exact inverse of frame_steps."""
    return steps.reshape(-1, steps.shape[-1])


def segments_from_steps(steps):
    """(num_steps, STEP_FRAMES, 2) -> (num_steps, SEGMENT_FRAMES, 2): each step plus a margin of its neighbours.

    The song is padded with silence before the first and after the last step.
    """
    audio = np.pad(unframe_steps(steps), ((SEGMENT_MARGIN, SEGMENT_MARGIN), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(audio, SEGMENT_FRAMES, axis=0)[::STEP_FRAMES]
    return np.ascontiguousarray(windows.transpose(0, 2, 1))  # (num_steps, SEGMENT_FRAMES, 2)


def crossfade_window():
    """(SEGMENT_FRAMES,) weights: sin^2 rise over CROSSFADE_FRAMES, flat, mirrored fall.

    Neighbouring windows sum to exactly 1 where they overlap, so overlap-add needs no gain correction
    anywhere but the song's two ends.
    """
    ramp = np.sin(0.5 * np.pi * (np.arange(CROSSFADE_FRAMES) + 0.5) / CROSSFADE_FRAMES) ** 2
    window = np.ones(SEGMENT_FRAMES)
    window[:CROSSFADE_FRAMES] = ramp
    window[-CROSSFADE_FRAMES:] = ramp[::-1]
    return window.astype(np.float32)


def overlap_add(segments):
    """(num_steps, SEGMENT_FRAMES, 2) -> (num_steps * STEP_FRAMES, 2): cross-fade neighbouring segments.

    Inverse of segments_from_steps for consistent segments; for decoded ones it hides step boundaries.
    """
    num_steps, _, channels = segments.shape
    window = crossfade_window()
    weighted = segments * window[None, :, None]
    # Each segment = head (shared with the previous step) | middle (its own) | tail (shared with the next).
    heads = weighted[:, :CROSSFADE_FRAMES].copy()
    middles = weighted[:, CROSSFADE_FRAMES:STEP_FRAMES]
    tails = weighted[:, STEP_FRAMES:]
    heads[1:] += tails[:-1]
    padded = np.concatenate([np.concatenate([heads, middles], axis=1).reshape(-1, channels), tails[-1]])
    # Inside the song the cross-fades sum to 1; only the song's first and last margins need dividing.
    weight = np.ones(len(padded), np.float32)
    weight[:CROSSFADE_FRAMES] = window[:CROSSFADE_FRAMES]
    weight[-CROSSFADE_FRAMES:] = window[-CROSSFADE_FRAMES:]
    return (padded / weight[:, None])[SEGMENT_MARGIN:SEGMENT_MARGIN + num_steps * STEP_FRAMES]


def limit_peaks(samples, ceiling=0.99, hold_frames=220):
    """A look-ahead peak limiter: peaks stay <= ceiling, with gain changes spread over ~5 ms, not hard clipping.

    The gain each frame needs is min(1, ceiling / |x|); a minimum filter twice as wide as the smoothing
    filter guarantees the smoothed gain never exceeds what any frame inside it needs.
    """
    import scipy.ndimage

    level = np.abs(samples).max(axis=1)
    if level.size == 0 or level.max() <= ceiling:
        return samples
    needed = np.minimum(1.0, ceiling / np.maximum(level, 1e-12))
    gain = scipy.ndimage.minimum_filter1d(needed, 2 * hold_frames + 1, mode="nearest")
    gain = scipy.ndimage.uniform_filter1d(gain, hold_frames + 1, mode="nearest")
    return (samples * np.minimum(gain, needed)[:, None]).astype(np.float32)


def duration_text(num_frames):
    """Frames at SAMPLE_RATE as m:ss."""
    seconds = num_frames / SAMPLE_RATE
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def rms_db(audio):
    """Root-mean-square level in dB relative to full scale (-inf for silence)."""
    rms = math.sqrt(float(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
