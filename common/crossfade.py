"""How decoded segments join into a song: cross-fades over the margin each segment shares with its neighbours.

Two independently decoded segments are not coherent, so a plain cross-fade would dip in energy where they
disagree: overlap_add corrects each cross-fade's energy in CROSSFADE_BANDS log-spaced bands with two fitted
gain shapes (keep_energy_through_crossfades). Parts of a lapped transform's synthesis overlap as they are.
"""
import functools

import numpy as np
import scipy.fft

from common.audio import CROSSFADE_FRAMES, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_MARGIN, STEP_FRAMES

# Cross-fades keep the energy of the two segments in this many log-spaced bands (see overlap_add).
CROSSFADE_BANDS = 12
CROSSFADE_BAND_RANGE_HZ = (100.0, 16000.0)  # centres of the lowest and the highest band
CROSSFADE_GAIN_KNOTS = 33  # points of each cross-fade where the gains are worked out (and fitted)
CROSSFADE_CHUNK = 32  # cross-fades mixed and corrected together (see overlap_add)
# Cross-fades are zero-padded to this length for their FFTs: 2756 = 4 x 13 x 53 is 3x slower to transform.
CROSSFADE_FFT_LENGTH = 3072


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


def overlap_add(segments, keep_energy=True):
    """(num_steps, SEGMENT_FRAMES, 2) -> (num_steps * STEP_FRAMES, 2): cross-fade neighbouring segments.

    Inverse of segments_from_steps for consistent segments; for decoded ones it hides step boundaries.
    keep_energy: correct each cross-fade's energy band by band (keep_energy_through_crossfades), for segments
    that are two estimates of the same audio; False for parts of a lapped transform's synthesis.
    """
    num_steps, _, channels = segments.shape
    if num_steps == 0:
        return np.zeros((0, channels), np.float32)
    rise = crossfade_window()[:CROSSFADE_FRAMES, None]
    # The song laid out as num_steps x (head | middle) and the last segment's tail: each head is shared by a
    # segment and the one before (cross-faded), the window is 1 over each middle. The song's first head and
    # last tail have one segment only, so they are taken as they are.
    joined = np.empty((num_steps * STEP_FRAMES + CROSSFADE_FRAMES, channels), np.float32)
    laid_out = joined[:num_steps * STEP_FRAMES].reshape(num_steps, STEP_FRAMES, channels)
    laid_out[:, CROSSFADE_FRAMES:] = segments[:, CROSSFADE_FRAMES:STEP_FRAMES]
    laid_out[0, :CROSSFADE_FRAMES] = segments[0, :CROSSFADE_FRAMES]
    # A few dozen cross-fades at a time: their spectra and gains (~3 MB) stay in the CPU's cache, 1.6x faster
    # than a whole decode batch at once.
    for first in range(1, num_steps, CROSSFADE_CHUNK):
        last = min(first + CROSSFADE_CHUNK, num_steps)
        outgoing, incoming = segments[first - 1:last - 1, STEP_FRAMES:], segments[first:last, :CROSSFADE_FRAMES]
        mixed = incoming * rise + outgoing * rise[::-1]
        laid_out[first:last, :CROSSFADE_FRAMES] = (keep_energy_through_crossfades(outgoing, incoming, mixed)
                                                   if keep_energy else mixed)
    joined[num_steps * STEP_FRAMES:] = segments[-1, STEP_FRAMES:]
    return joined[SEGMENT_MARGIN:SEGMENT_MARGIN + num_steps * STEP_FRAMES]


def crossfade_band_masks(bands=CROSSFADE_BANDS):
    """(bands, CROSSFADE_FFT_LENGTH // 2 + 1) smooth masks over the rfft bins of a cross-fade; they sum to 1."""
    frequencies = np.fft.rfftfreq(CROSSFADE_FFT_LENGTH, 1 / SAMPLE_RATE)
    centres = np.log(np.geomspace(*CROSSFADE_BAND_RANGE_HZ, bands))
    position = np.interp(np.log(np.maximum(frequencies, 1.0)), centres, np.arange(bands))  # fractional band
    lower, fraction = np.floor(position).astype(int), position - np.floor(position)
    masks = np.zeros((bands, len(frequencies)))
    masks[lower, np.arange(len(frequencies))] = np.cos(0.5 * np.pi * fraction) ** 2
    upper = np.minimum(lower + 1, bands - 1)
    masks[upper, np.arange(len(frequencies))] += np.sin(0.5 * np.pi * fraction) ** 2
    return masks.astype(np.float32)


def keep_energy_through_crossfades(outgoing, incoming, mixed):
    """Per band, scale each cross-fade (num, CROSSFADE_FRAMES, 2) back to the energy of the two segments.

    Two decoded segments are two estimates of the same audio; where they disagree (typically the high
    frequencies of a lossy code), their cross-faded sum has up to half their energy mid-way, a dip heard as
    a 4 Hz flutter. With energies Ea, Eb and correlation r of the two in a band, and cross-fade weights fa,
    fb = 1 - fa, the sum's energy is fa^2 Ea + fb^2 Eb + 2 fa fb r sqrt(Ea Eb); the band is scaled to
    fa Ea + fb Eb (the correlation-compensated cross-fade). Where the two agree (r = 1) the gain is exactly 1,
    so consistent segments still overlap-add to the original.
    """
    if len(mixed) == 0:
        return mixed
    masks, fade_in, fit_to_shapes, frame_shapes = _crossfade_correction_constants()
    padded = np.zeros((len(mixed), mixed.shape[2], CROSSFADE_FFT_LENGTH), np.float32)

    def spectrum(part):  # (num, frames, 2) -> (num, 2, bins)
        # Channels first, so that per-band sums below are each one large matrix product; copied into one
        # zero-padded buffer (2.7x faster than letting scipy pad a transposed copy). scipy.fft keeps float32
        # as complex64 (numpy's works in complex128) and uses both cores: 3x faster than numpy here.
        padded[..., :CROSSFADE_FRAMES] = part.transpose(0, 2, 1)
        return scipy.fft.rfft(padded, axis=-1, workers=-1)

    out_spectrum, in_spectrum, mixed_spectrum = spectrum(outgoing), spectrum(incoming), spectrum(mixed)

    # (num, 2, bins) -> (num, 2, bands)
    energy_out = _times_on_last_axis(out_spectrum.real ** 2 + out_spectrum.imag ** 2, masks.T)
    energy_in = _times_on_last_axis(in_spectrum.real ** 2 + in_spectrum.imag ** 2, masks.T)
    cross = _times_on_last_axis(out_spectrum.real * in_spectrum.real + out_spectrum.imag * in_spectrum.imag, masks.T)
    shared = np.clip(cross, 0.0, np.sqrt(energy_out * energy_in))  # r * sqrt(Ea Eb) with r clipped to [0, 1]
    # The gains are smooth in time: work them out at a few knots.
    fade_out = 1.0 - fade_in  # (knots,)
    wanted = fade_out * energy_out[..., None] + fade_in * energy_in[..., None]  # (num, 2, bands, knots)
    got = (fade_out ** 2 * energy_out[..., None] + fade_in ** 2 * energy_in[..., None]
           + 2 * fade_out * fade_in * shared[..., None])
    gain = np.sqrt((wanted + 1e-20) / (got + 1e-20))  # in [1, sqrt(2)]; 1 for silence
    # Each band's gain curve is fitted by two shapes over the fade (least squares at the knots): then the
    # correction is two filters of the whole cross-fade, each scaling every band by its own amount, times a
    # shape: 2 inverse FFTs instead of one per band (3x faster), 0.5% of the correction's energy off the
    # exact per-band curves on real music.
    amounts = (gain - 1) @ fit_to_shapes  # (num, 2, bands, shapes)
    corrected = mixed.copy()
    for shape, frame_shape in enumerate(frame_shapes):
        response = _times_on_last_axis(amounts[..., shape].astype(np.float32), masks)  # (num, 2, bins)
        part = scipy.fft.irfft(response * mixed_spectrum, n=CROSSFADE_FFT_LENGTH, axis=-1,
                               workers=-1)[..., :CROSSFADE_FRAMES]
        corrected += (part * frame_shape).transpose(0, 2, 1)
    return corrected


def gain_curve_shapes(fade_in):
    """(2, len(fade_in)) shapes the cross-fade gain curves are fitted with: the curve of two independent
    segments of equal energy (the largest correction; 0 where either segment is alone), and its
    antisymmetric twin for segments of unequal energy."""
    fade_out = 1 - fade_in
    independent = 1 / np.sqrt(fade_in ** 2 + fade_out ** 2) - 1
    independent = independent / independent.max()
    return np.stack([independent, independent * (fade_in - fade_out)])


@functools.lru_cache(maxsize=1)
def _crossfade_correction_constants():
    """What every cross-fade's energy correction shares, worked out once (overlap_add corrects 32 at a time):
    band masks (bands, bins), the fade-in at the knots (knots,), the least-squares fit of a curve at the knots
    to the gain shapes (knots, shapes), and the shapes over every frame (shapes, frames), all read-only."""
    knots = np.linspace(0, CROSSFADE_FRAMES - 1, CROSSFADE_GAIN_KNOTS)
    fade_in = np.interp(knots, np.arange(CROSSFADE_FRAMES), crossfade_window()[:CROSSFADE_FRAMES])
    constants = (crossfade_band_masks(), fade_in, np.linalg.pinv(gain_curve_shapes(fade_in)),
                 gain_curve_shapes(crossfade_window()[:CROSSFADE_FRAMES]).astype(np.float32))
    for array in constants:
        array.setflags(write=False)
    return constants


def _times_on_last_axis(array, matrix):
    """(..., n) @ (n, m) -> (..., m) as one 2-D product (numpy's stacked ones crawl)."""
    return (array.reshape(-1, array.shape[-1]) @ matrix).reshape(*array.shape[:-1], matrix.shape[1])
