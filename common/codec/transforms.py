"""The spectra a sparse code is taken in, and the lapped transform the dense code can work through.

The spectrum is that of the mid (L+R)/2 and side (L-R)/2 signals laid end to end, by one of two transforms:
  "lapped" (autoencode.py --lapped): a lapped orthogonal transform (MDCT-like: each segment's
      cross-fade margins are folded into its step with a power-complementary window, then a DCT-IV),
      2 * STEP_FRAMES bins 2 Hz apart. Neighbouring steps' bases overlap but together form one orthonormal
      basis of the song, so coefficients left out cost exactly their energy, and the decoder's segments
      cross-fade without the energy correction other codes need (layers.decoded_segments_are_lapped).
  "trimmed-dct" (the default): the orthonormal DCT-II of the segment but its outer 5 and 6 frames, which the
      cross-fades weigh under 2e-5 (2 x TRIMMED_DCT_FRAMES bins, 1.6 Hz apart); its margins are coded twice,
      once by each neighbour, and the inverse leaves the outer frames silent. SEGMENT_FRAMES is prime, and a
      DCT of a prime length is 3-4x slower than one of 13770 = 2 x 3^4 x 5 x 17. The lapped transform
      measured worse in the score models' continuations (docs/codec.md).
  "dct": the DCT-II of the whole segment (2 * SEGMENT_FRAMES bins): codes saved before "trimmed-dct".
Music over a quarter of a second is sparse there: a few hundred coefficients hold most of its energy, but
which ones changes from step to step, so keeping the largest (an adaptive choice no linear code such as PCA
can make) beats PCA of the same size by several dB of SI-SDR on held-out real music (bench/fidelity.py).
Codes with a noise envelope take their DCTs by SciPy's FFTs in the graph (tf.numpy_function: _mid_side_dct,
_inverse_dct_left_right), faster than TensorFlow's on 2 cores, with mid/side <-> left/right done in the same
NumPy pass. fold_steps / steps_from_folded fold and unfold a whole song's steps at once for the dense code.
"""
import functools

import numpy as np
import scipy.fft

from common.audio import CHANNELS, SEGMENT_FRAMES, SEGMENT_MARGIN, STEP_FRAMES
from common.codec.layout import bins_per_channel, spectrum_bins
from common.crossfade import crossfade_window

# SciPy's FFTs of a batch on every core: the encoder's three passes run 30% faster on 2 cores (the decoder's
# one pass gains nothing: TensorFlow runs its other ops beside it).
FFT_WORKERS = -1


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


def dct_frames(length):
    """The segment's frames a DCT of length frames covers: its middle (all of it for "dct", all but the outer 5
    and 6 for "trimmed-dct")."""
    first = (SEGMENT_FRAMES - length) // 2
    return slice(first, first + length)


def _spectrum(segment, transform):
    """(batch, SEGMENT_FRAMES, 2) -> (batch, spectrum_bins): mid and side coefficients end to end."""
    import tensorflow as tf

    mid_side = _mid_side(segment)
    if transform == "lapped":
        coefficients = tf.signal.dct(_lapped_analysis(mid_side), type=4, norm="ortho")
    else:
        coefficients = tf.signal.dct(mid_side[..., dct_frames(bins_per_channel(transform))], type=2, norm="ortho")
    return tf.reshape(coefficients, [-1, spectrum_bins(transform)])


def _waveform(spectrum, transform):
    """(batch, spectrum_bins) -> (batch, SEGMENT_FRAMES, 2) decoded segments, to be cross-faded by overlap_add.

    "dct", "trimmed-dct": the inverse of _spectrum (the frames a trimmed DCT leaves out silent). "lapped": this
    step's part of the song (_lapped_synthesis).
    """
    import tensorflow as tf

    channel_bins = bins_per_channel(transform)
    coefficients = tf.reshape(spectrum, [-1, 2, channel_bins])
    if transform == "lapped":
        mid_side = _lapped_synthesis(tf.signal.idct(coefficients, type=4, norm="ortho"))
    else:  # the frames the DCT leaves out silent
        covered = dct_frames(channel_bins)
        mid_side = tf.pad(tf.signal.idct(coefficients, type=2, norm="ortho"),
                          [[0, 0], [0, 0], [covered.start, SEGMENT_FRAMES - covered.stop]])
    return _left_right(mid_side)


def keep_largest_coefficients(segments, count, transform="lapped"):
    """(steps, SEGMENT_FRAMES, 2) segments -> the same with only each step's count largest coefficients of
    the transform's spectrum, nothing else (no noise fill, no band levels, no envelope), for
    crossfade.overlap_add (keep_energy=False for "lapped").

    With "lapped" this is the best any code that keeps count values per step of this transform can do: its
    basis is orthonormal, so keeping the largest is the least error. bench/fidelity.py prints it as a bound.
    """
    import tensorflow as tf

    spectrum = _spectrum(tf.constant(segments, tf.float32), transform)
    smallest_kept = tf.math.top_k(tf.abs(spectrum), k=count).values[:, -1:]
    return np.asarray(_waveform(tf.where(tf.abs(spectrum) >= smallest_kept, spectrum, 0.0), transform))



def _fft_on_cpu(function, inputs, dtype, last_axis):
    """function(numpy array) -> numpy array run by SciPy's FFTs inside the graph (tf.numpy_function): on 2 CPU
    cores they are 2-4x faster than TensorFlow's for these sizes. The result has the shape of inputs but for
    its last axis, last_axis long."""
    import tensorflow as tf

    result = tf.numpy_function(lambda array: function(array).astype(dtype.as_numpy_dtype, copy=False), [inputs], dtype,
                               stateful=False)
    result.set_shape(inputs.shape[:-1].concatenate([last_axis]))
    return result


def _fast_spectrum(segment, transform):
    """_spectrum, by SciPy's DCT for "dct" and "trimmed-dct" (2x faster on 2 CPU cores than TensorFlow's; codes
    with a noise envelope use it, older ones keep TensorFlow's, so they decode to the same samples as before)."""
    import tensorflow as tf

    if transform == "lapped":
        return _spectrum(segment, transform)
    length = bins_per_channel(transform)
    coefficients = tf.numpy_function(lambda batch: _mid_side_dct(batch, length), [segment], tf.float32,
                                     stateful=False)
    return tf.reshape(coefficients, [-1, spectrum_bins(transform)])


def _mid_side_dct(segment, length=SEGMENT_FRAMES):
    """numpy: (batch, SEGMENT_FRAMES, 2) left/right -> (batch, 2, length) float32 DCT of mid and side, of the
    segment's middle length frames (a trimmed DCT's): the same sums and halves as _mid_side, bit for bit, written
    channels first for SciPy's DCT (258 steps, traced, medians of 11: 246 -> 86 ms against _mid_side's stack in
    the graph)."""
    covered = dct_frames(length)
    left, right = segment[:, covered, 0], segment[:, covered, 1]
    mid_side = np.empty((len(segment), 2, length), np.float32)
    np.add(left, right, out=mid_side[:, 0])
    np.subtract(left, right, out=mid_side[:, 1])
    mid_side /= 2
    return scipy.fft.dct(mid_side, norm="ortho", axis=-1, workers=FFT_WORKERS, overwrite_x=True).astype(
        np.float32, copy=False)


def _fast_waveform(spectrum, transform):
    """_waveform, by SciPy's inverse DCT for "dct" and "trimmed-dct" (see _fast_spectrum)."""
    import tensorflow as tf

    if transform == "lapped":
        return _waveform(spectrum, transform)
    waveform = tf.numpy_function(_inverse_dct_left_right,
                                 [tf.reshape(spectrum, [-1, CHANNELS, bins_per_channel(transform)])],
                                 tf.float32, stateful=False)
    return tf.ensure_shape(waveform, (None, SEGMENT_FRAMES, CHANNELS))


def _inverse_dct_left_right(coefficients):
    """numpy: (batch, 2, SEGMENT_FRAMES or TRIMMED_DCT_FRAMES) mid/side DCT coefficients -> (batch, SEGMENT_FRAMES,
    2) float32 left/right samples: SciPy's inverse DCT, then the same sums as _left_right, bit for bit, written
    interleaved (258 steps, traced, medians of 11: 146 -> 119 ms against _left_right's stack in the graph); the
    frames a trimmed DCT leaves out are silent."""
    mid_side = scipy.fft.idct(coefficients, norm="ortho", axis=-1, workers=FFT_WORKERS).astype(np.float32, copy=False)
    length = mid_side.shape[-1]
    if length == SEGMENT_FRAMES:
        return interleaved_left_right(mid_side[:, 0], mid_side[:, 1])
    left_right = np.zeros((len(mid_side), SEGMENT_FRAMES, CHANNELS), np.float32)
    left_right[:, dct_frames(length)] = interleaved_left_right(mid_side[:, 0], mid_side[:, 1])
    return left_right


def interleaved_left_right(mid, side):
    """numpy: mid and side (..., frames) float32 -> (..., frames, 2) left/right float32: the sums of _left_right,
    bit for bit, written interleaved (no stack of two new arrays)."""
    left_right = np.empty(mid.shape + (2,), np.float32)
    np.add(mid, side, out=left_right[..., 0])
    np.subtract(mid, side, out=left_right[..., 1])
    return left_right



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
