"""The Keras layers saved autoencoders need to load, registered as musicgen>name (the name a saved model's
config looks them up by): the sparse code's encoder and decoder, and the lapped transform's fold and unfold
(LappedAnalysis, LappedSynthesis), which autoencode.py --arch dense --lapped puts around its two linear layers.

Imported by common/models.py (through common.codec), so loading an encoder or decoder in safe mode needs no
extra code.
"""
import weakref

import keras
import numpy as np

from common.audio import CHANNELS, SEGMENT_FRAMES, STEP_FRAMES
from common.codec.envelope import _step_envelope
from common.codec.layout import (
    FINE_GROUPS,
    LOG_LEVEL_LIMITS,
    SparseFormat,
    _check_envelope_bands,
    _check_fine_blocks,
    _check_noise_envelope,
    _check_noise_share,
    _check_noise_window,
    _check_transform,
    band_of_each_bin,
    spectrum_bins,
)
from common.codec.noise import (
    NOISE_GAIN,
    NOISE_TABLE,
    _block_envelope,
    _short_time_noise,
    _steady_share_of_the_rest,
    _what_the_peaks_leave,
)
from common.codec.transforms import (
    _band_sums,
    _fast_spectrum,
    _fast_waveform,
    _lapped_analysis,
    _lapped_synthesis,
    _scatter,
    _spectrum,
    _waveform,
    lapped_window,
)
from common.crossfade import crossfade_window


@keras.saving.register_keras_serializable(package="musicgen")
class SparseSpectrumEncoding(keras.layers.Layer):
    """(batch, SEGMENT_FRAMES, 2) segments -> (batch, 2 * peaks + bands) sparse spectral codes (see module).

    transform defaults to "dct" because encoders saved before the lapped transform have no such setting,
    envelope_blocks to 0 for those saved before the envelope, and noise_envelope to "residual" (the noise
    envelope measures what the peaks leave out) for those saved before "total" (it measures the whole sound).
    """

    def __init__(self, peaks, bands, transform="dct", envelope_blocks=0, noise_groups=0, noise_blocks=0,
                 band_knee_hz=0.0, fine_blocks=0, noise_envelope="residual", envelope_bands=1, **kwargs):
        super().__init__(**kwargs)
        self.fine_blocks = _check_fine_blocks(fine_blocks, noise_blocks)
        self.noise_envelope = _check_noise_envelope(noise_envelope)
        self.peaks, self.bands, self.transform = int(peaks), int(bands), _check_transform(transform)
        self.envelope_blocks, self.envelope_bands = int(envelope_blocks), _check_envelope_bands(envelope_bands)
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
            # The noise envelope: the RMS over time, in each frequency group, of what the peaks leave out or of
            # the whole segment, then the finer shape in time of the highs (above 2.5 kHz).
            measured = (segment if self.noise_envelope == "total"
                        else _fast_waveform(spectrum * (1 - kept), self.transform))
            parts.append(_block_envelope(measured, self.noise_groups, self.noise_blocks))
            if self.fine_blocks:
                parts.append(_block_envelope(measured, FINE_GROUPS, self.fine_blocks)[:, -self.fine_blocks:])
        if self.envelope_blocks:
            parts.append(_step_envelope(segment, self.envelope_blocks, self.envelope_bands))
        return tf.concat(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.peaks + self.bands + self.noise_groups * self.noise_blocks + self.fine_blocks
                + self.envelope_bands * self.envelope_blocks)

    def get_config(self):
        return {**super().get_config(), "peaks": self.peaks, "bands": self.bands, "transform": self.transform,
                "envelope_blocks": self.envelope_blocks, "noise_groups": self.noise_groups,
                "noise_blocks": self.noise_blocks, "band_knee_hz": self.band_knee_hz, "fine_blocks": self.fine_blocks,
                "noise_envelope": self.noise_envelope, "envelope_bands": self.envelope_bands}


@keras.saving.register_keras_serializable(package="musicgen")
class SparseSpectrumDecoding(keras.layers.Layer):
    """(batch, 2 * peaks + bands) codes -> (batch, SEGMENT_FRAMES, 2) segments; empty bins get band noise.

    The noise is a fixed Gaussian sequence, rotated by an amount that depends on the code, so decoding is
    deterministic but neighbouring steps do not repeat the same noise four times a second. transform
    defaults to "dct" for decoders saved before the lapped transform. The code's envelope_bands x
    envelope_blocks last numbers are not used here: models.decode applies them to the cross-faded sound
    (impose_envelope); envelope_bands is 1 for decoders saved before the envelope in bands.

    With the lapped transform the rotation also depends on the peaks' values, and the rotated noise has its
    signs flipped by a second fixed sequence rotated three times as far. A steady sound keeps the same peak
    bins from step to step, so a rotation by bins alone gave every step the same noise (heard as a 4 Hz
    pattern), and a rotation alone makes a neighbour's noise a shifted copy, which after the transform is a
    modulated copy of it: on a steady chord either left the step edges smoother than the rest of the noise
    (boundary figure 0.46-0.64 instead of ~1; with the flipped signs 0.92-1.06).

    noise_envelope "total" (newer codes): the code's noise envelope is the whole sound's, and the noise fills
    what the decoded peaks leave of it in each group and block (noise._what_the_peaks_leave); its fine blocks
    shape the highs within each block as the whole sound's do (a shape of what the peaks leave put 15-20% more
    onsets into soft orchestral songs; the highs of the whole sound are mostly noise anyway). full_fill_hz:
    the noise at the full measured level above its second frequency (noise.fill_gains). cutoff_drop_db: no
    noise past a lossy source's cut-off (noise._cutoff_hertz). noise_window: its frames' (noise.noise_window).
    noise_share "step" (newer codes): the noise follows the whole sound's level, at the share of each group the
    peaks leave over the step (noise._steady_share_of_the_rest), instead of each block's own leftover ("block").
    Decoders saved before these have none of them ("residual", (), 0, "sine", "block"), and decode as they did.
    """

    def __init__(self, peaks, bands, noise_gain=NOISE_GAIN, noise_seed=0, transform="dct", envelope_blocks=0,
                 noise_groups=0, noise_blocks=0, smooth_noise=False, band_knee_hz=0.0, fine_blocks=0,
                 noise_envelope="residual", full_fill_hz=(), cutoff_drop_db=0.0, noise_window="sine", envelope_bands=1,
                 noise_share="block", **kwargs):
        super().__init__(**kwargs)
        self.envelope_bands = _check_envelope_bands(envelope_bands)
        self.fine_blocks = _check_fine_blocks(fine_blocks, noise_blocks)
        self.noise_envelope = _check_noise_envelope(noise_envelope)
        self.full_fill_hz = tuple(float(hertz) for hertz in full_fill_hz or ())
        self.cutoff_drop_db = float(cutoff_drop_db)
        self.noise_window = _check_noise_window(noise_window)
        self.noise_share = _check_noise_share(noise_share)
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
        if self.noise_groups:  # unit-power complex Gaussian numbers for the short-time noise: real, imaginary
            self.noise_table = (random.standard_normal((2, NOISE_TABLE)) / np.sqrt(2)).astype(np.float32)
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
            peaks = _fast_waveform(spectrum, self.transform)
            targets = code[:, first:grid]
            if self.noise_envelope == "total":
                # The noise fills what the peaks leave of the whole sound, group by group: over the step (newer
                # codes) or block by block. The fine blocks stay a shape: the whole sound's, within each block.
                decoded = _block_envelope(peaks, self.noise_groups, self.noise_blocks)
                targets = (_steady_share_of_the_rest(targets, decoded, self.noise_groups, self.noise_blocks)
                           if self.noise_share == "step" else _what_the_peaks_leave(targets, decoded))
            fine = code[:, grid:grid + self.fine_blocks] if self.fine_blocks else None
            noise = _short_time_noise(level, targets, turn, self.noise_table, self.noise_gain, self.noise_groups,
                                      self.noise_blocks, self.transform, self.smooth_noise, self.band_knee_hz, fine,
                                      self.full_fill_hz, self.cutoff_drop_db, self.noise_window)
            if self.transform == "lapped":  # cross-faded as they are: power-complementary in the margins
                noise *= (lapped_window() / crossfade_window())[None, :, None]
            return peaks + noise
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
                "fine_blocks": self.fine_blocks, "noise_envelope": self.noise_envelope,
                "full_fill_hz": list(self.full_fill_hz), "cutoff_drop_db": self.cutoff_drop_db,
                "noise_window": self.noise_window, "envelope_bands": self.envelope_bands,
                "noise_share": self.noise_share}


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



def sparse_format(decoder):
    """The SparseFormat of a sparse decoder, None for any other decoder (autoencode.py keeps it in the
    autoencoder's record)."""
    last = decoder.layers[-1] if decoder.layers else None
    if not isinstance(last, SparseSpectrumDecoding):
        return None
    return SparseFormat(last.transform, last.envelope_blocks, last.noise_groups, last.noise_blocks, last.fine_blocks,
                        last.envelope_bands)


def decoded_segments_are_lapped(decoder):
    """True for decoders of a lapped transform (sparse or dense): models.decode cross-fades their segments as
    they are (the energy correction, made for two estimates of the same audio, would undo the synthesis)."""
    last, code_format = (decoder.layers[-1] if decoder.layers else None), sparse_format(decoder)
    return isinstance(last, LappedSynthesis) or (code_format is not None and code_format.transform == "lapped")
