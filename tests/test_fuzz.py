"""Fuzzing the audio loader: whatever bytes or samples come in, the pipeline gets clean audio or an AudioError.

Clean audio is float32 (frames, 2) at 44.1 kHz, finite, with peak <= 1.0. Anything else (a crash, another
exception, NaN, a sample above full scale) is a bug. The examples are the same on every run so the suite stays
reproducible; for a longer, random search run e.g. `FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py`.
"""
import io
import os

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from common import audio
from common.errors import AudioError
from tests.conftest import synth_song

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 150))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.too_slow])

DTYPES = ("int8", "int16", "int32", "uint8", "float32", "float64")
# (format, subtype) soundfile writes losslessly for each dtype (WAV has no signed 8-bit PCM, AIFF has).
LOSSLESS = {"int8": ("AIFF", "PCM_S8"), "int16": ("WAV", "PCM_16"), "int32": ("WAV", "PCM_32"),
            "uint8": ("WAV", "PCM_U8"), "float32": ("WAV", "FLOAT"), "float64": ("WAV", "DOUBLE")}
COMMON_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000)


def assert_clean(result, input_frames=None, input_rate=None):
    assert result.dtype == np.float32 and result.ndim == 2 and result.shape[1] == 2 and len(result) > 0
    assert np.isfinite(result).all() and np.abs(result).max() <= 1.0
    if input_frames is not None:  # resampled to 44.1 kHz: the same duration, give or take one input frame
        expected = input_frames * audio.SAMPLE_RATE / input_rate  # (AIFF pads odd 8-bit data with a frame)
        assert abs(len(result) - expected) <= 2 + audio.SAMPLE_RATE / input_rate + 1e-3 * expected


def small_encoded_songs():
    """A short valid file in each format soundfile writes, as bytes, to mutate."""
    song = synth_song(0.3, rate=22050, seed=3)
    encoded = {}
    for extension, format, subtype in (("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
                                       ("mp3", "MP3", "MPEG_LAYER_III"), ("aiff", "AIFF", "PCM_24"),
                                       ("au", "AU", "FLOAT"), ("caf", "CAF", "ALAC_16")):
        buffer = io.BytesIO()
        soundfile.write(buffer, song, 22050, format=format, subtype=subtype)
        encoded[extension] = buffer.getvalue()
    return encoded


SONGS = small_encoded_songs()


@st.composite
def mutated_songs(draw):
    """(extension, bytes): a valid file cut short, with bytes overwritten, or with random bytes inserted."""
    extension = draw(st.sampled_from(sorted(SONGS)))
    data = bytearray(SONGS[extension])
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        mutation = draw(st.sampled_from(("overwrite", "overwrite-header", "cut", "insert")))
        if mutation == "overwrite":
            data[position] = draw(st.integers(0, 255))
        elif mutation == "overwrite-header":  # headers decide sizes, rates and channel counts
            data[position % 64] = draw(st.integers(0, 255))
        elif mutation == "cut":
            data = data[: max(1, position)]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
    return extension, bytes(data)


def load_bytes(folder, name, data):
    """load_audio of a file holding data: the audio, or None after an AudioError that names the file."""
    path = folder / name
    path.write_bytes(data)
    try:
        result = audio.load_audio(path)
    except AudioError as error:
        assert str(error).startswith(f"{name}: ")
        result = None
    finally:
        path.unlink()
    event("AudioError" if result is None else "decoded")  # --hypothesis-show-statistics: how often each came up
    return result


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(extension=st.sampled_from(audio.AUDIO_EXTENSIONS), data=st.binary(max_size=3000))
def test_random_bytes_are_clean_audio_or_audio_error(folder, extension, data):
    result = load_bytes(folder, f"random{extension}", data)
    if result is not None:
        assert_clean(result)


@FUZZ
@given(song=mutated_songs())
def test_damaged_files_are_clean_audio_or_audio_error(folder, song):
    extension, data = song
    result = load_bytes(folder, f"damaged.{extension}", data)
    if result is not None:
        assert_clean(result)


@st.composite
def sample_arrays(draw, allow_non_finite=True):
    """Random (frames, channels) arrays of every sample type, sometimes with NaN / infinity / huge floats."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = st.tuples(st.integers(1, 600), st.integers(1, 8))
    if dtype.kind == "f":
        non_finite = allow_non_finite and draw(st.booleans())
        elements = st.floats(allow_nan=non_finite, allow_infinity=non_finite, width=dtype.itemsize * 8)
        return draw(hnp.arrays(dtype, shape, elements=elements | st.floats(-1, 1, width=dtype.itemsize * 8)))
    return draw(hnp.arrays(dtype, shape))


@FUZZ
@given(samples=sample_arrays(), rate=st.sampled_from(COMMON_RATES) | st.integers(-10, 10**6)
       | st.floats(allow_nan=True, allow_infinity=True))
def test_any_samples_and_rate_are_clean_audio_or_audio_error(samples, rate):
    try:
        result = audio.prepare_audio(samples, rate, name="fuzz")
    except AudioError as error:
        assert str(error).startswith("fuzz: ")
        return
    assert_clean(result, len(samples), rate)


def writable(samples):
    """soundfile writes 16/32-bit integers and floats: 8-bit samples go in as the top byte of 16-bit ones."""
    if samples.dtype == np.int8:
        return samples.astype(np.int16) << 8
    if samples.dtype == np.uint8:
        return (samples.astype(np.int16) - 128) << 8
    return samples


@FUZZ
@given(samples=sample_arrays(allow_non_finite=False), rate=st.sampled_from(COMMON_RATES) | st.integers(1000, 200000))
def test_finite_samples_written_losslessly_always_load(folder, samples, rate):
    """Every finite signal at a supported rate, in any sample type and channel count, must load."""
    format, subtype = LOSSLESS[samples.dtype.name]
    path = folder / f"written.{format.lower()}"
    soundfile.write(str(path), writable(samples), rate, format=format, subtype=subtype)
    assert_clean(audio.load_audio(path), len(samples), rate)
