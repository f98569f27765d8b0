"""common/audio.py: loading every format, resampling, channel mixing, framing and cross-fading."""
import numpy as np
import pytest
import soundfile

from common import audio, crossfade
from common.errors import AudioError
from tests.conftest import synth_song, write_song


def dominant_frequency(samples, rate=audio.SAMPLE_RATE):
    spectrum = np.abs(np.fft.rfft(samples[:, 0] * np.hanning(len(samples))))
    return np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)]


def test_frame_steps_round_trip_is_exact():
    song = synth_song(3.1)
    steps = audio.frame_steps(song)
    assert steps.shape == (12, audio.STEP_FRAMES, audio.CHANNELS)
    assert np.array_equal(audio.unframe_steps(steps), song[: 12 * audio.STEP_FRAMES])


def test_segments_overlap_add_round_trip():
    steps = audio.frame_steps(synth_song(3.0))
    segments = audio.segments_from_steps(steps)
    assert segments.shape == (12, audio.SEGMENT_FRAMES, audio.CHANNELS)
    # Each segment is its step with SEGMENT_MARGIN frames of each neighbour.
    assert np.array_equal(segments[5, audio.SEGMENT_MARGIN:-audio.SEGMENT_MARGIN], steps[5])
    assert np.array_equal(segments[5, :audio.SEGMENT_MARGIN], steps[4, -audio.SEGMENT_MARGIN:])
    np.testing.assert_allclose(crossfade.overlap_add(segments), audio.unframe_steps(steps), atol=1e-6)


def test_crossfade_windows_sum_to_one_where_they_overlap():
    window = crossfade.crossfade_window()
    overlap = window[audio.STEP_FRAMES:] + window[:audio.CROSSFADE_FRAMES]
    np.testing.assert_allclose(overlap, 1.0, atol=1e-6)
    assert window[audio.CROSSFADE_FRAMES:audio.STEP_FRAMES].min() == 1.0


def test_overlap_add_hides_a_jump_between_steps():
    """Segments whose content jumps between steps decode without a step at the boundary."""
    segments = np.concatenate([np.full((1, audio.SEGMENT_FRAMES, 2), 0.5), np.full((1, audio.SEGMENT_FRAMES, 2), -0.5)])
    out = crossfade.overlap_add(segments.astype(np.float32))
    # A plain sin^2 cross-fade from 0.5 to -0.5 changes by at most pi/2 / CROSSFADE_FRAMES per frame; the
    # energy-keeping gain (at most sqrt(2)) steepens it to 2.22 / CROSSFADE_FRAMES. A click would be ~1.0.
    assert np.abs(np.diff(out[:, 0])).max() < 3.0 / audio.CROSSFADE_FRAMES
    assert out[0, 0] == pytest.approx(0.5) and out[-1, 0] == pytest.approx(-0.5)


def test_cross_fading_independent_estimates_keeps_their_energy():
    """Two decoders disagreeing (independent noise) must not leave a dip in energy mid-way through the fade."""
    rng = np.random.default_rng(0)
    segments = (0.1 * rng.standard_normal((400, audio.SEGMENT_FRAMES, 2))).astype(np.float32)
    out = crossfade.overlap_add(segments)
    energy = np.mean(np.square(audio.frame_steps(out)), axis=(0, 2))  # (STEP_FRAMES,) mean over steps
    middle_of_fade = np.concatenate([energy[-200:], energy[:200]]).mean()
    assert middle_of_fade / energy[4000:7000].mean() == pytest.approx(1.0, abs=0.06)  # a plain fade gives 0.5


def test_cross_fades_restore_only_the_bands_where_the_estimates_disagree():
    """A 220 Hz tone both segments agree on passes unchanged; independent noise above 5 kHz keeps its energy."""
    rng = np.random.default_rng(1)
    count = 120
    song_tone = np.repeat(0.3 * np.sin(2 * np.pi * 220 * np.arange(count * audio.STEP_FRAMES) / audio.SAMPLE_RATE)
                          [:, None], 2, axis=1)
    tone = audio.segments_from_steps(audio.frame_steps(song_tone))
    spectrum = np.fft.rfft(rng.standard_normal((count, audio.SEGMENT_FRAMES, 2)), axis=1)
    spectrum[:, np.fft.rfftfreq(audio.SEGMENT_FRAMES, 1 / audio.SAMPLE_RATE) < 5000] = 0
    noise = 0.05 * np.fft.irfft(spectrum, audio.SEGMENT_FRAMES, axis=1)
    out = crossfade.overlap_add((tone + noise).astype(np.float32))
    low = np.fft.rfftfreq(len(out), 1 / audio.SAMPLE_RATE) < 1000
    out_spectrum = np.fft.rfft(out, axis=0)
    tone_part = np.fft.irfft(np.where(low[:, None], out_spectrum, 0), len(out), axis=0)
    noise_part = np.fft.irfft(np.where(low[:, None], 0, out_spectrum), len(out), axis=0)
    inner = slice(audio.STEP_FRAMES, -audio.STEP_FRAMES)  # away from the song's two ends
    np.testing.assert_allclose(tone_part[inner], song_tone[inner], atol=0.01 * 0.3)
    energy = np.mean(np.square(audio.frame_steps(noise_part)[1:-1]), axis=(0, 2))
    middle_of_fade = np.concatenate([energy[-200:], energy[:200]]).mean()
    assert middle_of_fade / energy[4000:7000].mean() == pytest.approx(1.0, abs=0.08)  # a plain fade gives 0.5


@pytest.mark.parametrize("rate", [8000, 22050, 48000, 96000])
def test_resampling_keeps_a_sines_frequency(tmp_path, rate):
    seconds = 1.0
    time = np.arange(int(seconds * rate)) / rate
    soundfile.write(str(tmp_path / "sine.wav"), 0.5 * np.sin(2 * np.pi * 1000 * time), rate)
    loaded = audio.load_audio(tmp_path / "sine.wav")
    assert abs(len(loaded) - audio.SAMPLE_RATE * seconds) <= 2
    assert abs(dominant_frequency(loaded) - 1000) < 2


@pytest.mark.parametrize("name, subtype, fmt, tolerance", [
    ("u8.wav", "PCM_U8", "WAV", 2e-2),
    ("s16.wav", "PCM_16", "WAV", 1e-3),
    ("s24.wav", "PCM_24", "WAV", 1e-4),
    ("s32.wav", "PCM_32", "WAV", 1e-4),
    ("float.wav", "FLOAT", "WAV", 1e-6),
    ("song.flac", "PCM_16", "FLAC", 1e-3),
    ("song.aiff", "PCM_16", "AIFF", 1e-3),
    ("song.ogg", "VORBIS", "OGG", None),
    ("song.mp3", "MPEG_LAYER_III", "MP3", None),
])
def test_every_input_format_becomes_float32_stereo_44k(tmp_path, name, subtype, fmt, tolerance):
    original = write_song(tmp_path / name, seconds=1.0, subtype=subtype, format=fmt)
    loaded = audio.load_audio(tmp_path / name)
    assert loaded.dtype == np.float32 and loaded.shape[1] == 2
    if tolerance is not None:  # lossless: sample-exact up to quantisation
        assert loaded.shape == original.shape
        np.testing.assert_allclose(loaded, original, atol=tolerance)
    else:  # lossy codecs: same length within a frame block, same content
        assert abs(len(loaded) - len(original)) < 4096
        assert abs(dominant_frequency(loaded) - dominant_frequency(original)) < 5


def test_every_format_soundfile_names_gives_its_extensions():
    extensions = audio.readable_extensions(["WAV", "OGG", "AIFF", "VOC", "RAW"])
    assert {".opus", ".oga", ".ogg", ".aif", ".aiff", ".voc", ".mp3", ".flac"} <= set(extensions)
    assert ".raw" not in extensions  # header-less: libsndfile cannot open it without being told its layout
    # This machine's soundfile: Opus (an OGG codec), MP3 and its other formats are all listed.
    assert {".opus", ".mp3", ".flac", ".caf", ".voc"} <= set(audio.AUDIO_EXTENSIONS)


def test_mono_is_duplicated_and_six_channels_are_mixed(tmp_path):
    write_song(tmp_path / "mono.wav", channels=1)
    mono = audio.load_audio(tmp_path / "mono.wav")
    assert np.array_equal(mono[:, 0], mono[:, 1])
    surround = np.zeros((4410, 6), np.float32)
    surround[:, 0] = 0.5  # front left only
    stereo = audio.prepare_audio(surround, 44100)
    assert stereo[:, 0].min() > 0.1 and np.abs(stereo[:, 1]).max() == 0


def test_non_finite_samples_are_refused_and_loud_ones_scaled(tmp_path):
    song = synth_song(0.5)
    song[100, 0] = np.nan
    soundfile.write(str(tmp_path / "nan.wav"), song, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        audio.load_audio(tmp_path / "nan.wav")
    loud = synth_song(0.5) * 3
    soundfile.write(str(tmp_path / "loud.wav"), loud, 44100, subtype="FLOAT")
    loaded = audio.load_audio(tmp_path / "loud.wav")
    assert np.abs(loaded).max() == pytest.approx(1.0)
    np.testing.assert_allclose(loaded, loud / np.abs(loud).max(), atol=1e-6)


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10])
def test_unreadable_files_raise_audio_error(tmp_path, content):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(AudioError, match="bad.wav"):
        audio.load_audio(tmp_path / "bad.wav")


def test_limiter_keeps_peaks_under_the_ceiling_and_leaves_quiet_parts_alone():
    time = np.arange(44100) / 44100
    loud = (np.sin(2 * np.pi * 220 * time) * np.linspace(0.2, 1.6, len(time)))[:, None].repeat(2, 1)
    limited = audio.limit_peaks(loud.astype(np.float32), ceiling=0.99)
    assert np.abs(limited).max() <= 0.99 + 1e-6
    np.testing.assert_array_equal(limited[:10000], loud[:10000].astype(np.float32))
    # Not hard clipping: the limited waveform keeps its sine shape (no flat tops).
    flat_top = np.mean(np.isclose(np.abs(limited[-5000:, 0]), 0.99, atol=1e-4))
    assert flat_top < 0.01


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_frame_peaks_are_each_frames_largest_magnitude_over_its_channels(channels):
    samples = np.random.default_rng(channels).standard_normal((500, channels)).astype(np.float32)
    np.testing.assert_array_equal(audio.frame_peaks(samples), np.abs(samples).max(axis=1))
    assert audio.frame_peaks(samples[:0]).shape == (0,)
