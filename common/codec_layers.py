"""The custom layers saved autoencoders need to load: the sparse spectral code of autoencode.py --arch sparse.

The sparse code describes one segment (SEGMENT_FRAMES x 2) by the largest coefficients of its spectrum and
the level of everything else:
    code[:peaks]                 where the largest coefficients are: bin / number of bins, ascending, in [0, 1)
    code[peaks:2 * peaks]        their values
    code[2 * peaks:2 * peaks + bands]  natural log of the RMS of the remaining coefficients in each band
    code[2 * peaks + bands:-envelope_blocks]  the noise envelope (noise_groups x noise_blocks, then fine_blocks;
                                 none in codes saved before it, nor in tiny ones): natural log of the RMS of
                                 what the peaks leave out, in each of noise_groups frequency groups (12 by
                                 default: below 333 Hz, log-spaced to 6 kHz, above; 3 in codes saved before
                                 them) and noise_blocks equal blocks of the step (4, 62.5 ms; before: 16), then
                                 of what is left above 2.5 kHz in fine_blocks blocks (16, 16 ms; before: none)
    code[-envelope_blocks:]      natural log of the RMS of the step's sound in each of envelope_blocks equal
                                 blocks of time (8 by default, 31 ms each; none in codes saved before them)
The spectrum is that of the mid (L+R)/2 and side (L-R)/2 signals laid end to end, by one of two transforms:
  "lapped" (autoencode.py --lapped): a lapped orthogonal transform (MDCT-like: each segment's
      cross-fade margins are folded into its step with a power-complementary window, then a DCT-IV),
      2 * STEP_FRAMES bins 2 Hz apart. Neighbouring steps' bases overlap but together form one orthonormal
      basis of the song, so coefficients left out cost exactly their energy, and the decoder's segments
      cross-fade without the energy correction other codes need (decoded_segments_are_lapped).
  "dct" (the default): the orthonormal DCT-II of the whole segment (2 * SEGMENT_FRAMES bins, 1.6 Hz apart),
      whose margins are coded twice, once by each neighbour. Codes saved before the lapped transform use it.
      It stays the default because the score models' continuations of lapped codes measured worse
      (docs/codec.md).
Music over a quarter of a second is sparse there: a few hundred coefficients hold most of its energy, but
which ones changes from step to step, so keeping the largest (an adaptive choice no linear code such as PCA
can make) beats PCA of the same size by several dB of SI-SDR on held-out real music (bench/fidelity.py).
The decoder fills the bins it has no value for with noise at a fraction of each band's level (NOISE_GAIN),
so quiet bands are not left as silent holes (which is what log-spectral and log-mel distances punish).
With a noise envelope the decoder makes its noise by short frames (16 ms, a hop of 8 ms) instead, each group,
block by block, at the envelope's RMS, the highs shaped in time by the fine blocks: a long transform's noise
fill is spread evenly over its quarter second, which on real music took most attacks away (onsets, beat).
Newer codes' band levels are log-spaced up to 4 kHz and equally wide above it (BAND_KNEE_HZ), and their noise
spectrum goes smoothly from band centre to band centre (_smooth_band_weights). The figures that chose all this
are in docs/codec.md. Its encoder and decoder use SciPy's FFTs (_fft_on_cpu), faster than TensorFlow's on 2
cores.
The envelope is a gain curve models.decode puts on the decoded sound (impose_envelope): a round trip's sound
has it already, but a score model's predicted peaks have the right size and no reliable sign (phase), and
random signs spread each step's energy evenly over its quarter second, so a beat or a note's attack becomes
a steady hum. On held-out real music the envelope brought the Frechet distance of the real next minute with
random signs from 1.60x to 1.49x the round trip's, and the score models' continuations from 1.67x / 1.65x
to 1.44x / 1.53x (docs/continuation.md).

LappedAnalysis and LappedSynthesis are the lapped transform's fold and unfold on their own, which
autoencode.py --arch dense --lapped puts around its two linear layers.

Imported by common/models.py, so loading an encoder or decoder in safe mode needs no extra code.
"""
import dataclasses
import functools
import weakref

import keras
import numpy as np
import scipy.fft

from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_MARGIN, STEP_FRAMES, crossfade_window

TRANSFORMS = ("dct", "lapped")  # the first is the default (autoencode.py without --lapped)
LOWEST_BAND_BINS = 8  # the first band spans 0-16 Hz (lapped; dct: 0-13 Hz); band edges are log-spaced above it
LOG_LEVEL_LIMITS = (-30.0, 5.0)  # decoded levels are clipped here, so a wild predicted score stays finite
# Noise fill at 0.35 of each band's level (-9 dB): on held-out real music this gave the lowest log-spectral
# distance with both transforms (lapped: 8.32 / 8.11 / 8.27 dB at 0.25 / 0.35 / 0.5), and loses 0.5-0.6 dB
# less SI-SDR than 0.5 for 0.4 dB more log-mel distance.
NOISE_GAIN = 0.35
# The envelope's gain on the decoded sound stays within 1/2 and 2 (+/-6 dB). Random signs spread a step's
# energy evenly over it, and +/-6 dB brings back most of a beat's contrast. On held-out real music wider
# bounds (1/4 to 4) gave continuations closer to real music (Frechet 1.24x / 1.39x the round trip's, against
# 1.44x / 1.53x), but their bursts made the peak limiter take up to 2 dB off whole seconds (the quietest
# -5.5 dB under the seed, over the +/-3 dB target); 1/4 to 2 still reached -4.1 dB.
MAX_ENVELOPE_GAIN = 2.0
MIN_ENVELOPE_GAIN = 0.5
ENVELOPE_PASSES = 2  # impose_envelope's: its first gains and one correction


def code_layout(latent_dim, envelope_blocks=0, noise_groups=0, noise_blocks=0, fine_blocks=0):
    """(peaks, bands) for a code of latent_dim (>= envelope_blocks + noise_groups * noise_blocks + fine_blocks + 3)
    numbers: after the envelope and the noise envelope, about an eighth of the rest for band levels."""
    rest = latent_dim - envelope_blocks - noise_groups * noise_blocks - fine_blocks
    peaks = (rest - max(1, round(rest / 8))) // 2
    return peaks, rest - 2 * peaks


DEFAULT_ENVELOPE_BLOCKS = 8  # 31 ms each


def default_envelope_blocks(latent_dim):
    """Envelope blocks of a new sparse code (autoencode.py): DEFAULT_ENVELOPE_BLOCKS, or latent_dim // 8 if
    fewer (tiny test codes)."""
    return min(DEFAULT_ENVELOPE_BLOCKS, latent_dim // 8)


# 12 frequency groups (noise_group_of_hertz: below 333 Hz, log-spaced to 6 kHz, above) x 4 blocks of 62.5 ms,
# and the finer shape in time (16 blocks of 16 ms) of everything above 2.5 kHz. On 8 held-out songs of each kind
# the pulse of the round trip went from 0.83-0.88x (orchestral) and 0.72-0.77x (drums and bass) of the
# original's with 3 groups x 16 blocks to 0.86-0.92x and 0.85-0.87x: a drum hit's noise is told apart from the
# bass and from the hats by its band. 12 x 4 alone smeared hi-hats (onset F-measure 0.72 on tests' hats, 0.95
# with 3 x 16); the fine shape brings it to 0.80. See docs/codec.md.
DEFAULT_NOISE_GROUPS = 12
DEFAULT_NOISE_BLOCKS = 4
DEFAULT_FINE_BLOCKS = 16
FINE_GROUPS = 3  # the fine shape is that of the top one of 3 groups: above 2.5 kHz
# The fine shape is imposed half-way (its levels' square roots): in full it measured pulse 0.81-0.84x on drums
# (hats sharper than the original's in the onset envelope), at half 0.85-0.87x.
FINE_SHAPE_POWER = 0.5


def default_noise_groups(latent_dim, noise_blocks=DEFAULT_NOISE_BLOCKS):
    """Noise envelope groups of a new sparse code (autoencode.py): DEFAULT_NOISE_GROUPS where their numbers and
    the fine shape's take at most an eighth of the code, else none (tiny test codes keep the layout they had)."""
    fits = DEFAULT_NOISE_GROUPS * noise_blocks + DEFAULT_FINE_BLOCKS <= latent_dim // 8
    return DEFAULT_NOISE_GROUPS if fits else 0


def default_fine_blocks(noise_groups, noise_blocks):
    """Blocks of the fine shape of the highs (DEFAULT_FINE_BLOCKS) for a new code with a noise envelope, where
    they split its blocks evenly and are finer; else 0."""
    fits = noise_groups and 0 < noise_blocks < DEFAULT_FINE_BLOCKS and DEFAULT_FINE_BLOCKS % noise_blocks == 0
    return DEFAULT_FINE_BLOCKS if fits else 0


def new_code_settings(latent_dim, envelope_blocks=None, noise_groups=None, noise_blocks=None):
    """(envelope_blocks, noise_groups, noise_blocks, fine_blocks) of a new sparse code of latent_dim numbers:
    each None its default (autoencode.py builds with these and checks its flags against them)."""
    envelope_blocks = default_envelope_blocks(latent_dim) if envelope_blocks is None else envelope_blocks
    noise_blocks = DEFAULT_NOISE_BLOCKS if noise_blocks is None else noise_blocks
    noise_groups = default_noise_groups(latent_dim, noise_blocks) if noise_groups is None else noise_groups
    return envelope_blocks, noise_groups, noise_blocks, default_fine_blocks(max(noise_groups, 0), noise_blocks)


@dataclasses.dataclass(frozen=True)
class SparseFormat:
    """What it takes to read a sparse code besides its size: its transform and its envelope blocks."""
    transform: str = "dct"
    envelope_blocks: int = 0
    noise_groups: int = 0
    noise_blocks: int = 0
    fine_blocks: int = 0

    def layout(self, latent_dim):
        """(peaks, bands) of a code of latent_dim numbers in this format."""
        return code_layout(latent_dim, self.envelope_blocks, self.noise_groups, self.noise_blocks, self.fine_blocks)


def as_sparse_format(code_format):
    """A SparseFormat from a SparseFormat or a transform name (codes without an envelope)."""
    return code_format if isinstance(code_format, SparseFormat) else SparseFormat(code_format)


def bins_per_channel(transform):
    """Coefficients of the mid (and of the side) spectrum: 11025 for "lapped", 13781 for "dct"."""
    return {"lapped": STEP_FRAMES, "dct": SEGMENT_FRAMES}[transform]


def spectrum_bins(transform):
    """Bins of a whole spectrum, mid and side end to end: 22050 for "lapped", 27562 for "dct"."""
    return CHANNELS * bins_per_channel(transform)


# Band levels of new codes are log-spaced up to 4 kHz and 1.4 kHz wide above it (band_of_each_bin's knee_hz;
# log-spaced throughout, as before, the top band spans 17-22 kHz). Lossy sources stop at 15-19 kHz, and a noise
# fill spread over such a band left 18-22 kHz 20-45 dB louder than the original: a classifier told round-trip
# clips from the original's 0.72 / 0.84 of the time on held-out orchestral / beat-driven songs with log bands,
# 0.64 / 0.71 with the knee at 4 kHz (0.68 / 0.74 at 6 kHz), the SI-SDR unchanged.
BAND_KNEE_HZ = 4000.0


def band_of_each_bin(bands, transform, knee_hz=0.0):
    """(spectrum_bins,) int32 band number of every bin, half of the bands over mid, half over side: log-spaced
    (knee_hz 0), or log-spaced below knee_hz and all as wide as the band at the knee above it (the scale
    log f below the knee goes on with the same slope, linear in f, above it)."""
    channel_bins = bins_per_channel(transform)
    hertz_per_bin = SAMPLE_RATE / 2 / channel_bins
    per_channel = [bands - bands // 2, bands // 2]
    numbers, first = [], 0
    for count in per_channel:
        if count == 0:  # one band in all: it covers the side spectrum too
            numbers[-1] = np.concatenate([numbers[-1], np.full(channel_bins, first - 1)])
            continue
        if knee_hz:
            scale = [np.log(LOWEST_BAND_BINS * hertz_per_bin), np.log(knee_hz) + SAMPLE_RATE / 2 / knee_hz - 1]
            points = np.linspace(*scale, count + 1)
            hertz = np.where(points < np.log(knee_hz), np.exp(points), knee_hz * (1 + points - np.log(knee_hz)))
            edges = np.round(hertz / hertz_per_bin).astype(int)
        else:
            edges = np.round(np.geomspace(LOWEST_BAND_BINS, channel_bins, count + 1)).astype(int)
        edges[0] = 0
        for position in range(1, count):  # keep every band at least one bin wide
            edges[position] = min(max(edges[position], edges[position - 1] + 1), channel_bins - count + position)
        edges[-1] = channel_bins
        numbers.append(first + np.repeat(np.arange(count), np.diff(edges)))
        first += count
    return np.concatenate(numbers).astype(np.int32)


# The functions below take code_format: a SparseFormat, or a transform name for codes without an envelope.

def scale_codes(codes, gains, code_format="dct"):
    """Sparse codes of steps made louder by gains (steps,), each a factor on the amplitude: the peak values
    times it, the band levels and the envelope (natural logs) plus its log. The decoder is linear in the
    first two and the envelope's gain is a ratio, so a step decodes as gain times what it did (the "dct"
    transform's noise fill exactly; the "lapped" one's has the same level but another pattern, since its
    rotation depends on the values)."""
    peaks, _ = as_sparse_format(code_format).layout(codes.shape[-1])
    gains = np.asarray(gains, np.float64)[:, None]
    codes = codes.copy()
    codes[:, peaks:2 * peaks] = (codes[:, peaks:2 * peaks] * gains).astype(codes.dtype)
    codes[:, 2 * peaks:] = (codes[:, 2 * peaks:] + np.log(np.maximum(gains, 1e-30))).astype(codes.dtype)
    return codes


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


def enveloped_step_energies(segments, codes, code_format):
    """(steps,) energy (sum of squares over both channels) of each step as models.decode makes it, from the
    steps' decoded segments (steps, SEGMENT_FRAMES, 2), each measured on its own (not cross-faded): its
    blocks' decoded RMS times their envelope gains. For music_generator.LevelHold: no decode of the song."""
    blocks = as_sparse_format(code_format).envelope_blocks
    own = np.asarray(segments)[:, SEGMENT_MARGIN:SEGMENT_MARGIN + STEP_FRAMES].reshape(-1, CHANNELS)
    decoded_rms = _block_rms(own, len(codes), blocks)
    heard = decoded_rms * envelope_gains(decoded_rms, _envelope_targets(codes, blocks))
    return np.sum(np.square(heard) * np.diff(envelope_block_edges(blocks)) * CHANNELS, axis=1)


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


def _mid_side(segment):
    """(batch, frames, 2) -> (batch, 2, frames): mid (L+R)/2 and side (L-R)/2."""
    import tensorflow as tf

    left, right = segment[..., 0], segment[..., 1]
    return tf.stack([(left + right) / 2, (left - right) / 2], axis=1)


def _left_right(mid_side):
    """(batch, 2, frames) -> (batch, frames, 2): inverse of _mid_side."""
    import tensorflow as tf

    return tf.stack([mid_side[:, 0] + mid_side[:, 1], mid_side[:, 0] - mid_side[:, 1]], axis=-1)


def lapped_window():
    """(SEGMENT_FRAMES,) analysis window of the lapped transform: the cross-fade window made power-complementary
    (rise^2 + fall^2 = 1 where neighbours overlap, so folding is an orthogonal rotation)."""
    cross_fade = crossfade_window().astype(np.float64)
    return (cross_fade / np.sqrt(cross_fade ** 2 + (1 - cross_fade) ** 2)).astype(np.float32)


def _fold(windowed):
    """(..., SEGMENT_FRAMES) windowed segment -> (..., STEP_FRAMES): each margin folded into the step, the left
    one with even symmetry and the right one with odd symmetry about the step's edge (those of the DCT-IV)."""
    import tensorflow as tf

    margin, end = SEGMENT_MARGIN, STEP_FRAMES
    return tf.concat([windowed[..., margin:2 * margin] + tf.reverse(windowed[..., :margin], [-1]),
                      windowed[..., 2 * margin:end],
                      windowed[..., end:end + margin] - tf.reverse(windowed[..., end + margin:], [-1])], axis=-1)


def _unfold(block):
    """(..., STEP_FRAMES) -> (..., SEGMENT_FRAMES): the transpose of _fold (before the window)."""
    import tensorflow as tf

    margin, end = SEGMENT_MARGIN, STEP_FRAMES
    head, tail = block[..., :margin], block[..., end - margin:]
    return tf.concat([tf.reverse(head, [-1]), block, -tf.reverse(tail, [-1])], axis=-1)


def _lapped_analysis(channels_first):
    """(..., SEGMENT_FRAMES) -> (..., STEP_FRAMES): windowed and folded, the lapped transform before its DCT-IV."""
    return _fold(channels_first * lapped_window())


def _lapped_synthesis(blocks):
    """(..., STEP_FRAMES) -> (..., SEGMENT_FRAMES): this step's part of the song, the unfolded block times the
    window, divided by the cross-fade window, so that overlap_add's cross-fade (without its energy correction)
    sums neighbouring parts as the lapped transform's synthesis does. The division is bounded: window /
    cross-fade is between 1 and sqrt(2)."""
    return _unfold(blocks) * (lapped_window() / crossfade_window())


def _spectrum(segment, transform):
    """(batch, SEGMENT_FRAMES, 2) -> (batch, spectrum_bins): mid and side coefficients end to end."""
    import tensorflow as tf

    mid_side = _mid_side(segment)
    if transform == "lapped":
        coefficients = tf.signal.dct(_lapped_analysis(mid_side), type=4, norm="ortho")
    else:
        coefficients = tf.signal.dct(mid_side, type=2, norm="ortho")
    return tf.reshape(coefficients, [-1, spectrum_bins(transform)])


def _waveform(spectrum, transform):
    """(batch, spectrum_bins) -> (batch, SEGMENT_FRAMES, 2) decoded segments, to be cross-faded by overlap_add.

    "dct": the inverse of _spectrum. "lapped": this step's part of the song (_lapped_synthesis).
    """
    import tensorflow as tf

    channel_bins = bins_per_channel(transform)
    coefficients = tf.reshape(spectrum, [-1, 2, channel_bins])
    if transform == "lapped":
        mid_side = _lapped_synthesis(tf.signal.idct(coefficients, type=4, norm="ortho"))
    else:
        mid_side = tf.signal.idct(coefficients, type=2, norm="ortho")
    return _left_right(mid_side)


def keep_largest_coefficients(segments, count, transform="lapped"):
    """(steps, SEGMENT_FRAMES, 2) segments -> the same with only each step's count largest coefficients of
    the transform's spectrum, nothing else (no noise fill, no band levels, no envelope), for
    audio.overlap_add (keep_energy=False for "lapped").

    With "lapped" this is the best any code that keeps count values per step of this transform can do: its
    basis is orthonormal, so keeping the largest is the least error. bench/fidelity.py prints it as a bound.
    """
    import tensorflow as tf

    spectrum = _spectrum(tf.constant(segments, tf.float32), transform)
    smallest_kept = tf.math.top_k(tf.abs(spectrum), k=count).values[:, -1:]
    return np.asarray(_waveform(tf.where(tf.abs(spectrum) >= smallest_kept, spectrum, 0.0), transform))


@keras.saving.register_keras_serializable(package="musicgen")
class LappedAnalysis(keras.layers.Layer):
    """(batch, SEGMENT_FRAMES, 2) segments -> (batch, 2 * STEP_FRAMES): each channel windowed and folded into
    its step, the lapped transform without its DCT-IV (a dense layer after it needs none). No weights."""

    def call(self, segment):
        import tensorflow as tf

        return tf.reshape(_lapped_analysis(tf.transpose(segment, [0, 2, 1])), [-1, CHANNELS * STEP_FRAMES])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], CHANNELS * STEP_FRAMES)


@keras.saving.register_keras_serializable(package="musicgen")
class LappedSynthesis(keras.layers.Layer):
    """(batch, 2 * STEP_FRAMES) folded steps -> (batch, SEGMENT_FRAMES, 2): each step's part of the song,
    which overlap_add cross-fades as it is (see _waveform). The inverse of LappedAnalysis over a song."""

    def call(self, folded):
        import tensorflow as tf

        return tf.transpose(_lapped_synthesis(tf.reshape(folded, [-1, CHANNELS, STEP_FRAMES])), [0, 2, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], SEGMENT_FRAMES, CHANNELS)


# The sub-models below, per encoder / decoder. Kept here, not as attributes of the model: Keras saves every
# model-valued attribute it finds, so a codec saved after encoding would carry an extra entry.
_AFTER_FOLD, _BEFORE_UNFOLD = weakref.WeakKeyDictionary(), weakref.WeakKeyDictionary()


def after_lapped_analysis(encoder):
    """The layers after an encoder's LappedAnalysis, as a model of folded steps (made once per encoder), for
    encoders that start with one (dense --lapped); None for any other encoder.

    models.encode then folds the steps straight from the song (fold_steps) instead of cutting segments and
    folding them: the same numbers, 1.5x faster, since the steps' samples are read once.
    """
    if encoder not in _AFTER_FOLD:
        first = encoder.layers[1] if len(encoder.layers) > 1 else None
        starts_with_fold = (isinstance(first, LappedAnalysis) and len(encoder.inputs) == 1
                            and first.input is encoder.inputs[0])
        _AFTER_FOLD[encoder] = keras.Model(first.output, encoder.output) if starts_with_fold else None
    return _AFTER_FOLD[encoder]


def before_lapped_synthesis(decoder):
    """For decoders that end with a LappedSynthesis (dense --lapped): (the layers before it, as a model of the
    score, or None where the score goes straight into it; True). (None, False) for any other decoder.

    models.decode then overlap-adds their folded output straight into the song (steps_from_folded) instead of
    unfolding it into segments and cross-fading those.
    """
    if decoder not in _BEFORE_UNFOLD:
        last = decoder.layers[-1] if decoder.layers else None
        if not isinstance(last, LappedSynthesis) or len(decoder.inputs) != 1:
            _BEFORE_UNFOLD[decoder] = (None, False)
        elif last.input is decoder.inputs[0]:
            _BEFORE_UNFOLD[decoder] = (None, True)
        else:
            _BEFORE_UNFOLD[decoder] = (keras.Model(decoder.inputs[0], last.input), True)
    return _BEFORE_UNFOLD[decoder]


def fold_steps(steps, song_starts, song_ends):
    """(n, STEP_FRAMES, 2) consecutive steps -> LappedAnalysis of the segments of the middle ones,
    (n - 2 + song_starts + song_ends, 2 * STEP_FRAMES) as a tf.Tensor, without cutting segments.

    The first and last of steps are only neighbours, unless song_starts / song_ends say that steps begins /
    ends the song: there the song is padded with silence, as segments_from_steps pads it.
    """
    steps = _with_silence(steps, song_starts, song_ends)
    return _fused_lapped_functions()[0](steps)  # a tf.Tensor: it goes on into the encoder's layers


def steps_from_folded(folded, song_starts, song_ends):
    """(n, 2 * STEP_FRAMES) consecutive decoded folded steps (array or tf.Tensor) -> the audio of the middle
    ones, (n - 2 + song_starts + song_ends, STEP_FRAMES, 2): overlap_add(LappedSynthesis(folded),
    keep_energy=False) in one pass, without making segments.

    The first and last of folded are only neighbours, unless song_starts / song_ends say that folded
    begins / ends the song: there, as in overlap_add, the song's first and last margin have one part only.
    """
    folded = _with_silence(folded, song_starts, song_ends)
    steps = np.asarray(_fused_lapped_functions()[1](folded))  # read-only: TensorFlow's buffer, not a copy
    if len(steps) and (song_starts or song_ends):
        # overlap_add takes the song's ends as they are, a part divided by the cross-fade window.
        steps, cross_fade = steps.copy(), crossfade_window()
        if song_starts:
            steps[0, :SEGMENT_MARGIN] /= cross_fade[SEGMENT_MARGIN:2 * SEGMENT_MARGIN, None]
        if song_ends:
            steps[-1, STEP_FRAMES - SEGMENT_MARGIN:] /= cross_fade[STEP_FRAMES:STEP_FRAMES + SEGMENT_MARGIN, None]
    return steps


def _with_silence(blocks, before, after):
    """blocks (an array or a tf.Tensor) as a float32 tf.Tensor, with a block of zeros put before and/or after."""
    import tensorflow as tf

    blocks = tf.convert_to_tensor(blocks, tf.float32)
    if not (before or after):
        return blocks
    return tf.pad(blocks, [[int(bool(before)), int(bool(after))]] + [[0, 0]] * (len(blocks.shape) - 1))


@functools.lru_cache(maxsize=1)
def _fused_lapped_functions():
    """(fold, overlap) compiled with XLA, which fuses each into one pass over the samples (1.4x faster than
    TensorFlow's kernels one by one). A step's folded samples are its own times the window, plus near each
    edge a neighbour's samples mirrored about that edge (_fold); overlapping is the transpose of folding.

    fold: (n + 2, STEP_FRAMES, 2) steps with both neighbours -> (n, 2 * STEP_FRAMES) channel by channel;
    overlap: (n + 2, 2 * STEP_FRAMES) -> (n, STEP_FRAMES, 2).
    """
    import tensorflow as tf

    margin, end = SEGMENT_MARGIN, STEP_FRAMES
    window = lapped_window()
    own = tf.constant(window[margin:margin + end])  # the weight of a step's own samples, (STEP_FRAMES,)
    # Mirrored samples of the neighbours are weighted by the window's rise (before) and fall (after).
    rise, fall = tf.constant(window[:margin]), tf.constant(window[end + margin:])
    untouched = end - margin

    def at_head(part):  # (..., margin) -> (..., STEP_FRAMES) zeros but the first margin
        return tf.pad(part, [[0, 0]] * (len(part.shape) - 1) + [[0, untouched]])

    def at_tail(part):
        return tf.pad(part, [[0, 0]] * (len(part.shape) - 1) + [[untouched, 0]])

    @tf.function(jit_compile=True, reduce_retracing=True)
    def fold(steps):
        channels_first = tf.transpose(steps, [0, 2, 1])  # (n + 2, 2, STEP_FRAMES)
        before, middle, after = channels_first[:-2], channels_first[1:-1], channels_first[2:]
        folded = (middle * own + at_head(tf.reverse(before[..., end - margin:] * rise, [-1]))
                  - at_tail(tf.reverse(after[..., :margin] * fall, [-1])))
        return tf.reshape(folded, [-1, CHANNELS * STEP_FRAMES])

    @tf.function(jit_compile=True, reduce_retracing=True)
    def overlap(folded):
        blocks = tf.reshape(folded, [-1, CHANNELS, STEP_FRAMES])
        before, middle, after = blocks[:-2], blocks[1:-1], blocks[2:]
        joined = (middle * own - at_head(fall * tf.reverse(before[..., end - margin:], [-1]))
                  + at_tail(rise * tf.reverse(after[..., :margin], [-1])))
        return tf.transpose(joined, [0, 2, 1])

    return fold, overlap


def sparse_format(decoder):
    """The SparseFormat of a sparse decoder, None for any other decoder (autoencode.py keeps it in the
    autoencoder's record)."""
    last = decoder.layers[-1] if decoder.layers else None
    if not isinstance(last, SparseSpectrumDecoding):
        return None
    return SparseFormat(last.transform, last.envelope_blocks, last.noise_groups, last.noise_blocks, last.fine_blocks)


def decoded_segments_are_lapped(decoder):
    """True for decoders of a lapped transform (sparse or dense): models.decode cross-fades their segments as
    they are (the energy correction, made for two estimates of the same audio, would undo the synthesis)."""
    last, code_format = (decoder.layers[-1] if decoder.layers else None), sparse_format(decoder)
    return isinstance(last, LappedSynthesis) or (code_format is not None and code_format.transform == "lapped")


def record_format(autoencoder):
    """The SparseFormat an autoencoder record describes: records from before the lapped transform name no
    transform and were made with "dct", those from before the envelope have none."""
    return SparseFormat(autoencoder.get("sparse_transform") or "dct", int(autoencoder.get("envelope_blocks") or 0),
                        int(autoencoder.get("noise_groups") or 0), int(autoencoder.get("noise_blocks") or 0),
                        int(autoencoder.get("noise_fine_blocks") or 0))


# SciPy's FFTs of a batch on every core: the encoder's three passes run 30% faster on 2 cores (the decoder's
# one pass gains nothing: TensorFlow runs its other ops beside it).
FFT_WORKERS = -1
NOISE_TABLE = 65537  # complex Gaussian numbers the short-time noise is drawn from (rotated per step)


def noise_group_of_hertz(hertz, groups):
    """Group number of each frequency (Hz) in the noise envelope: log-spaced edges between 250 Hz and 8 kHz
    (2 groups: split at 1.4 kHz; 3: at 790 Hz and 2.5 kHz)."""
    edges = np.geomspace(250.0, 8000.0, groups + 1)[1:-1]
    return np.searchsorted(edges, np.asarray(hertz), side="right").astype(np.int32)


def _noise_hop(blocks):
    """Frames per noise block (the last frame or so of a step is left out of the encoder's measure)."""
    return STEP_FRAMES // blocks


# The noise is made of frames of 2 hops of 7.8 ms with any number of blocks (what 16 blocks had): short frames
# keep an attack's noise from starting long before its block (onset F-measure +0.04 on orchestral music with
# 4 blocks, against frames of 2 blocks).
NOISE_FRAME_HOP = STEP_FRAMES // 32


def _fft_on_cpu(function, inputs, dtype, last_axis):
    """function(numpy array) -> numpy array run by SciPy's FFTs inside the graph (tf.numpy_function): on 2 CPU
    cores they are 2-4x faster than TensorFlow's for these sizes. The result has the shape of inputs but for
    its last axis, last_axis long."""
    import tensorflow as tf

    result = tf.numpy_function(lambda array: function(array).astype(dtype.as_numpy_dtype), [inputs], dtype,
                               stateful=False)
    result.set_shape(inputs.shape[:-1].concatenate([last_axis]))
    return result


def _fast_spectrum(segment, transform):
    """_spectrum, by SciPy's DCT for "dct" (2x faster on 2 CPU cores than TensorFlow's; codes with a noise
    envelope use it, older ones keep TensorFlow's, so they decode to the same samples as before)."""
    import tensorflow as tf

    if transform != "dct":
        return _spectrum(segment, transform)
    coefficients = _fft_on_cpu(lambda samples: scipy.fft.dct(samples, norm="ortho", axis=-1, workers=FFT_WORKERS),
                               _mid_side(segment), tf.float32, SEGMENT_FRAMES)
    return tf.reshape(coefficients, [-1, spectrum_bins(transform)])


def _fast_waveform(spectrum, transform):
    """_waveform, by SciPy's inverse DCT for "dct" (see _fast_spectrum)."""
    import tensorflow as tf

    if transform != "dct":
        return _waveform(spectrum, transform)
    return _left_right(_fft_on_cpu(lambda coefficients: scipy.fft.idct(coefficients, norm="ortho", axis=-1,
                                                                       workers=FFT_WORKERS),
                                   tf.reshape(spectrum, [-1, CHANNELS, SEGMENT_FRAMES]), tf.float32, SEGMENT_FRAMES))


def _residual_envelope(rest, groups, blocks):
    """(batch, SEGMENT_FRAMES, 2) waveform of what the peaks leave out -> (batch, groups * blocks) natural log
    of its RMS over both channels in each frequency group (by a short FFT of each block) and block of the step."""
    import tensorflow as tf

    hop = _noise_hop(blocks)
    step = tf.transpose(rest[:, SEGMENT_MARGIN:SEGMENT_MARGIN + blocks * hop], [0, 2, 1])  # (batch, 2, frames)
    bins = hop // 2 + 1
    # A Hann window (its power normalised) keeps the bass from leaking into the higher groups' measure.
    window = np.hanning(hop + 2)[1:-1]
    window /= np.sqrt(np.mean(window ** 2))
    def power_spectra(frames):
        return np.square(np.abs(scipy.fft.rfft(frames * window, axis=-1, workers=FFT_WORKERS)))

    power = tf.reduce_sum(_fft_on_cpu(power_spectra, tf.reshape(step, [-1, CHANNELS, blocks, hop]), tf.float32, bins),
                          axis=1)
    weight = np.full(bins, 2.0)
    weight[0] = 1.0
    if hop % 2 == 0:
        weight[-1] = 1.0
    one_hot = np.eye(groups, dtype=np.float32)[noise_group_of_hertz(np.arange(bins) * SAMPLE_RATE / hop, groups)]
    energy = tf.matmul(power, tf.constant(weight[:, None] * one_hot, tf.float32)) / (hop * hop * CHANNELS)
    log_rms = tf.math.log(tf.sqrt(tf.transpose(energy, [0, 2, 1])) + 1e-12)  # (batch, groups, blocks)
    return tf.reshape(tf.maximum(log_rms, LOG_LEVEL_LIMITS[0]), [-1, groups * blocks])


def _band_centres_hertz(bands, transform, knee_hz=0.0):
    """(2, bands per channel) geometric centre (Hz) of each band of the mid and of the side spectrum, and
    (2,) the first band number of each channel."""
    channel_bins = bins_per_channel(transform)
    band_numbers = band_of_each_bin(bands, transform, knee_hz)
    hertz = (np.arange(channel_bins) + 0.5) * SAMPLE_RATE / 2 / channel_bins
    centres, firsts = [], []
    for channel in range(CHANNELS):
        numbers = band_numbers[channel * channel_bins:(channel + 1) * channel_bins]
        firsts.append(numbers[0])
        centres.append([np.sqrt(hertz[numbers == band].min() * hertz[numbers == band].max())
                        for band in range(numbers[0], numbers[-1] + 1)])
    return centres, firsts


def _smooth_band_weights(frame_hertz, bands, transform, knee_hz=0.0):
    """For every bin of a noise frame and each channel: the two bands whose centres are either side of it
    (2, 2, bins) and how far it is from the first to the second in log frequency (2, bins), for a level that
    goes smoothly from band centre to band centre. Above the last centre the line goes on (weight > 1), and
    _short_time_noise lets it fall but not rise: a band that spans a lossy source's cut-off (the top one spans
    17-22 kHz) then fills above the cut-off far less than a flat fill, which left 18-22 kHz 20-45 dB louder
    than the original."""
    centres, firsts = _band_centres_hertz(bands, transform, knee_hz)
    pairs, weights = [], []
    for channel in range(CHANNELS):
        log_centres = np.log(np.asarray(centres[channel]))
        log_hertz = np.log(np.maximum(frame_hertz, 1.0))
        upper = np.clip(np.searchsorted(log_centres, log_hertz), 1, max(1, len(log_centres) - 1))
        lower = upper - 1
        if len(log_centres) == 1:
            lower = upper = np.zeros_like(upper)
            weight = np.zeros(len(frame_hertz))
        else:
            weight = (log_hertz - log_centres[lower]) / (log_centres[upper] - log_centres[lower])
            weight = np.maximum(weight, 0.0)  # below the first centre: the first band's level
        pairs.append(np.stack([firsts[channel] + lower, firsts[channel] + upper]))
        weights.append(weight)
    return np.asarray(pairs, np.int32), np.asarray(weights, np.float32)


@functools.lru_cache(maxsize=8)
def _noise_synthesis_plan(blocks, groups, bands, transform, frame_hop=None, knee_hz=0.0, fine_blocks=0):
    """Constants of the short-time noise: frames of 2 hops (frame_hop frames; None: half a block, as codes
    saved with 16 blocks had) with a sine window, from before the segment's start to after its end; each
    frame takes the level of the block its centre is in (the first or last block's in the margins). Returns a
    dict: hop, length, window, the band (2, bins) and group (bins,) of each bin of a frame, the bands either
    side and the weights of a smooth spectrum (_smooth_band_weights), the block (frames,) of each frame, and
    where the overlap-added frames start in the segment."""
    hop = frame_hop or _noise_hop(blocks) // 2
    length, bins = 2 * hop, hop + 1
    hertz = np.arange(bins) * SAMPLE_RATE / length
    channel_bins = bins_per_channel(transform)
    long_bin = np.clip(np.round(hertz / (SAMPLE_RATE / 2 / channel_bins)), 0, channel_bins - 1).astype(int)
    band_numbers = band_of_each_bin(bands, transform, knee_hz)
    smooth_pairs, smooth_weights = _smooth_band_weights(hertz, bands, transform, knee_hz)
    # Frame k covers SEGMENT_MARGIN + k * hop - hop / 2 .. + 2 hop: two frames overlap at every frame kept.
    first = -int(np.ceil((SEGMENT_MARGIN - hop // 2) / hop)) - 1
    last = int(np.ceil((SEGMENT_FRAMES - SEGMENT_MARGIN + hop // 2) / hop))
    frames = np.arange(first, last + 1)
    centres = frames * hop + hop // 2  # in the step's frames
    def block_of_each_frame(count):
        return np.clip(np.searchsorted(envelope_block_edges(count), centres, side="right") - 1, 0, count - 1)

    block = block_of_each_frame(blocks)
    fine_block = block_of_each_frame(fine_blocks) if fine_blocks else block
    return {"hop": hop, "length": length,
            "window": np.sin(np.pi * (np.arange(length) + 0.5) / length).astype(np.float32),
            "band": np.stack([band_numbers[long_bin], band_numbers[channel_bins + long_bin]]).astype(np.int32),
            "smooth_pairs": smooth_pairs, "smooth_weights": smooth_weights,
            "group": noise_group_of_hertz(hertz, groups), "block": block.astype(np.int32),
            "fine_block": fine_block.astype(np.int32),
            "fine_shaped": (noise_group_of_hertz(hertz, FINE_GROUPS) == FINE_GROUPS - 1).astype(np.float32),
            "start": SEGMENT_MARGIN + first * hop - hop // 2}


def _short_time_noise(level, log_targets, rotation, table, noise_gain, groups, blocks, transform, smooth=False,
                      knee_hz=0.0, log_fine=None):
    """(batch, SEGMENT_FRAMES, 2) noise with each band's level (level: (batch, bands), as in the band levels)
    shaping its spectrum and, in each frequency group and block of the step, the RMS noise_gain times the noise
    envelope's (log_targets: (batch, groups * blocks)): random-phase frames of a short inverse FFT,
    overlap-added. rotation (batch, 1): where in table (NOISE_TABLE complex numbers) each step's noise starts.
    smooth: frames of NOISE_FRAME_HOP and a spectrum that goes from band centre to band centre in log level
    (codes saved before it: frames of half a block, each band's level flat across it). knee_hz: the bands'
    (band_of_each_bin)."""
    import tensorflow as tf

    fine_blocks = 0 if log_fine is None else log_fine.shape[-1]
    plan = _noise_synthesis_plan(blocks, groups, level.shape[-1], transform, NOISE_FRAME_HOP if smooth else None,
                                 knee_hz, fine_blocks)
    hop, length, frames = plan["hop"], plan["length"], len(plan["block"])
    bins = hop + 1
    if smooth:
        log_level = tf.math.log(level)
        lower = tf.gather(log_level, plan["smooth_pairs"][:, 0], axis=1)  # (batch, 2, bins)
        upper = tf.gather(log_level, plan["smooth_pairs"][:, 1], axis=1)
        line = lower + plan["smooth_weights"] * (upper - lower)
        shape = tf.exp(tf.maximum(tf.minimum(line, tf.maximum(lower, upper)), LOG_LEVEL_LIMITS[0]))
    else:
        shape = tf.gather(level, plan["band"], axis=1)  # (batch, 2, bins)
    one_hot = tf.constant(np.eye(groups, dtype=np.float32)[plan["group"]])  # (bins, groups)
    group_power = tf.matmul(tf.reduce_sum(tf.square(shape), axis=1), one_hot)  # (batch, groups)
    targets = tf.exp(tf.clip_by_value(tf.reshape(log_targets, [-1, groups, blocks]), *LOG_LEVEL_LIMITS))
    # E[x^2] of an inverse FFT of random-phase bins of sizes a_k is 2 sum a_k^2 / length^2 (windows overlapped).
    scale = noise_gain * targets * length / tf.sqrt(2 * group_power + 1e-30)[..., None]  # (batch, groups, blocks)
    per_frame = tf.gather(tf.gather(scale, plan["block"], axis=2), plan["group"], axis=1)  # (batch, bins, frames)
    if fine_blocks:
        # The highs' finer shape in time: within each block, the fine blocks' levels (to FINE_SHAPE_POWER) over
        # their RMS, so a block keeps its level.
        fine = tf.exp(FINE_SHAPE_POWER * tf.clip_by_value(tf.reshape(log_fine, [-1, blocks, fine_blocks // blocks]),
                                                          *LOG_LEVEL_LIMITS))
        fine = fine / tf.sqrt(tf.reduce_mean(tf.square(fine), axis=2, keepdims=True) + 1e-30)
        shaping = tf.gather(tf.reshape(fine, [-1, fine_blocks]), plan["fine_block"], axis=1)  # (batch, frames)
        per_frame *= 1 + plan["fine_shaped"][:, None] * (shaping[:, None, :] - 1)
    sizes = shape[:, None] * tf.transpose(per_frame, [0, 2, 1])[:, :, None]  # (batch, frames, 2, bins)
    where = tf.math.floormod(tf.range(frames * CHANNELS * bins)[None] + rotation, NOISE_TABLE)
    phases = tf.reshape(tf.gather(tf.constant(table), where), [-1, frames, CHANNELS, bins])
    waves = _fft_on_cpu(lambda spectra: scipy.fft.irfft(spectra, length, axis=-1, workers=FFT_WORKERS),
                        tf.complex(sizes, 0.0) * phases, tf.float32, length) * plan["window"]
    joined = tf.signal.overlap_and_add(tf.transpose(waves, [0, 2, 1, 3]), hop)  # (batch, 2, (frames + 1) hop)
    mid_side = joined[..., -plan["start"]:-plan["start"] + SEGMENT_FRAMES]
    return _left_right(mid_side)


def _scatter(batch_indices, values, batch_size, total_bins):
    """(batch, peaks) bins and values -> (batch, total_bins) with the values summed into their bins."""
    import tensorflow as tf

    rows = tf.broadcast_to(tf.range(batch_size)[:, None], tf.shape(batch_indices))
    where = tf.stack([rows, batch_indices], axis=-1)
    return tf.tensor_scatter_nd_add(tf.zeros([batch_size, total_bins], values.dtype), where, values)


def _band_sums(per_bin, band_numbers, bands):
    """(batch, spectrum_bins) -> (batch, bands): sum over the bins of each band."""
    import tensorflow as tf

    return tf.transpose(tf.math.unsorted_segment_sum(tf.transpose(per_bin), band_numbers, bands))


def _check_fine_blocks(fine_blocks, noise_blocks):
    if fine_blocks and (not noise_blocks or fine_blocks % int(noise_blocks)):
        raise ValueError(f"fine_blocks {fine_blocks} must split noise_blocks {noise_blocks} evenly")
    return int(fine_blocks)


def _check_transform(transform):
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown sparse-code transform {transform!r}: one of {', '.join(TRANSFORMS)}")
    return transform


@keras.saving.register_keras_serializable(package="musicgen")
class SparseSpectrumEncoding(keras.layers.Layer):
    """(batch, SEGMENT_FRAMES, 2) segments -> (batch, 2 * peaks + bands) sparse spectral codes (see module).

    transform defaults to "dct" because encoders saved before the lapped transform have no such setting, and
    envelope_blocks to 0 for those saved before the envelope.
    """

    def __init__(self, peaks, bands, transform="dct", envelope_blocks=0, noise_groups=0, noise_blocks=0,
                 band_knee_hz=0.0, fine_blocks=0, **kwargs):
        super().__init__(**kwargs)
        self.fine_blocks = _check_fine_blocks(fine_blocks, noise_blocks)
        self.peaks, self.bands, self.transform = int(peaks), int(bands), _check_transform(transform)
        self.envelope_blocks = int(envelope_blocks)
        self.noise_groups, self.noise_blocks = int(noise_groups), int(noise_blocks)
        self.band_knee_hz = float(band_knee_hz)
        self.band_numbers = band_of_each_bin(self.bands, self.transform, self.band_knee_hz)

    def call(self, segment):
        import tensorflow as tf

        spectrum = (_fast_spectrum if self.noise_groups else _spectrum)(segment, self.transform)
        _, largest = tf.math.top_k(tf.abs(spectrum), self.peaks)
        bins = tf.sort(largest, axis=-1)  # ascending frequency, so each slot of the score keeps a rough register
        values = tf.gather(spectrum, bins, batch_dims=1)
        kept = _scatter(bins, tf.ones_like(values), tf.shape(spectrum)[0], spectrum_bins(self.transform))
        rest_energy = _band_sums(tf.square(spectrum) * (1 - kept), self.band_numbers, self.bands)
        rest_bins = _band_sums(1 - kept, self.band_numbers, self.bands)
        log_level = tf.math.log(tf.sqrt(rest_energy / tf.maximum(rest_bins, 1.0)) + 1e-12)
        log_level = tf.maximum(log_level, LOG_LEVEL_LIMITS[0])
        positions = tf.cast(bins, spectrum.dtype) / spectrum_bins(self.transform)
        parts = [positions, values, log_level]
        if self.noise_groups:
            # The noise envelope: the RMS over time of what the peaks leave out, in each frequency group.
            rest = _fast_waveform(spectrum * (1 - kept), self.transform)
            parts.append(_residual_envelope(rest, self.noise_groups, self.noise_blocks))
            if self.fine_blocks:  # the finer shape in time of what is left above 2.5 kHz
                parts.append(_residual_envelope(rest, FINE_GROUPS, self.fine_blocks)[:, -self.fine_blocks:])
        if self.envelope_blocks:
            parts.append(_step_envelope(segment, self.envelope_blocks))
        return tf.concat(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.peaks + self.bands + self.noise_groups * self.noise_blocks + self.fine_blocks
                + self.envelope_blocks)

    def get_config(self):
        return {**super().get_config(), "peaks": self.peaks, "bands": self.bands, "transform": self.transform,
                "envelope_blocks": self.envelope_blocks, "noise_groups": self.noise_groups,
                "noise_blocks": self.noise_blocks, "band_knee_hz": self.band_knee_hz, "fine_blocks": self.fine_blocks}


@keras.saving.register_keras_serializable(package="musicgen")
class SparseSpectrumDecoding(keras.layers.Layer):
    """(batch, 2 * peaks + bands) codes -> (batch, SEGMENT_FRAMES, 2) segments; empty bins get band noise.

    The noise is a fixed Gaussian sequence, rotated by an amount that depends on the code, so decoding is
    deterministic but neighbouring steps do not repeat the same noise four times a second. transform
    defaults to "dct" for decoders saved before the lapped transform. The code's envelope_blocks last numbers
    are not used here: models.decode applies them to the cross-faded sound (impose_envelope).

    With the lapped transform the rotation also depends on the peaks' values, and the rotated noise has its
    signs flipped by a second fixed sequence rotated three times as far. A steady sound keeps the same peak
    bins from step to step, so a rotation by bins alone gave every step the same noise (heard as a 4 Hz
    pattern), and a rotation alone makes a neighbour's noise a shifted copy, which after the transform is a
    modulated copy of it: on a steady chord either left the step edges smoother than the rest of the noise
    (boundary figure 0.46-0.64 instead of ~1; with the flipped signs 0.92-1.06).
    """

    def __init__(self, peaks, bands, noise_gain=NOISE_GAIN, noise_seed=0, transform="dct", envelope_blocks=0,
                 noise_groups=0, noise_blocks=0, smooth_noise=False, band_knee_hz=0.0, fine_blocks=0, **kwargs):
        super().__init__(**kwargs)
        self.fine_blocks = _check_fine_blocks(fine_blocks, noise_blocks)
        self.smooth_noise, self.band_knee_hz = bool(smooth_noise), float(band_knee_hz)
        self.peaks, self.bands, self.transform = int(peaks), int(bands), _check_transform(transform)
        self.envelope_blocks = int(envelope_blocks)
        self.noise_groups, self.noise_blocks = int(noise_groups), int(noise_blocks)
        self.noise_gain, self.noise_seed = float(noise_gain), int(noise_seed)
        self.band_numbers = band_of_each_bin(self.bands, self.transform, self.band_knee_hz)
        total = spectrum_bins(self.transform)
        random = np.random.default_rng(self.noise_seed)
        self.noise = random.standard_normal(total).astype(np.float32)
        self.noise_signs = np.sign(random.standard_normal(total)).astype(np.float32)
        if self.noise_groups:  # unit-power complex Gaussian numbers for the short-time noise
            self.noise_table = (random.standard_normal((2, NOISE_TABLE)) / np.sqrt(2)).astype(np.float32)
            self.noise_table = (self.noise_table[0] + 1j * self.noise_table[1]).astype(np.complex64)
            self.sign_turns = random.integers(0, NOISE_TABLE, self.peaks).astype(np.int32)

    def call(self, code):
        import tensorflow as tf

        batch_size, total = tf.shape(code)[0], spectrum_bins(self.transform)
        bins = tf.cast(tf.clip_by_value(tf.round(code[:, :self.peaks] * total), 0, total - 1), tf.int32)
        values = code[:, self.peaks:2 * self.peaks]
        level = tf.exp(tf.clip_by_value(code[:, 2 * self.peaks:2 * self.peaks + self.bands], *LOG_LEVEL_LIMITS))
        spectrum = _scatter(bins, values, batch_size, total)
        if self.noise_groups:  # peaks by the long transform, the noise by short frames shaped in time
            first = 2 * self.peaks + self.bands
            # Where the step's noise starts in the table: from its peaks' bins and signs, so a steady sound's
            # steps (the same bins) still get different noise, and a louder step (scale_codes) the same.
            signs = tf.cast(values > 0, tf.int32) * tf.constant(self.sign_turns)
            turn = tf.math.floormod(tf.reduce_sum(bins, axis=-1, keepdims=True)
                                    + tf.reduce_sum(signs, axis=-1, keepdims=True), NOISE_TABLE)
            grid = first + self.noise_groups * self.noise_blocks
            noise = _short_time_noise(level, code[:, first:grid], turn,
                                      self.noise_table, self.noise_gain, self.noise_groups, self.noise_blocks,
                                      self.transform, self.smooth_noise, self.band_knee_hz,
                                      code[:, grid:grid + self.fine_blocks] if self.fine_blocks else None)
            if self.transform == "lapped":  # cross-faded as they are: power-complementary in the margins
                noise *= (lapped_window() / crossfade_window())[None, :, None]
            return _fast_waveform(spectrum, self.transform) + noise
        empty = 1 - tf.minimum(_scatter(bins, tf.ones_like(values), batch_size, total), 1.0)
        rotation = tf.math.floormod(tf.reduce_sum(bins, axis=-1, keepdims=True), total)
        every_bin = tf.range(total)[None]
        if self.transform == "lapped":
            size = tf.reduce_sum(tf.abs(values), axis=-1, keepdims=True)
            size = tf.where(tf.math.is_finite(size), size, 0.0)
            rotation = tf.math.floormod(rotation + tf.cast(tf.math.floormod(tf.floor(size * 1e4), total), tf.int32),
                                        total)
        noise = tf.gather(tf.constant(self.noise), tf.math.floormod(every_bin + rotation, total))
        if self.transform == "lapped":
            noise *= tf.gather(tf.constant(self.noise_signs), tf.math.floormod(every_bin + 3 * rotation + 1, total))
        fill = self.noise_gain * noise * tf.gather(level, self.band_numbers, axis=1) * empty
        return _waveform(spectrum + fill, self.transform)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], SEGMENT_FRAMES, CHANNELS)

    def get_config(self):
        return {**super().get_config(), "peaks": self.peaks, "bands": self.bands, "noise_gain": self.noise_gain,
                "noise_seed": self.noise_seed, "transform": self.transform, "envelope_blocks": self.envelope_blocks,
                "noise_groups": self.noise_groups, "noise_blocks": self.noise_blocks,
                "smooth_noise": self.smooth_noise, "band_knee_hz": self.band_knee_hz,
                "fine_blocks": self.fine_blocks}
