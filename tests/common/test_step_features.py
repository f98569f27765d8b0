"""What a step sounds like (common/step_features.py): notes, envelope, loudness, seams and the beat period."""
import numpy as np
import pytest

from common import step_features
from common.audio import SAMPLE_RATE, STEP_FRAMES

TIME = np.arange(STEP_FRAMES) / SAMPLE_RATE


def tone_step(midi_notes, amplitude=0.3):
    """One stereo step of harmonic tones (3 partials each) at the given MIDI notes."""
    mono = sum(amplitude / (k + 1) * np.sin(2 * np.pi * 440 * 2 ** ((note - 69) / 12) * (k + 1) * TIME)
               for note in midi_notes for k in range(3))
    return np.stack([mono, mono], axis=1).astype(np.float32)


def test_chroma_names_the_notes_played():
    a_minor, c_major = step_features.step_features(np.stack([tone_step([57, 60, 64]), tone_step([48, 52, 55])]))
    chroma = slice(step_features.MEL_BANDS, step_features.MEL_BANDS + 12)
    # Pitch classes from C = 0: A minor is A, C, E (9, 0, 4); C major is C, E, G (0, 4, 7). The second
    # partial is an octave; the third adds each note's fifth (a ninth of the power), for A minor G and B.
    assert a_minor[chroma][[9, 0, 4]].sum() > 0.9 and c_major[chroma][[0, 4, 7]].sum() > 0.9
    assert 0.01 < a_minor[chroma][[7, 11]].min() < 0.05
    assert a_minor[chroma][[1, 2, 3, 5, 6, 8, 10]].max() < 0.005


def test_envelope_finds_where_in_the_step_a_hit_lands_and_loudness_is_the_steps_rms():
    step = np.zeros((STEP_FRAMES, 2), np.float32)
    block = STEP_FRAMES // step_features.ENVELOPE_BLOCKS
    step[3 * block:3 * block + 200] = 0.5  # a short hit in block 3
    features = step_features.step_features(step[None])[0]
    envelope = features[-1 - step_features.ENVELOPE_BLOCKS:-1]
    assert np.argmax(envelope) == 3 and envelope[3] - np.delete(envelope, 3).max() > 40
    # RMS of 200 frames of 0.5 in 11025: 20 log10(0.5 sqrt(200 / 11025)) = -23.4 dB.
    assert features[-1] == pytest.approx(20 * np.log10(0.5 * np.sqrt(200 / STEP_FRAMES)), abs=0.05)
    assert features.shape == (step_features.SIZE,)


def test_groups_and_comparable_multipliers_weigh_each_group_as_group_weights_say():
    groups = step_features.group_of_each_feature()
    assert groups.shape == (step_features.SIZE,)
    assert np.array_equal(np.bincount(groups), list(step_features.GROUPS.values()))
    scale = np.linspace(0.5, 3.0, step_features.SIZE).astype(np.float32)
    multipliers = step_features.comparable_multipliers(scale)
    # A difference of one spread in every feature of a group costs that group's weight, whatever its size.
    for number, (group, weight) in enumerate(step_features.GROUP_WEIGHTS.items()):
        assert np.sum(np.square(multipliers * scale)[groups == number]) == pytest.approx(weight, rel=1e-5), group
    np.testing.assert_allclose(step_features.comparable(np.ones((2, step_features.SIZE)), scale),
                               np.tile(multipliers, (2, 1)), rtol=1e-6)


def steady_tone(num_steps, hz, amplitude=0.3):
    time = np.arange(num_steps * STEP_FRAMES) / SAMPLE_RATE
    mono = amplitude * np.sin(2 * np.pi * hz * time) + amplitude / 3 * np.sin(2 * np.pi * 1.5 * hz * time)
    return np.stack([mono, mono], axis=1).astype(np.float32).reshape(num_steps, STEP_FRAMES, 2)


def test_seams_of_a_steady_tone_carry_on_from_step_to_step_and_break_at_silence_or_another_note():
    tone = step_features.seam_spectra(steady_tone(8, 440.0))
    assert tone.shape == (8, 2, step_features.SEAM_BANDS) and tone.dtype == np.float32
    assert step_features.seam_spectra(np.zeros((0, STEP_FRAMES, 2))).shape == (0, 2, step_features.SEAM_BANDS)
    carried_on = step_features.seam_distance(tone[:-1, 1], tone[1:, 0])  # each step's end -> the next one's start
    silence = step_features.seam_spectra(np.zeros((1, STEP_FRAMES, 2), np.float32))
    assert silence.min() == step_features.FLOOR_DB  # nothing there: the floor
    to_silence = step_features.seam_distance(tone[:, 1], silence[0, 0])
    other_note = step_features.seam_distance(tone[:, 1], step_features.seam_spectra(steady_tone(8, 523.25))[:, 0])
    assert carried_on.max() < 1.0  # dB^2: the same sound
    assert to_silence.min() > 1000 and other_note.min() > 30
    # Broadcast: every end against every start.
    assert step_features.seam_distance(tone[:, None, 1], tone[None, :, 0]).shape == (8, 8)


def test_a_seam_tells_where_the_edge_of_a_step_is():
    """The start seam is the step's first 23 ms and the end seam its last: a step that goes silent half-way has a
    loud start and a silent end."""
    steps = steady_tone(1, 440.0)
    steps[:, STEP_FRAMES // 2:] = 0.0
    start, end = step_features.seam_spectra(steps)[0]
    assert start.max() > 0 and np.all(end == step_features.FLOOR_DB)


def click_steps(num_steps, period_seconds, offset_seconds=0.1):
    """Stereo steps of silence with a 10 ms click every period_seconds."""
    song = np.zeros((num_steps * STEP_FRAMES, 2), np.float32)
    for start in np.arange(offset_seconds, num_steps * 0.25, period_seconds):
        first = int(start * SAMPLE_RATE)
        song[first:first + 441] = 0.5
    return song.reshape(num_steps, STEP_FRAMES, 2)


@pytest.mark.parametrize("period", [0.5, 0.6, 1.0])
def test_beat_period_finds_a_click_tracks_period_in_seconds(period):
    seconds, strength = step_features.beat_period(click_steps(40, period))
    assert seconds == pytest.approx(period, abs=0.003) and strength > 0.6  # 11.6-ms frames, refined between them


def test_beat_period_of_silence_or_noise_or_too_little_audio():
    assert step_features.beat_period(np.zeros((40, STEP_FRAMES, 2), np.float32)) == (None, 0.0)  # nothing rises
    assert step_features.beat_period(click_steps(4, 0.5)) == (None, 0.0)  # 1 s: shorter than the longest lag
    noise = np.random.default_rng(0).normal(0, 0.1, (40, STEP_FRAMES, 2)).astype(np.float32)
    _, strength = step_features.beat_period(noise)
    assert strength < 0.2 < step_features.beat_period(click_steps(40, 0.5))[1]


def test_a_windows_beat_from_its_songs_onset_envelope_is_the_beat_of_its_own_audio():
    """bench/ranking.py reads each window's beat from the whole song's onset envelope (onset_frames): the same
    envelope frames, so the same period, as beat_period of the window's audio where a window starts on a frame."""
    steps = click_steps(120, 0.6) + click_steps(120, 0.43, offset_seconds=0.05)  # two pulses: a busier envelope
    envelope = step_features.onset_envelope(steps.reshape(-1, 2))
    for first in (0, 40, 57):  # windows of 40 steps
        frames = step_features.onset_frames(first * STEP_FRAMES, (first + 40) * STEP_FRAMES)
        own = step_features.onset_envelope(steps[first:first + 40].reshape(-1, 2))
        assert frames.stop - frames.start == len(own)
        if first * STEP_FRAMES % step_features.ONSET_HOP == 0:
            np.testing.assert_allclose(envelope[frames], own, rtol=1e-4, atol=1e-4)
        (period, strength), (own_period, own_strength) = (step_features.beat_of_onsets(envelope[frames]),
                                                          step_features.beat_period(steps[first:first + 40]))
        # Frames up to 511 samples apart from the window's own where it does not start on one.
        assert period == pytest.approx(own_period, abs=0.005) and strength == pytest.approx(own_strength, abs=0.05)


@pytest.mark.parametrize("bar", [1, 2, 3, 4])
def test_beats_in_a_bar_are_found_where_the_bars_first_beat_is_louder(bar):
    """Clicks every 0.5 s over a faint hiss, the first of every bar ten times as loud as the others (bar 1: all
    alike, no bar stands out)."""
    period = 0.5
    song = np.random.default_rng(0).normal(0, 0.001, (40 * STEP_FRAMES, 2)).astype(np.float32)
    for beat, start in enumerate(np.arange(0.1, 10.0, period)):
        first = int(start * SAMPLE_RATE)
        song[first:first + 441] += 0.5 if beat % bar == 0 else 0.05
    steps = song.reshape(40, STEP_FRAMES, 2)
    found, strength = step_features.beat_period(steps)
    assert found == pytest.approx(period if bar == 1 else bar * period, abs=0.01) or bar > 1
    assert step_features.beats_in_a_bar(steps, period) == bar
    assert step_features.beats_in_a_bar(steps, None) == 1  # no beat, no bar


@pytest.mark.parametrize("period, first_click", [(0.5, 0.1), (0.6, 0.33), (0.857, 0.05)])
def test_song_beats_finds_each_steps_period_and_where_its_next_beat_falls(period, first_click):
    steps = click_steps(80, period, offset_seconds=first_click)
    beats = step_features.song_beats(steps)
    assert beats.shape == (80, 3) and beats.dtype == np.float32
    np.testing.assert_allclose(beats[:, 0], period, atol=0.004)
    assert beats[:, 1].min() > 0.6
    # Seconds from each step's start to its next click, within ~2 frames of 11.6 ms (the rise of a click in
    # silence comes as it enters a frame) and the period's error over a 10-s window.
    next_click = (first_click - np.arange(80) * 0.25) % period
    off = (beats[:, 2] - next_click + period / 2) % period - period / 2
    assert np.abs(off).max() < 0.03
    seconds, strength, first_beat = step_features.beat_grid(steps[:40])
    assert seconds == pytest.approx(beats[0, 0], abs=1e-3) and abs((first_beat - first_click + period / 2) % period
                                                                  - period / 2) < 0.03


def test_song_beats_of_a_quiet_song_or_too_little_audio_are_zero():
    assert not step_features.song_beats(np.zeros((60, STEP_FRAMES, 2), np.float32)).any()
    assert not step_features.song_beats(click_steps(4, 0.5)).any()  # 1 s: shorter than the longest lag
    assert step_features.beat_grid(np.zeros((40, STEP_FRAMES, 2), np.float32)) == (None, 0.0, None)
    # A song that changes tempo: each step has the beat of the 10 s around it.
    steps = np.concatenate([click_steps(60, 0.5), click_steps(60, 0.8)])  # (twice 0.8 s is past the longest lag)
    beats = step_features.song_beats(steps)
    np.testing.assert_allclose(beats[:30, 0], 0.5, atol=0.004)
    np.testing.assert_allclose(beats[-30:, 0], 0.8, atol=0.006)


@pytest.mark.parametrize("extra", [0, 300, 511, 2048 + 700])
def test_the_onset_envelope_of_long_audio_taken_in_chunks_is_the_envelope_taken_at_once(extra):
    samples = np.random.default_rng(1).normal(0, 0.1, (40 * step_features.ONSET_HOP + extra, 2)).astype(np.float32)
    whole = step_features.onset_envelope(samples, chunk_frames=len(samples))
    chunked = step_features.onset_envelope(samples, chunk_frames=8 * step_features.ONSET_HOP)
    assert len(whole) == len(chunked) == (len(samples) - step_features.ONSET_FFT) // step_features.ONSET_HOP
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)


def test_tonalness_is_1_for_one_pitch_class_and_0_for_all_twelve_alike():
    features = np.zeros((3, step_features.SIZE), np.float32)
    chroma = slice(step_features.MEL_BANDS, step_features.MEL_BANDS + 12)
    features[0, chroma] = np.eye(12)[3]
    features[1, chroma] = 1 / 12
    features[2, chroma] = [0.5, 0.5] + [0.0] * 10  # two pitch classes: 1 - log 2 / log 12
    np.testing.assert_allclose(step_features.tonalness(features), [1.0, 0.0, 1 - np.log(2) / np.log(12)],
                               atol=1e-6)
