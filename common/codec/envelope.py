"""The step's envelope: its loudness in blocks of time, which models.decode puts back on the decoded sound.

The envelope is a gain curve models.decode puts on the decoded sound (impose_envelope): a round trip's sound
has it already, but a score model's predicted peaks have the right size and no reliable sign (phase), and
random signs spread each step's energy evenly over its quarter second, so a beat or a note's attack becomes
a steady hum. On held-out real music the envelope brought the Frechet distance of the real next minute with
random signs from 1.60x to 1.49x the round trip's, and the score models' continuations from 1.67x / 1.65x
to 1.44x / 1.53x (docs/continuation.md). The encoder's side is _step_envelope.

Newer codes have the envelope in bands (below 300 Hz, 0.3-1.5 kHz, 1.5-5 kHz, above, of 24 blocks of 10.4 ms;
those saved before, 3 bands split at 300 Hz and 3 kHz, of 32 blocks: layout.envelope_splits): the same gain
curves, one per band, on the decoded sound split by the same filters the encoder measured the original with
(split_bands), within 1/16 and 4. They put back the attacks the peaks of a long transform smear over the step:
a hit's highs, a bass note's start hidden under a louder tone (attack strength 0.54 / 0.58 -> 0.65 / 0.74 on 8
orchestral / 4 beat-driven held-out songs, docs/codec.md). Random signs no longer matter here: the generator
decodes real steps.
"""
import functools

import numpy as np

from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_MARGIN, STEP_FRAMES
from common.codec.layout import LOG_LEVEL_LIMITS, as_sparse_format, envelope_splits
from common.codec.transforms import _band_sums

# The envelope's gain on the decoded sound stays within 1/2 and 2 (+/-6 dB). Random signs spread a step's
# energy evenly over it, and +/-6 dB brings back most of a beat's contrast. On held-out real music wider
# bounds (1/4 to 4) gave continuations closer to real music (Frechet 1.24x / 1.39x the round trip's, against
# 1.44x / 1.53x), but their bursts made the peak limiter take up to 2 dB off whole seconds (the quietest
# -5.5 dB under the seed, over the +/-3 dB target); 1/4 to 2 still reached -4.1 dB.
MAX_ENVELOPE_GAIN = 2.0
MIN_ENVELOPE_GAIN = 0.5
ENVELOPE_PASSES = 2  # impose_envelope's: its first gains and one correction
BAND_ENVELOPE_GAINS = (1 / 16, 4.0)  # an envelope in bands: the gains that put back the original's attacks
# An envelope in bands: its first gains alone. A correction pass costs 0.6 ms a second of sound (generation fell
# under 50x realtime) for attacks 0.02-0.06 stronger and a pulse 0.01-0.04x weaker on 4 held-out songs.
BAND_ENVELOPE_PASSES = 1
SPLIT_ORDER = 4  # Butterworth low-passes of the band split
SPLIT_MARGIN = 512  # frames the encoder splits either side of the step (11.6 ms: its filters ring 75 dB down)
# Frames either side of a frame that the split's filters reach: past 768 the 300-Hz low-pass run forward and back
# is 115 dB down, so a block of sound is filtered exactly with that much of its neighbours.
SPLIT_REACH = 768
SPLIT_BLOCK = 16384  # FFT length of the blocks a long sound is split in (overlap-save; 91% of each is new)


def _gain_limits(bands):
    return BAND_ENVELOPE_GAINS if bands > 1 else (MIN_ENVELOPE_GAIN, MAX_ENVELOPE_GAIN)


def split_bands(samples, bands, axis=0):
    """samples (..., channels), time along axis (not the last) -> [samples] for one band, else the bands below,
    between and above layout.envelope_splits(bands) (float32): each a low-pass minus the one below, the top one
    all-pass minus the highest low-pass, so they add up to samples.

    The low-passes are 4th-order Butterworth filters run forward and back (zero phase keeps the bands in phase
    where they overlap: with one causal pass a band's gain broke the cancellation at the crossings, and the
    round trip's pulse fell, 4 held-out songs 0.70-0.81x against 0.90-0.93x of the original's). They are
    applied as that response, |H|^2, on the FFT of blocks of the sound (overlap-save, SPLIT_REACH frames of
    context, zeros beyond the ends): the same bands as SciPy's sosfiltfilt to -88 dB of the sound's RMS away
    from the ends (the encoder's steps come with SPLIT_MARGIN frames of their segment either side, the
    decoder's batches with a neighbouring step), in half the time (258 steps: 108-135 -> 56-70 ms)."""
    if bands == 1:
        return [samples]
    return for_each_band(samples, bands, lambda band, part: part, axis)


def for_each_band(samples, bands, work, axis=0):
    """[work(band, part) for each band's part of samples] (split_bands' parts, bands > 1), the bands' inverse
    FFTs and work in CHANNELS threads: each band is its own inverse FFT of the blocks' spectra and work of its
    own, NumPy and SciPy let go of the interpreter for both, and the products and gain curves of one band at a
    time used one core of two (the decoder's envelope of 258 steps: 254 -> 157 ms)."""
    import concurrent.futures

    import scipy.fft

    samples = np.asarray(samples, np.float32)
    frames, trailing = samples.shape[axis], samples.ndim - axis - 1
    length = scipy.fft.next_fast_len(frames + 2 * SPLIT_REACH, real=True)
    length = length if length <= SPLIT_BLOCK else SPLIT_BLOCK
    hop = length - 2 * SPLIT_REACH
    count = -(-frames // hop)
    padded = np.zeros(samples.shape[:axis] + (count * hop + 2 * SPLIT_REACH,) + samples.shape[axis + 1:], np.float32)
    _along(padded, axis, slice(SPLIT_REACH, SPLIT_REACH + frames))[...] = samples
    # Blocks of `length` frames, `hop` apart, as a view: (..., count, length, ...). Time stays where it was, so the
    # channels stay interleaved: no transposed copies (those took longer than the FFTs).
    step = padded.strides[axis]
    blocks = np.lib.stride_tricks.as_strided(
        padded, padded.shape[:axis] + (count, length) + padded.shape[axis + 1:],
        padded.strides[:axis] + (hop * step, step) + padded.strides[axis + 1:], writeable=False)
    spectra = scipy.fft.rfft(blocks, axis=axis + 1, workers=CHANNELS)
    responses = _band_responses(bands, length)

    def band(number):
        shaped = responses[number].reshape((-1,) + (1,) * (trailing - 1))  # along time, before the channels
        part = scipy.fft.irfft(_times_each_channel(spectra, shaped, np.empty_like(spectra)), length, axis=axis + 1)
        # Each block's middle is exact (the response's reach lies inside the block); laid end to end.
        middle = _along(part, axis + 1, slice(SPLIT_REACH, length - SPLIT_REACH))
        part = _along(middle.reshape(samples.shape[:axis] + (-1,) + samples.shape[axis + 1:]), axis, slice(frames))
        return work(number, np.ascontiguousarray(part))

    with concurrent.futures.ThreadPoolExecutor(CHANNELS) as threads:
        return list(threads.map(band, range(bands)))


def _along(array, axis, where):
    """array[..., where, ...] with where on axis."""
    return array[(slice(None),) * axis + (where,)]


@functools.cache  # designed once, not for every batch the encoder and models.decode split
def _band_responses(bands, length):
    """((length // 2 + 1,) float32 for each band) the zero-phase response at the rfft bins of a length-frame
    block: the lowest low-pass, each low-pass minus the one below (layout.envelope_splits), 1 minus the highest."""
    import scipy.signal

    hertz = np.fft.rfftfreq(length, 1 / SAMPLE_RATE)
    responses, below = [], 0.0
    for split in envelope_splits(bands):
        sos = scipy.signal.butter(SPLIT_ORDER, split, "low", fs=SAMPLE_RATE, output="sos")
        low = np.abs(scipy.signal.sosfreqz(sos, hertz, fs=SAMPLE_RATE)[1]) ** 2  # forward and back: |H|^2
        responses.append((low - below).astype(np.float32))
        below = low
    return (*responses, (1.0 - below).astype(np.float32))


def envelope_block_edges(blocks):
    """(blocks + 1,) frame where each envelope block of a step starts, and the step's end: equal blocks, +/-1."""
    return np.round(np.linspace(0, STEP_FRAMES, blocks + 1)).astype(np.int64)


def _envelope_targets(codes, blocks, bands=1):
    """(bands, steps, blocks) RMS each envelope block of the codes asks for, band by band."""
    codes = np.asarray(codes, np.float64)
    last = codes[:, codes.shape[-1] - bands * blocks:].reshape(len(codes), bands, blocks)
    return np.exp(np.clip(last, *LOG_LEVEL_LIMITS)).transpose(1, 0, 2)


def envelope_gains(decoded_rms, target_rms, limits=(MIN_ENVELOPE_GAIN, MAX_ENVELOPE_GAIN)):
    """(steps, blocks) gain on each block's decoded sound (RMS decoded_rms) that gives it target_rms (the
    envelope's), kept within limits (MIN_ENVELOPE_GAIN and MAX_ENVELOPE_GAIN for a one-band envelope)."""
    return np.clip(target_rms / np.maximum(decoded_rms, 1e-12), *limits)


def _block_starts(num_steps, blocks):
    """The first frame of every envelope block of num_steps steps, and the frames in each: (num_steps * blocks,)."""
    edges = envelope_block_edges(blocks)
    return (np.arange(num_steps)[:, None] * STEP_FRAMES + edges[None, :-1]).ravel(), np.tile(np.diff(edges), num_steps)


def _frame_power(samples):
    """(..., frames) float32 sum of squares over the channels (the last axis) of each frame of (..., frames,
    channels) samples (a sum of squares per channel: 5x faster than einsum or a sum over the short last axis)."""
    samples = np.asarray(samples, np.float32)
    power = np.square(samples[..., 0])
    for channel in range(1, samples.shape[-1]):
        power += np.square(samples[..., channel])
    return power


def _block_rms(samples, num_steps, blocks, power=None, curve=None):
    """(num_steps, blocks) RMS over both channels of each envelope block of (num_steps * STEP_FRAMES, 2) samples
    (power: their _frame_power, if known), times a gain curve (frames,) if given."""
    starts, sizes = _block_starts(num_steps, blocks)
    power = _frame_power(samples) if power is None else power
    if curve is not None:
        power = power * np.square(curve, dtype=np.float32)
    sums = np.add.reduceat(power, starts).astype(np.float64)
    return np.sqrt(sums / (sizes * CHANNELS)).reshape(num_steps, blocks)


def impose_envelope(samples, codes, code_format, passes=None):
    """samples (steps * STEP_FRAMES, 2) decoded from codes (steps, latent) -> the same sound with each
    envelope block's RMS made the code's (envelope_gains, bounded), by a gain curve linear from block centre
    to block centre, so it has no steps to click.

    A linear curve is lower than its block's gain at the block's edges wherever the neighbours' gains are
    lower: a beat's block then comes out quieter than asked. Each pass after the first measures the blocks
    again and corrects their gains by what they missed (on 60 s of real music with random peak signs, the
    worst second's level against its envelope's went from -0.44 dB with one pass to -0.08 dB with two). A
    block's gain reaches one block further per pass, so models.decode's batches, which have a whole
    neighbouring step on either side, stay exact for passes < blocks. passes None: ENVELOPE_PASSES for a
    one-band envelope, BAND_ENVELOPE_PASSES for one in bands.
    """
    code_format = as_sparse_format(code_format)
    blocks, bands = code_format.envelope_blocks, code_format.envelope_bands
    if blocks == 0 or len(codes) == 0:
        return samples
    if passes is None:
        passes = ENVELOPE_PASSES if bands == 1 else BAND_ENVELOPE_PASSES
    limits, curve_plan = _gain_limits(bands), _linear_curve_plan(len(codes), blocks, len(samples))
    targets = _envelope_targets(codes, blocks, bands)
    if bands == 1:  # samples itself, which stays as it was
        shaped = _impose_levels(np.array(samples, np.float32), targets[0], blocks, limits, passes, curve_plan)
        return shaped.astype(samples.dtype, copy=False)
    # The bands are new arrays, scaled where they lie, each in its own thread.
    parts = for_each_band(samples, bands, lambda band, part: _impose_levels(part, targets[band], blocks, limits,
                                                                             passes, curve_plan))
    shaped = parts[0]
    for part in parts[1:]:
        shaped += part
    return shaped.astype(samples.dtype, copy=False)


@functools.lru_cache(maxsize=4)  # models.decode asks for the same plan batch after batch
def _linear_curve_plan(num_steps, blocks, frames):
    """What _linear_curve needs for curves through the centres of num_steps * blocks envelope blocks over
    frames frames: how many frames lie from each centre to the next, and how far along (float32)."""
    starts, sizes = _block_starts(num_steps, blocks)
    centres = starts + (sizes - 1) / 2
    position = np.interp(np.arange(frames), centres, np.arange(len(centres), dtype=np.float64))
    interval = np.minimum(position.astype(np.int64), max(len(centres) - 2, 0))
    return np.bincount(interval, minlength=max(len(centres) - 1, 1)), (position - interval).astype(np.float32)


def _linear_curve(gains, plan):
    """(frames,) float32 curve through gains (one per block centre), linear between centres and flat beyond
    them: np.interp's, 7x faster (3-4 bands x 1-2 passes per decode)."""
    lengths, along = plan
    gains = np.asarray(gains, np.float32).ravel()
    if len(gains) == 1:
        return np.full(len(along), gains[0], np.float32)
    return np.repeat(gains[:-1], lengths) + np.repeat(np.diff(gains), lengths) * along


def _impose_levels(samples, target, blocks, limits, passes, curve_plan):
    """samples (steps * STEP_FRAMES, 2) with each block's RMS made target's (steps, blocks), within limits:
    scaled in place (a new array for every band cost 11-30% of impose_envelope's time on 120 s of music)."""
    power = _frame_power(samples)
    steps = len(target)
    gains = envelope_gains(_block_rms(samples, steps, blocks, power), target, limits)
    for done in range(passes):
        curve = _linear_curve(gains, curve_plan)
        if done + 1 < passes:
            achieved = _block_rms(samples, steps, blocks, power, curve)
            # What each block still misses, on top of its gain so far, within the same bounds.
            gains = np.clip(gains * target / np.maximum(achieved, 1e-12), *limits)
    return _times_each_channel(samples, curve, samples)


def _times_each_channel(array, factor, out):
    """array (..., channels) times factor (broadcast against one channel, array[..., 0]) into out, channel by
    channel: broadcast over the short last axis, NumPy's product took 2-5x as long (a gain curve on 258 steps:
    19 -> 4 ms; a band's response, longer than the band's inverse FFT before)."""
    for channel in range(array.shape[-1]):
        np.multiply(array[..., channel], factor, out=out[..., channel])
    return out


def _band_envelopes(segments, blocks, bands):
    """(batch, SEGMENT_FRAMES, 2) float32 -> (batch, bands * blocks) float32 natural log of the RMS of the
    step's frames in each block of each band. The bands are split from the step and SPLIT_MARGIN frames of the
    segment on either side, where the filters settle as on the decoder's cross-faded sound, which it splits
    as a whole."""
    around = segments[:, SEGMENT_MARGIN - SPLIT_MARGIN:SEGMENT_MARGIN + STEP_FRAMES + SPLIT_MARGIN]

    def levels(band, part):
        step = part[:, SPLIT_MARGIN:SPLIT_MARGIN + STEP_FRAMES]
        # The steps one after another, as models.decode measures the decoded sound's blocks.
        return _block_rms(step, len(step), blocks, power=_frame_power(step).reshape(-1))

    log_level = np.log(np.concatenate(for_each_band(around, bands, levels, axis=1), axis=1) + 1e-12)
    return np.maximum(log_level, LOG_LEVEL_LIMITS[0]).astype(np.float32)


def _step_envelope(segment, blocks, bands=1):
    """(batch, SEGMENT_FRAMES, 2) -> (batch, bands * blocks) natural log of the RMS of the step's frames in each
    block (of each band: split_bands, in the graph as a numpy function)."""
    import tensorflow as tf

    if bands > 1:
        levels = tf.numpy_function(lambda part: _band_envelopes(part, blocks, bands), [segment], tf.float32,
                                   stateful=False)
        return tf.ensure_shape(levels, (None, bands * blocks))
    step = segment[:, SEGMENT_MARGIN:SEGMENT_MARGIN + STEP_FRAMES]
    power = tf.reduce_mean(tf.square(step), axis=-1)  # (batch, STEP_FRAMES), both channels
    sizes = np.diff(envelope_block_edges(blocks))
    mean = _band_sums(power, np.repeat(np.arange(blocks), sizes).astype(np.int32), blocks) / sizes.astype(np.float32)
    return tf.maximum(tf.math.log(tf.sqrt(mean) + 1e-12), LOG_LEVEL_LIMITS[0])
