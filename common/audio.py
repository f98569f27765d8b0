"""Audio in and out, and the 1/4-second steps the whole pipeline is built on.

Every song becomes float32 stereo at 44.1 kHz. A song is cut into steps of STEP_FRAMES frames; the
autoencoder sees each step together with a short margin of its neighbours (a "segment") and the decoder's
segments are cross-faded (common/crossfade.py), so decoding a score step by step leaves no click at step
boundaries.
"""
import fractions
import logging
import math
import re
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile

from common.artifacts import atomic_path, first_line
from common.cli import native_stderr_captured
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

# File extensions of the formats libsndfile names differently from their files (soundfile.available_formats()
# gives format names; a name not listed here is its own extension). RAW has no header, so it is never tried.
FORMAT_EXTENSIONS = {
    "AIFF": (".aif", ".aiff", ".aifc"), "OGG": (".ogg", ".oga", ".opus"), "WAVEX": (".wav",),
    "NIST": (".nist", ".sph"), "IRCAM": (".sf",), "SVX": (".iff", ".svx"), "MAT4": (".mat",), "MAT5": (".mat",),
    "MPC2K": (".mpc",), "RAW": (),
}
# What any libsndfile of the last years reads, MP3 (libsndfile 1.1+, shipped in soundfile's wheels) included.
BASE_AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf",
                         ".w64", ".rf64")


def readable_extensions(formats):
    """File extensions (lowercase, with the dot, sorted) of soundfile's format names, plus the base ones."""
    found = set(BASE_AUDIO_EXTENSIONS)
    for name in formats:
        found.update(FORMAT_EXTENSIONS.get(name.upper(), ("." + name.lower(),)))
    return tuple(sorted(found))


# Extensions we try to read; anything else in the input folder is skipped with a warning. A file that has one
# of them but does not decode is skipped with its own warning (see load_audio).
AUDIO_EXTENSIONS = readable_extensions(soundfile.available_formats())
# Resampling ratios are rounded to a fraction with at most this denominator (< 0.01 % pitch error),
# so an odd rate such as 44101 Hz does not produce a gigantic polyphase filter.
MAX_RESAMPLE_DENOMINATOR = 1000
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768000  # Hz we accept; anything outside is a damaged header
OVERSHOOT_WARNING_PEAK = 1.5  # +3.5 dB: peaks above this are a level mistake, not a lossy decoder's overshoot
DECODE_BLOCK_FRAMES = 1 << 14  # frames per read (0.37 s): a decoder failing part-way keeps what came before
# A file decoding to less than this share of the length its header announces was cut short. MP3s without a
# length header only have an estimate, which real files miss by ~0.1%, so small shortfalls are not flagged.
TRUNCATION_TOLERANCE = 0.99
# What libsndfile's parse log says about a WAV/AIFF/OGG file that ends before its header says it does
# (their frame count is fitted to the file, so the log is the only trace of the cut).
CUT_SHORT_LOG_PATTERNS = (
    r"^data : \d+ \(should be \d+\)",  # WAV: the data chunk announces more bytes than are there
    r"Chunk size \d+ > file length",  # AIFF
    r"Last page lacks an end-of-stream bit",  # OGG
)


def list_audio_files(folder):
    """Audio files in folder (sorted, recursive) and the other files found there, so callers can warn."""
    folder = Path(folder)
    if not folder.exists():
        raise AudioError(f"input folder {folder} does not exist: put your songs there")
    if not folder.is_dir():
        raise AudioError(f"input folder {folder} is a file, not a folder")
    audio, other = [], []
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    except OSError as error:
        raise AudioError(f"cannot list {folder}: {error.strerror or error}") from None
    for path in files:
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


def load_audio(path, name=None):
    """Read any soundfile-readable file as float32 (frames, 2) at 44.1 kHz, or raise AudioError saying why.

    A file cut short (an interrupted download or copy) keeps the part that decodes, with one warning; a file
    of which nothing decodes raises AudioError. name is how messages call the file (default: its name).
    """
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise AudioError(f"{name}: file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: empty file (0 bytes)")
    with native_stderr_captured() as decoder_messages:  # mpg123 and libvorbis print there, not to our log
        try:
            samples, rate, cut_short = _decode(path)
        except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError, OSError, EOFError) as error:
            raise AudioError(f"{name}: not readable as audio ({_decoder_reason(error)})") from None
    for line in decoder_messages:
        log.debug("%s: decoder says: %s", name, line)
    if len(samples) == 0:
        raise AudioError(f"{name}: no audio samples" + (f" (cut short: {cut_short})" if cut_short else ""))
    if cut_short:
        log.warning("%s: cut short (%s); using the %.1f s that decode", name, cut_short, len(samples) / rate)
    return prepare_audio(samples, rate, name=name)


def _decode(path):
    """Decode block by block: (float32 (frames, channels), rate, why the file looks cut short or None).

    Reading in blocks keeps the good start of a file whose decoder fails part-way (a truncated FLAC).
    """
    with soundfile.SoundFile(str(path)) as sound:
        dtype = "float64" if sound.subtype == "DOUBLE" else "float32"  # doubles may exceed float32's range
        blocks, failure = [], None
        while True:
            try:
                block = sound.read(DECODE_BLOCK_FRAMES, dtype=dtype, always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as error:
                failure = error
                break
            if len(block) == 0:
                break
            blocks.append(block)
        if failure is not None and not blocks:
            raise failure
        decoded = sum(len(block) for block in blocks)
        samples = np.concatenate(blocks) if blocks else np.zeros((0, sound.channels), dtype)
        if failure is not None:
            cut_short = f"decoding failed part-way: {_decoder_reason(failure)}"
        elif decoded < TRUNCATION_TOLERANCE * sound.frames:
            cut_short = f"its header announces {sound.frames / sound.samplerate:.1f} s"
        elif any(re.search(pattern, sound.extra_info, re.MULTILINE) for pattern in CUT_SHORT_LOG_PATTERNS):
            cut_short = "it ends before its header says"
        else:
            cut_short = None
        return samples, sound.samplerate, cut_short


def _decoder_reason(error):
    """libsndfile's complaint without its "Error opening '<full path>': " or "Error : " preamble."""
    reason = re.sub(r"^(Error opening .*?: |Error : )", "", first_line(error)).strip()
    # libsndfile says one of these when no decoder recognises the bytes (which one depends on the extension);
    # we already know the file exists.
    if reason.startswith(("File does not exist or is not a regular file", "Format not recognised")):
        return "format not recognised"
    return reason


def prepare_audio(audio, rate, name="audio"):
    """Bring decoded samples of any rate, channel count and dtype to float32 (frames, 2) at 44.1 kHz.

    The result is finite with peak <= 1.0; anything that cannot become that raises AudioError.
    """
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0 or audio.shape[1] == 0:
        raise AudioError(f"{name}: no audio samples")
    if not np.issubdtype(audio.dtype, np.number) or np.issubdtype(audio.dtype, np.complexfloating):
        raise AudioError(f"{name}: samples of type {audio.dtype} are not audio")
    if not _is_supported_rate(rate):
        raise AudioError(f"{name}: unsupported sample rate {rate} Hz")
    if np.issubdtype(audio.dtype, np.integer):  # integer PCM: full scale -> +/-1.0
        info = np.iinfo(audio.dtype)
        audio = (audio.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    elif not np.isfinite(audio).all():  # checked before float32, where a huge float64 would turn infinite
        raise AudioError(f"{name}: contains NaN or infinite samples")
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:  # louder than full scale (float files can be): scale down rather than clip
        # Lossy decoders overshoot loud masters by a dB or two: normal, so only a larger peak is worth a warning.
        log.log(logging.WARNING if peak > OVERSHOOT_WARNING_PEAK else logging.DEBUG,
                "%s: peak %.3g is beyond full scale; scaled down to 1.0", name, peak)
        audio = audio / peak
    audio = resample(to_stereo(audio.astype(np.float32)), int(rate))
    overshoot = float(np.max(np.abs(audio)))
    if overshoot > 1.0:  # the resampling filter rings a little above full-scale peaks: not the file's fault
        log.debug("%s: resampling overshoots to %.3f; scaled down to 1.0", name, overshoot)
        audio = audio / overshoot
    return np.ascontiguousarray(audio, dtype=np.float32)


def _is_supported_rate(rate):
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        return False
    return rate.is_integer() and MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE


def write_wav(path, audio):
    """Write float32 (frames, 2) as a 16-bit 44.1 kHz WAV via a temporary file, so a kill leaves no half file."""
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



def frame_peaks(samples):
    """(frames, channels) -> (frames,) the largest |sample| of each frame. Channel by channel: numpy's max over a
    last axis of 2 took 87 ms for 70 s of stereo, this 3 ms."""
    samples = np.asarray(samples)
    if not samples.size:
        return np.zeros(len(samples), samples.dtype)
    peaks = np.abs(samples[:, 0])
    for channel in range(1, samples.shape[1]):
        np.maximum(peaks, np.abs(samples[:, channel]), out=peaks)
    return peaks


def limit_peaks(samples, ceiling=0.99, hold_frames=220):
    """A look-ahead peak limiter: peaks stay <= ceiling, with gain changes spread over ~5 ms, not hard clipping.

    The gain each frame needs is min(1, ceiling / |x|); a minimum filter twice as wide as the smoothing
    filter guarantees the smoothed gain never exceeds what any frame inside it needs.
    """
    import scipy.ndimage

    level = frame_peaks(samples)
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
