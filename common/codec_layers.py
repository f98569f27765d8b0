"""The custom layers saved autoencoders need to load: the sparse spectral code of autoencode.py --arch sparse.

The sparse code describes one segment (SEGMENT_FRAMES x 2) by the largest coefficients of its spectrum and
the level of everything else:
    code[:peaks]                 where the largest coefficients are: bin / number of bins, ascending, in [0, 1)
    code[peaks:2 * peaks]        their values
    code[2 * peaks:]             natural log of the RMS of the remaining coefficients in each band
The spectrum is the orthonormal DCT-II of the mid (L+R)/2 and side (L-R)/2 signals laid end to end
(2 * SEGMENT_FRAMES bins, 1.6 Hz apart). Music over a third of a second is sparse there: a few hundred
coefficients hold most of its energy, but which ones changes from step to step, so keeping the largest
(an adaptive choice no linear code such as PCA can make) is worth 4.1 dB of SI-SDR over PCA at 512
numbers on held-out real music (bench/fidelity.py). The decoder fills the bins it has no value for with noise at a fraction of each band's level (NOISE_GAIN),
so quiet bands are not left as silent holes (which is what log-spectral and log-mel distances punish).

Imported by common/models.py, so loading an encoder or decoder in safe mode needs no extra code.
"""
import keras
import numpy as np

from common.audio import CHANNELS, SEGMENT_FRAMES

SPECTRUM_BINS = CHANNELS * SEGMENT_FRAMES  # 27562: mid and side DCTs end to end
LOWEST_BAND_BINS = 8  # the first band spans 0-13 Hz; band edges are spaced logarithmically above it
LOG_LEVEL_LIMITS = (-30.0, 5.0)  # decoded levels are clipped here, so a wild predicted score stays finite
# Noise fill at 0.35 of each band's level (-9 dB): on held-out real music this gave the lowest log-spectral
# distance, and costs 0.6 dB less SI-SDR than 0.5 for 0.4 dB more log-mel distance.
NOISE_GAIN = 0.35


def code_layout(latent_dim):
    """(peaks, bands) for a code of latent_dim (>= 3) numbers: about an eighth of it for band levels."""
    peaks = (latent_dim - max(1, round(latent_dim / 8))) // 2
    return peaks, latent_dim - 2 * peaks


def band_of_each_bin(bands):
    """(SPECTRUM_BINS,) int32 band number of every bin: log-spaced bands, half of them over mid, half over side."""
    per_channel = [bands - bands // 2, bands // 2]
    numbers, first = [], 0
    for count in per_channel:
        if count == 0:  # one band in all: it covers the side spectrum too
            numbers[-1] = np.concatenate([numbers[-1], np.full(SEGMENT_FRAMES, first - 1)])
            continue
        edges = np.round(np.geomspace(LOWEST_BAND_BINS, SEGMENT_FRAMES, count + 1)).astype(int)
        edges[0] = 0
        for position in range(1, count):  # keep every band at least one bin wide
            edges[position] = min(max(edges[position], edges[position - 1] + 1), SEGMENT_FRAMES - count + position)
        edges[-1] = SEGMENT_FRAMES
        numbers.append(first + np.repeat(np.arange(count), np.diff(edges)))
        first += count
    return np.concatenate(numbers).astype(np.int32)


def peak_bands(codes):
    """(steps, 2 * peaks + bands) sparse codes -> (steps, peaks) int band of each peak, as the decoder places it."""
    peaks, bands = code_layout(codes.shape[-1])
    bins = np.clip(np.round(codes[:, :peaks] * SPECTRUM_BINS), 0, SPECTRUM_BINS - 1).astype(np.int64)
    return band_of_each_bin(bands)[bins]


def _peaks_and_levels(codes):
    """(band of each peak, its |value|, the level of the rest of its band), each (steps, peaks), as decoded."""
    peaks, _ = code_layout(codes.shape[-1])
    where = peak_bands(codes)
    level = np.exp(np.clip(codes[:, 2 * peaks:], *LOG_LEVEL_LIMITS).astype(np.float64))
    return where, np.abs(codes[:, peaks:2 * peaks]).astype(np.float64), np.take_along_axis(level, where, axis=1)


def peak_limits(codes, chunk=4096):
    """(2, bands) for sparse codes: the largest |value| of a peak in each band, and the largest ratio of a
    peak's |value| to the level of the rest of its band. 0 for bands no peak fell in.

    Measured on the training scores, they are what generation keeps sampled peaks within (keep_peaks_within).
    """
    import scipy.ndimage

    _, bands = code_layout(codes.shape[-1])
    limits = np.zeros((2, bands))
    for first in range(0, len(codes), chunk):  # the score dataset may be large: a few MB at a time
        where, size, level = _peaks_and_levels(np.asarray(codes[first:first + chunk]))
        for row, amount in enumerate((size, size / level)):
            found = scipy.ndimage.maximum(amount, where, index=np.arange(bands))
            limits[row] = np.maximum(limits[row], np.nan_to_num(np.asarray(found), nan=0.0))
    return limits


def sort_peaks(codes):
    """Sparse codes with their peaks listed by ascending position, each with its value, as the encoder lists
    them: a sampled code's positions come out in any order, and a score model reading it back should see a
    code like those it learned from."""
    peaks, _ = code_layout(codes.shape[-1])
    order = np.argsort(codes[:, :peaks], axis=1, kind="stable")
    codes = codes.copy()
    codes[:, :peaks] = np.take_along_axis(codes[:, :peaks], order, axis=1)
    codes[:, peaks:2 * peaks] = np.take_along_axis(codes[:, peaks:2 * peaks], order, axis=1)
    return codes


def keep_peaks_within(codes, limits):
    """Sparse codes with each peak's value clipped to its band's peak_limits (size, and ratio to the band's
    level); the sign, position and levels are kept. Returns the codes and how many values were clipped.

    A sampled code has peaks wherever its Gaussian put them, and the position of the k-th peak is often
    bimodal (low in one song, high in another), so sampled peaks land at frequencies real music has no
    loud peak at: on held-out real music that made continuations up to 40 dB too loud above 10 kHz.
    """
    peaks, _ = code_layout(codes.shape[-1])
    where, _, level = _peaks_and_levels(codes)
    limits = np.asarray(limits, np.float64)
    # (1 + 1e-9): a ratio measured on a code and multiplied back may round just below the value it came from
    ceiling = np.minimum(limits[0][where], limits[1][where] * level * (1 + 1e-9))
    values = codes[:, peaks:2 * peaks]
    kept = np.clip(values, -ceiling, ceiling).astype(codes.dtype)
    codes = codes.copy()
    codes[:, peaks:2 * peaks] = kept
    return codes, int(np.count_nonzero(kept != values))


def _spectrum(segment):
    """(batch, SEGMENT_FRAMES, 2) -> (batch, SPECTRUM_BINS): DCT-II of mid and side."""
    import tensorflow as tf

    left, right = segment[..., 0], segment[..., 1]
    mid_side = tf.stack([(left + right) / 2, (left - right) / 2], axis=1)
    return tf.reshape(tf.signal.dct(mid_side, type=2, norm="ortho"), [-1, SPECTRUM_BINS])


def _waveform(spectrum):
    """(batch, SPECTRUM_BINS) -> (batch, SEGMENT_FRAMES, 2): inverse of _spectrum."""
    import tensorflow as tf

    mid_side = tf.signal.idct(tf.reshape(spectrum, [-1, 2, SEGMENT_FRAMES]), type=2, norm="ortho")
    return tf.stack([mid_side[:, 0] + mid_side[:, 1], mid_side[:, 0] - mid_side[:, 1]], axis=-1)


def _scatter(batch_indices, values, batch_size):
    """(batch, peaks) bins and values -> (batch, SPECTRUM_BINS) with the values summed into their bins."""
    import tensorflow as tf

    rows = tf.broadcast_to(tf.range(batch_size)[:, None], tf.shape(batch_indices))
    where = tf.stack([rows, batch_indices], axis=-1)
    return tf.tensor_scatter_nd_add(tf.zeros([batch_size, SPECTRUM_BINS], values.dtype), where, values)


def _band_sums(per_bin, band_numbers, bands):
    """(batch, SPECTRUM_BINS) -> (batch, bands): sum over the bins of each band."""
    import tensorflow as tf

    return tf.transpose(tf.math.unsorted_segment_sum(tf.transpose(per_bin), band_numbers, bands))


@keras.saving.register_keras_serializable(package="musicgen")
class SparseSpectrumEncoding(keras.layers.Layer):
    """(batch, SEGMENT_FRAMES, 2) segments -> (batch, 2 * peaks + bands) sparse spectral codes (see module)."""

    def __init__(self, peaks, bands, **kwargs):
        super().__init__(**kwargs)
        self.peaks, self.bands = int(peaks), int(bands)
        self.band_numbers = band_of_each_bin(self.bands)

    def call(self, segment):
        import tensorflow as tf

        spectrum = _spectrum(segment)
        _, largest = tf.math.top_k(tf.abs(spectrum), self.peaks)
        bins = tf.sort(largest, axis=-1)  # ascending frequency, so each slot of the score keeps a rough register
        values = tf.gather(spectrum, bins, batch_dims=1)
        kept = _scatter(bins, tf.ones_like(values), tf.shape(spectrum)[0])
        rest_energy = _band_sums(tf.square(spectrum) * (1 - kept), self.band_numbers, self.bands)
        rest_bins = _band_sums(1 - kept, self.band_numbers, self.bands)
        log_level = tf.math.log(tf.sqrt(rest_energy / tf.maximum(rest_bins, 1.0)) + 1e-12)
        log_level = tf.maximum(log_level, LOG_LEVEL_LIMITS[0])
        return tf.concat([tf.cast(bins, spectrum.dtype) / SPECTRUM_BINS, values, log_level], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.peaks + self.bands)

    def get_config(self):
        return {**super().get_config(), "peaks": self.peaks, "bands": self.bands}


@keras.saving.register_keras_serializable(package="musicgen")
class SparseSpectrumDecoding(keras.layers.Layer):
    """(batch, 2 * peaks + bands) codes -> (batch, SEGMENT_FRAMES, 2) segments; empty bins get band noise.

    The noise is a fixed Gaussian sequence, rotated by an amount that depends on the code, so decoding is
    deterministic but neighbouring steps do not repeat the same noise four times a second.
    """

    def __init__(self, peaks, bands, noise_gain=NOISE_GAIN, noise_seed=0, **kwargs):
        super().__init__(**kwargs)
        self.peaks, self.bands = int(peaks), int(bands)
        self.noise_gain, self.noise_seed = float(noise_gain), int(noise_seed)
        self.band_numbers = band_of_each_bin(self.bands)
        self.noise = np.random.default_rng(self.noise_seed).standard_normal(SPECTRUM_BINS).astype(np.float32)

    def call(self, code):
        import tensorflow as tf

        batch_size = tf.shape(code)[0]
        bins = tf.cast(tf.clip_by_value(tf.round(code[:, :self.peaks] * SPECTRUM_BINS), 0, SPECTRUM_BINS - 1), tf.int32)
        values = code[:, self.peaks:2 * self.peaks]
        level = tf.exp(tf.clip_by_value(code[:, 2 * self.peaks:], *LOG_LEVEL_LIMITS))
        spectrum = _scatter(bins, values, batch_size)
        empty = 1 - tf.minimum(_scatter(bins, tf.ones_like(values), batch_size), 1.0)
        rotation = tf.math.floormod(tf.reduce_sum(bins, axis=-1, keepdims=True), SPECTRUM_BINS)
        noise = tf.gather(tf.constant(self.noise), tf.math.floormod(tf.range(SPECTRUM_BINS)[None] + rotation,
                                                                    SPECTRUM_BINS))
        fill = self.noise_gain * noise * tf.gather(level, self.band_numbers, axis=1) * empty
        return _waveform(spectrum + fill)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], SEGMENT_FRAMES, CHANNELS)

    def get_config(self):
        return {**super().get_config(), "peaks": self.peaks, "bands": self.bands, "noise_gain": self.noise_gain,
                "noise_seed": self.noise_seed}
