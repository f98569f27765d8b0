"""The sparse code's layout: which of a step's numbers mean what, the defaults of a new code, the frequency
bands and noise groups it measures, and what it takes to read a saved one (SparseFormat).

A sparse code describes one segment (SEGMENT_FRAMES x 2) by the largest coefficients of its spectrum and
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
    code[-envelope_bands * envelope_blocks:]  natural log of the RMS of the step's sound in each of
                                 envelope_blocks equal blocks of time, band by band (envelope_splits: below 300 Hz,
                                 0.3-1.5 kHz, 1.5-5 kHz, above; 4 x 24 blocks of 10.4 ms in new codes of 512
                                 numbers, which then have no fine blocks; 3 x 32, split at 300 Hz and 3 kHz, in
                                 those saved before; 1 x 8 of 31 ms, the whole band, in codes saved before that and
                                 in small ones; none in codes saved before the envelope)
Newer codes' band levels are log-spaced up to 4 kHz and equally wide above it (BAND_KNEE_HZ). Every setting a
saved code was made with is in its layers' config and in its autoencoder record (record_format), and a
setting a saved code lacks takes the value codes had before it, so saved models decode as they always did.
"""
import dataclasses

import numpy as np

from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_FRAMES, STEP_FRAMES

TRANSFORMS = ("trimmed-dct", "dct", "lapped")  # the first is the default (autoencode.py without --lapped)
# "trimmed-dct" leaves out the segment's outer 5 and 6 frames, where the cross-fades weigh it under 2e-5, for a
# DCT of 13770 = 2 x 3^4 x 5 x 17 frames: SEGMENT_FRAMES (13781) is prime, and SciPy's DCT of a prime length is
# a Bluestein FFT of twice that length, the inverse of 258 steps' mid and side 74-81 ms against 20-22 ms.
TRIMMED_DCT_FRAMES = 13770
LOWEST_BAND_BINS = 8  # the first band spans 0-16 Hz (lapped; dct: 0-13 Hz); band edges are log-spaced above it
LOG_LEVEL_LIMITS = (-30.0, 5.0)  # decoded levels are clipped here, so a wild predicted score stays finite


def code_layout(latent_dim, envelope_blocks=0, noise_groups=0, noise_blocks=0, fine_blocks=0, envelope_bands=1):
    """(peaks, bands) for a code of latent_dim (>= envelope_bands * envelope_blocks + noise_groups * noise_blocks
    + fine_blocks + 3) numbers: after the envelope and the noise envelope, about an eighth of the rest for band
    levels."""
    rest = latent_dim - envelope_bands * envelope_blocks - noise_groups * noise_blocks - fine_blocks
    peaks = (rest - max(1, round(rest / 8))) // 2
    return peaks, rest - 2 * peaks


DEFAULT_ENVELOPE_BLOCKS = 8  # 31 ms each, over the whole band: codes without a noise envelope (small ones)

# Codes with a noise envelope (512 numbers) have the envelope in bands (envelope_splits) instead of one band of
# 8 blocks and the 16 fine blocks of the highs. The round trip halved every song's attacks: a bass note's attack
# smeared 20-30 ms early under a louder tone, a hit's highs spread over its step. The original's level put back
# every 8 ms over the whole band gave the attacks nothing (attack strength 0.53 -> 0.57 on a soft orchestral
# song); in 3 bands (300 Hz, 3 kHz) x 32 blocks, 0.53 -> 0.76, and 0.54 / 0.58 -> 0.65 / 0.72 on 8 orchestral /
# 4 beat-driven held-out songs, for 0.5-0.8 dB of SI-SDR. 4 bands x 24 blocks, the same 96 numbers, split at
# 1.5 and 5 kHz as well: 1-4 kHz no longer 2-3.7 dB short on the songs whose 0.3-3 kHz band was ruled by its
# lows, and the pulse up on the beat-driven songs (12 held-out songs: worst band -3.7 -> -2.1 dB, worst pulse
# 0.72x -> 0.83x of the original's; docs/codec.md).
BAND_ENVELOPE_BANDS = 4
BAND_ENVELOPE_NUMBERS = 96  # blocks x bands: 4 x 24 (10.4 ms), 3 x 32 (7.8 ms), or 5 x 19 (13.1 ms)
# By the number of bands. 5 (autoencode.py --envelope-bands 5) splits the highs at 10 kHz as well: fewer onsets
# added to soft, sustained music and more pulse on drums, less on one orchestral song (docs/codec.md).
ENVELOPE_SPLITS_HZ = {3: (300.0, 3000.0), 4: (300.0, 1500.0, 5000.0), 5: (300.0, 1500.0, 5000.0, 10000.0)}


def envelope_splits(envelope_bands):
    """The frequencies (Hz) an envelope of envelope_bands bands is split at: () for one band."""
    return () if envelope_bands == 1 else ENVELOPE_SPLITS_HZ[envelope_bands]


def default_envelope_blocks(latent_dim, envelope_bands=1):
    """Envelope blocks (in each band) of a new sparse code (autoencode.py): BAND_ENVELOPE_NUMBERS over the bands,
    DEFAULT_ENVELOPE_BLOCKS in one, or latent_dim // 8 if fewer (tiny test codes)."""
    if envelope_bands > 1:
        return BAND_ENVELOPE_NUMBERS // envelope_bands
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


def default_noise_groups(latent_dim, noise_blocks=DEFAULT_NOISE_BLOCKS):
    """Noise envelope groups of a new sparse code (autoencode.py): DEFAULT_NOISE_GROUPS where their numbers and
    the fine shape's take at most an eighth of the code, else none (tiny test codes keep the layout they had)."""
    fits = DEFAULT_NOISE_GROUPS * noise_blocks + DEFAULT_FINE_BLOCKS <= latent_dim // 8
    return DEFAULT_NOISE_GROUPS if fits else 0


def default_fine_blocks(noise_groups, noise_blocks, envelope_bands=1):
    """Blocks of the fine shape of the highs (DEFAULT_FINE_BLOCKS) for a new code with a noise envelope and a
    one-band envelope, where they split its blocks evenly and are finer; else 0 (an envelope in bands shapes the
    highs itself)."""
    fits = noise_groups and 0 < noise_blocks < DEFAULT_FINE_BLOCKS and DEFAULT_FINE_BLOCKS % noise_blocks == 0
    return DEFAULT_FINE_BLOCKS if fits and envelope_bands == 1 else 0


def new_code_settings(latent_dim, envelope_blocks=None, noise_groups=None, noise_blocks=None, envelope_bands=None):
    """(envelope_blocks, noise_groups, noise_blocks, fine_blocks, envelope_bands) of a new sparse code of
    latent_dim numbers: each None its default (autoencode.py builds with these and checks its flags against
    them). The envelope is in BAND_ENVELOPE_BANDS bands where the code has the default noise envelope's room."""
    noise_blocks = DEFAULT_NOISE_BLOCKS if noise_blocks is None else noise_blocks
    noise_groups = default_noise_groups(latent_dim, noise_blocks) if noise_groups is None else noise_groups
    if envelope_bands is None:  # where the default noise envelope fits (512 numbers and more)
        envelope_bands = BAND_ENVELOPE_BANDS if noise_groups > 0 and default_noise_groups(latent_dim) else 1
    if envelope_blocks is None:
        envelope_blocks = default_envelope_blocks(latent_dim, envelope_bands)
    fine_blocks = default_fine_blocks(max(noise_groups, 0), noise_blocks, envelope_bands)
    return envelope_blocks, noise_groups, noise_blocks, fine_blocks, envelope_bands


@dataclasses.dataclass(frozen=True)
class SparseFormat:
    """What it takes to read a sparse code besides its size: its transform and its envelope blocks."""
    transform: str = "dct"
    envelope_blocks: int = 0
    noise_groups: int = 0
    noise_blocks: int = 0
    fine_blocks: int = 0
    envelope_bands: int = 1

    def layout(self, latent_dim):
        """(peaks, bands) of a code of latent_dim numbers in this format."""
        return code_layout(latent_dim, self.envelope_blocks, self.noise_groups, self.noise_blocks, self.fine_blocks,
                           self.envelope_bands)


def as_sparse_format(code_format):
    """A SparseFormat from a SparseFormat or a transform name (codes without an envelope)."""
    return code_format if isinstance(code_format, SparseFormat) else SparseFormat(code_format)


def bins_per_channel(transform):
    """Coefficients of the mid (and of the side) spectrum: 11025 for "lapped", 13781 for "dct", 13770 for
    "trimmed-dct"."""
    return {"lapped": STEP_FRAMES, "dct": SEGMENT_FRAMES, "trimmed-dct": TRIMMED_DCT_FRAMES}[transform]


def spectrum_bins(transform):
    """Bins of a whole spectrum, mid and side end to end: 22050 for "lapped", 27562 for "dct", 27540 for
    "trimmed-dct"."""
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


def record_format(autoencoder):
    """The SparseFormat an autoencoder record describes: records from before the lapped transform name no
    transform and were made with "dct", those from before the envelope have none."""
    return SparseFormat(autoencoder.get("sparse_transform") or "dct", int(autoencoder.get("envelope_blocks") or 0),
                        int(autoencoder.get("noise_groups") or 0), int(autoencoder.get("noise_blocks") or 0),
                        int(autoencoder.get("noise_fine_blocks") or 0), int(autoencoder.get("envelope_bands") or 1))


def noise_group_of_hertz(hertz, groups):
    """Group number of each frequency (Hz) in the noise envelope: log-spaced edges between 250 Hz and 8 kHz
    (2 groups: split at 1.4 kHz; 3: at 790 Hz and 2.5 kHz)."""
    edges = np.geomspace(250.0, 8000.0, groups + 1)[1:-1]
    return np.searchsorted(edges, np.asarray(hertz), side="right").astype(np.int32)




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



def _check_envelope_bands(envelope_bands):
    if envelope_bands != 1 and envelope_bands not in ENVELOPE_SPLITS_HZ:
        raise ValueError(f"envelope_bands must be 1 or one of {sorted(ENVELOPE_SPLITS_HZ)}, not {envelope_bands}")
    return int(envelope_bands)


def _check_fine_blocks(fine_blocks, noise_blocks):
    if fine_blocks and (not noise_blocks or fine_blocks % int(noise_blocks)):
        raise ValueError(f"fine_blocks {fine_blocks} must split noise_blocks {noise_blocks} evenly")
    return int(fine_blocks)


def _check_noise_envelope(noise_envelope):
    if noise_envelope not in ("residual", "total"):
        raise ValueError(f"unknown noise envelope {noise_envelope!r}: residual or total")
    return noise_envelope


def _check_noise_share(noise_share):
    if noise_share not in ("block", "step"):
        raise ValueError(f"unknown noise share {noise_share!r}: block or step")
    return noise_share


def _check_noise_window(window):
    if window not in ("sine", "vorbis"):
        raise ValueError(f"unknown noise window {window!r}: sine or vorbis")
    return window


def _check_transform(transform):
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown sparse-code transform {transform!r}: one of {', '.join(TRANSFORMS)}")
    return transform
