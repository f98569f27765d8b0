"""The sparse spectral code of autoencode.py --arch sparse (the default), and the custom layers every saved
autoencoder needs to load. Importing common.codec registers them (common/models.py does), so loading an encoder
or decoder in safe mode needs no extra code.

One concern per file (docs/codec.md says why each is built the way it is, with the figures that chose it):
    layout.py      which of a step's numbers mean what; a new code's defaults; bands and noise groups;
                   SparseFormat (what it takes to read a saved code) and scale_codes
    transforms.py  the spectra (DCT of the segment, or the lapped transform) and the song-wide fold / unfold
    envelope.py    the step's loudness envelope (in 4 bands in new codes): measured by the encoder, put back by
                   models.decode
    noise.py       the decoder's noise fill: band levels, noise envelope, short-time noise synthesis
    layers.py      the Keras layers (registered as musicgen>name) and what models.py asks of a saved codec
"""
from common.codec.envelope import (
    MAX_ENVELOPE_GAIN,
    MIN_ENVELOPE_GAIN,
    envelope_block_edges,
    impose_envelope,
)
from common.codec.layers import (
    LappedAnalysis,
    LappedSynthesis,
    SparseSpectrumDecoding,
    SparseSpectrumEncoding,
    after_lapped_analysis,
    before_lapped_synthesis,
    decoded_segments_are_lapped,
    sparse_format,
)
from common.codec.layout import (
    BAND_KNEE_HZ,
    DEFAULT_FINE_BLOCKS,
    DEFAULT_NOISE_BLOCKS,
    DEFAULT_NOISE_GROUPS,
    TRANSFORMS,
    SparseFormat,
    as_sparse_format,
    band_of_each_bin,
    code_layout,
    new_code_settings,
    noise_group_of_hertz,
    record_format,
    scale_codes,
    spectrum_bins,
)
from common.codec.noise import CUTOFF_DROP_DB, FULL_FILL_HZ, NOISE_GAIN
from common.codec.transforms import fold_steps, keep_largest_coefficients, steps_from_folded

__all__ = [
    "BAND_KNEE_HZ", "CUTOFF_DROP_DB", "FULL_FILL_HZ", "DEFAULT_FINE_BLOCKS", "DEFAULT_NOISE_BLOCKS",
    "DEFAULT_NOISE_GROUPS", "MAX_ENVELOPE_GAIN", "MIN_ENVELOPE_GAIN", "NOISE_GAIN", "LappedAnalysis",
    "LappedSynthesis", "SparseFormat", "SparseSpectrumDecoding", "SparseSpectrumEncoding", "TRANSFORMS",
    "after_lapped_analysis", "as_sparse_format", "band_of_each_bin", "before_lapped_synthesis", "code_layout",
    "decoded_segments_are_lapped", "envelope_block_edges", "fold_steps", "impose_envelope", "keep_largest_coefficients",
    "new_code_settings", "noise_group_of_hertz", "record_format", "scale_codes", "sparse_format", "spectrum_bins",
    "steps_from_folded",
]
