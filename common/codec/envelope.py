"""The step's envelope: its loudness in blocks of time, which models.decode puts back on the decoded sound.

The envelope is a gain curve models.decode puts on the decoded sound (impose_envelope): a round trip's sound
has it already, but a score model's predicted peaks have the right size and no reliable sign (phase), and
random signs spread each step's energy evenly over its quarter second, so a beat or a note's attack becomes
a steady hum. On held-out real music the envelope brought the Frechet distance of the real next minute with
random signs from 1.60x to 1.49x the round trip's, and the score models' continuations from 1.67x / 1.65x
to 1.44x / 1.53x (docs/continuation.md). The encoder's side is _step_envelope.
"""
import numpy as np

from common.audio import CHANNELS, SEGMENT_MARGIN, STEP_FRAMES
from common.codec.layout import LOG_LEVEL_LIMITS, as_sparse_format
from common.codec.transforms import _band_sums

# The envelope's gain on the decoded sound stays within 1/2 and 2 (+/-6 dB). Random signs spread a step's
# energy evenly over it, and +/-6 dB brings back most of a beat's contrast. On held-out real music wider
# bounds (1/4 to 4) gave continuations closer to real music (Frechet 1.24x / 1.39x the round trip's, against
# 1.44x / 1.53x), but their bursts made the peak limiter take up to 2 dB off whole seconds (the quietest
# -5.5 dB under the seed, over the +/-3 dB target); 1/4 to 2 still reached -4.1 dB.
MAX_ENVELOPE_GAIN = 2.0
MIN_ENVELOPE_GAIN = 0.5
ENVELOPE_PASSES = 2  # impose_envelope's: its first gains and one correction


def envelope_block_edges(blocks):
    """(blocks + 1,) frame where each envelope block of a step starts, and the step's end: equal blocks, +/-1."""
    return np.round(np.linspace(0, STEP_FRAMES, blocks + 1)).astype(np.int64)


def _envelope_targets(codes, blocks):
    """(steps, blocks) RMS each envelope block of the codes asks for."""
    return np.exp(np.clip(np.asarray(codes, np.float64)[:, codes.shape[-1] - blocks:], *LOG_LEVEL_LIMITS))


def envelope_gains(decoded_rms, target_rms):
    """(steps, blocks) gain on each block's decoded sound (RMS decoded_rms) that gives it target_rms (the
    envelope's), kept within MIN_ENVELOPE_GAIN and MAX_ENVELOPE_GAIN."""
    return np.clip(target_rms / np.maximum(decoded_rms, 1e-12), MIN_ENVELOPE_GAIN, MAX_ENVELOPE_GAIN)


def _block_starts(num_steps, blocks):
    """The first frame of every envelope block of num_steps steps, and the frames in each: (num_steps * blocks,)."""
    edges = envelope_block_edges(blocks)
    return (np.arange(num_steps)[:, None] * STEP_FRAMES + edges[None, :-1]).ravel(), np.tile(np.diff(edges), num_steps)


def _frame_power(samples):
    """(frames,) float32 sum of squares over the channels of each frame."""
    samples = np.asarray(samples, np.float32)
    return np.einsum("fc,fc->f", samples, samples)


def _block_rms(samples, num_steps, blocks, power=None, curve=None):
    """(num_steps, blocks) RMS over both channels of each envelope block of (num_steps * STEP_FRAMES, 2) samples
    (power: their _frame_power, if known), times a gain curve (frames,) if given."""
    starts, sizes = _block_starts(num_steps, blocks)
    power = _frame_power(samples) if power is None else power
    if curve is not None:
        power = power * np.square(curve, dtype=np.float32)
    sums = np.add.reduceat(power, starts).astype(np.float64)
    return np.sqrt(sums / (sizes * CHANNELS)).reshape(num_steps, blocks)


def impose_envelope(samples, codes, code_format, passes=ENVELOPE_PASSES):
    """samples (steps * STEP_FRAMES, 2) decoded from codes (steps, latent) -> the same sound with each
    envelope block's RMS made the code's (envelope_gains, bounded), by a gain curve linear from block centre
    to block centre, so it has no steps to click.

    A linear curve is lower than its block's gain at the block's edges wherever the neighbours' gains are
    lower: a beat's block then comes out quieter than asked. Each pass after the first measures the blocks
    again and corrects their gains by what they missed (on 60 s of real music with random peak signs, the
    worst second's level against its envelope's went from -0.44 dB with one pass to -0.08 dB with two). A
    block's gain reaches one block further per pass, so models.decode's batches, which have a whole
    neighbouring step on either side, stay exact for passes < 8.
    """
    blocks = as_sparse_format(code_format).envelope_blocks
    if blocks == 0 or len(codes) == 0:
        return samples
    target, power = _envelope_targets(codes, blocks), _frame_power(samples)
    gains = envelope_gains(_block_rms(samples, len(codes), blocks, power), target)
    starts, sizes = _block_starts(len(codes), blocks)
    centres, frames = starts + (sizes - 1) / 2, np.arange(len(samples), dtype=np.float32)
    for done in range(passes):
        curve = np.interp(frames, centres, gains.ravel()).astype(np.float32)
        if done + 1 < passes:
            achieved = _block_rms(samples, len(codes), blocks, power, curve)
            # What each block still misses, on top of its gain so far, within the same bounds.
            gains = np.clip(gains * target / np.maximum(achieved, 1e-12), MIN_ENVELOPE_GAIN, MAX_ENVELOPE_GAIN)
    return (samples * curve[:, None]).astype(samples.dtype)


def _step_envelope(segment, blocks):
    """(batch, SEGMENT_FRAMES, 2) -> (batch, blocks) natural log of the RMS of the step's frames in each block."""
    import tensorflow as tf

    step = segment[:, SEGMENT_MARGIN:SEGMENT_MARGIN + STEP_FRAMES]
    power = tf.reduce_mean(tf.square(step), axis=-1)  # (batch, STEP_FRAMES), both channels
    sizes = np.diff(envelope_block_edges(blocks))
    mean = _band_sums(power, np.repeat(np.arange(blocks), sizes).astype(np.int32), blocks) / sizes.astype(np.float32)
    return tf.maximum(tf.math.log(tf.sqrt(mean) + 1e-12), LOG_LEVEL_LIMITS[0])
