"""Joins on the seed's beat at sample level (common/beat_joins.py)."""
import numpy as np
import pytest

from common.audio import CROSSFADE_FRAMES, SAMPLE_RATE, STEP_FRAMES
from common.beat_joins import MAX_SHIFT, beat_shifts, join_runs, runs_in, seed_step_beats, step_grid

SEED = 40
HALF = CROSSFADE_FRAMES // 2


def click_track(period_frames, steps, width=64):
    """(steps * STEP_FRAMES + margins, 1) a click every period_frames from frame 0 (margins of silence)."""
    track = np.zeros((steps * STEP_FRAMES, 1), np.float32)
    for start in np.arange(0, len(track) - width, period_frames).round().astype(int):
        track[start:start + width] = 1.0
    return track


def continue_clicks(history, sources, period_seconds, shifted=True, max_shift=MAX_SHIFT):
    """A continuation of a click-track seed, built as music_generator.decode_on_the_beat builds one from decoded
    runs: each run read from the raw seed at its shift, joined with cross-fades."""
    source = click_track(period_seconds * SAMPLE_RATE, SEED)
    padded = np.concatenate([np.zeros((STEP_FRAMES, 1), np.float32), source, np.zeros((STEP_FRAMES, 1), np.float32)])
    runs = [(0, SEED, 0)] + beat_shifts(history, sources, SEED, period_seconds if shifted else None, max_shift)
    pieces = []
    for start, stop, shift in runs:
        begin = STEP_FRAMES + history[start] * STEP_FRAMES + shift - HALF
        pieces.append((start * STEP_FRAMES, padded[begin:begin + (stop - start) * STEP_FRAMES + 2 * HALF]))
    return join_runs(pieces, len(history) * STEP_FRAMES)


def click_phases(samples, period_frames):
    """Phase (0..1 of a period) of every click's onset."""
    rising = np.flatnonzero((samples[1:, 0] > 0.5) & (samples[:-1, 0] <= 0.5)) + 1
    return (rising / period_frames) % 1.0


def test_runs_are_consecutive_steps_of_one_source():
    sources = np.repeat([-1, 0, 1], [5, 6, 6])
    history = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 2, 3]  # 10 -> 11 crosses from song 0 into song 1
    assert runs_in(history, sources) == [(0, 5), (5, 9), (9, 11), (11, 13)]
    assert runs_in([], sources) == []


@pytest.mark.parametrize("period_seconds", [0.37, 0.29, 0.41])
def test_a_click_track_continued_by_runs_of_its_own_steps_keeps_every_click_on_one_grid(period_seconds):
    # Runs of the seed's own steps joined at random: a beat of 0.37 s is 1.48 steps, so a join of whole steps
    # lands up to half a beat off; shifted (by at most half a beat, within the decoded neighbours), every click
    # of the minute stays on the seed's grid.
    rng = np.random.default_rng(0)
    history = list(range(SEED))
    while len(history) < SEED + 200:
        first = int(rng.integers(0, SEED - 10))
        history += list(range(first, first + int(rng.integers(8, 11))))
    sources = np.full(SEED, -1)
    period = period_seconds * SAMPLE_RATE
    reach = int(period / 2) + 1
    shifted = click_phases(continue_clicks(history, sources, period_seconds, max_shift=reach), period)
    plain = click_phases(continue_clicks(history, sources, period_seconds, shifted=False), period)
    off = lambda phases: np.abs((phases + 0.5) % 1.0 - 0.5)  # noqa: E731  (distance from the grid, in periods)
    assert len(shifted) >= 0.9 * (len(history) * STEP_FRAMES / period)
    assert off(shifted).max() < 0.01  # the rounding of a shift to whole samples only
    assert np.mean(off(plain) > 0.05) > 0.3  # whole steps alone break the grid at most joins


def test_shifts_are_at_most_max_shift_and_zero_without_a_beat_or_next_to_other_songs():
    sources = np.concatenate([np.full(SEED, -1), np.zeros(30, int)])
    history = list(range(SEED)) + list(range(3, 13)) + list(range(SEED + 5, SEED + 15)) + list(range(21, 30))
    shifts = beat_shifts(history, sources, SEED, 1.37)
    assert [(start, stop) for start, stop, _ in shifts] == [(40, 50), (50, 60), (60, 69)]
    assert shifts[1][2] == 0  # another song's run: its phase against the seed's beat is unknown
    assert shifts[2][2] == 0  # and so is the phase the seed's run after it should keep
    assert all(abs(shift) <= MAX_SHIFT for _, _, shift in shifts)
    assert all(shift == 0 for _, _, shift in beat_shifts(history, sources, SEED, None))
    # Seed step 3 played right after the seed (output step 40): 37 steps = 9.25 s later than it was, and the
    # nearest whole number of 1.37-s beats is 7 (9.59 s): 0.34 s early, more than MAX_SHIFT, so clipped to it.
    expected = (40 - 3) * STEP_FRAMES - 7 * 1.37 * SAMPLE_RATE
    assert shifts[0][2] == int(np.clip(np.round(expected), -MAX_SHIFT, MAX_SHIFT))


def test_join_runs_lays_pieces_end_to_end_and_keeps_the_power_of_unrelated_sound_at_joins():
    rng = np.random.default_rng(1)
    length = 3 * STEP_FRAMES
    pieces = [(i * length, rng.standard_normal((length + CROSSFADE_FRAMES, 2)).astype(np.float32)) for i in range(4)]
    out = join_runs(pieces, 4 * length)
    assert out.shape == (4 * length, 2)
    # Away from the joins each piece is as it was.
    np.testing.assert_array_equal(out[length + HALF + 10:2 * length - HALF - 10],
                                  pieces[1][1][HALF + HALF + 10:length + HALF - HALF - 10])
    # Across a join, two unrelated noises cross-faded by equal power keep the power of one.
    around = out[2 * length - HALF:2 * length + HALF]
    assert 0.9 < np.mean(np.square(around)) < 1.1


def test_step_grid_puts_steps_of_the_seeds_tempo_or_twice_or_half_it_on_the_grid_and_flags_the_others():
    """A step's beat is on the seed's grid where its tempo is the seed's, twice or half it, within 3%, and its
    pulse at least half as strong as the seed's."""
    beat = 0.5
    seed = seed_step_beats(4, beat, 0.2, 0.1)  # the seed's own: on its grid whatever its strength
    others = np.array([[0.505, 0.6, 0.3],   # the seed's tempo, 1% off
                       [1.01, 0.6, 0.7],    # twice it: a beat on every other one of the seed's
                       [0.249, 0.6, 0.2],   # half it (0.4% off): a beat on each of the seed's and between
                       [0.6, 0.6, 0.1],     # another tempo
                       [0.5, 0.05, 0.1],    # a pulse too weak to tell
                       [0.0, 0.0, 0.0]])    # no beat found
    grid, off_grid = step_grid(np.concatenate([seed, others]), 4, beat)
    np.testing.assert_allclose(grid[:4, 0], beat * SAMPLE_RATE)
    # Step k of the seed starts 0.25 k s in; its first beat is the next of 0.1 + 0.5 n.
    np.testing.assert_allclose(grid[:4, 1], np.array([0.1, 0.35, 0.1, 0.35]) * SAMPLE_RATE, atol=1e-6)
    np.testing.assert_allclose(grid[4:7, 0], np.array([0.5, 0.5, 0.249]) * SAMPLE_RATE)
    # Twice the seed's beat, 0.7 s to its first: 0.2 s to the first of the seed's grid.
    np.testing.assert_allclose(grid[4:7, 1], np.array([0.3, 0.2, 0.2]) * SAMPLE_RATE, atol=1e-6)
    assert np.isnan(grid[7:]).all()
    assert off_grid.tolist() == [False] * 7 + [True] * 3
    # Against a seed with a strong pulse, a step of its tempo whose pulse is under half as strong is off it too.
    strong = seed_step_beats(4, beat, 0.8, 0.1)
    _, off_grid = step_grid(np.concatenate([strong, [[0.5, 0.45, 0.1], [0.5, 0.35, 0.1]]]), 4, beat)
    assert off_grid.tolist() == [False] * 5 + [True]


def runs_of_seed_and_song(rng, new_steps):
    """A history: the seed's SEED steps, then runs of 8-10 steps from the seed or from a song after it in the pool
    (its steps SEED..), each from a place at random, until new_steps more are played."""
    history = list(range(SEED))
    while len(history) < SEED + new_steps:
        first = SEED * int(rng.integers(0, 2)) + int(rng.integers(1, 28))
        history += list(range(first, first + int(rng.integers(8, 11))))
    return history


def play_seed_and_song(seed, song, history, shifts):
    """The history's runs read from the seed's and the song's audio at their shifts (beat_shifts'), joined as
    music_generator.decode_on_the_beat joins decoded runs."""
    padded = [np.concatenate([np.zeros((STEP_FRAMES, 1), np.float32), audio, np.zeros((STEP_FRAMES, 1), np.float32)])
              for audio in (seed, song)]
    pieces = []
    for start, stop, shift in [(0, SEED, 0)] + shifts:
        source, first = (0, history[start]) if history[start] < SEED else (1, history[start] - SEED)
        begin = STEP_FRAMES + first * STEP_FRAMES + shift - HALF
        pieces.append((start * STEP_FRAMES, padded[source][begin:begin + (stop - start) * STEP_FRAMES + 2 * HALF]))
    return join_runs(pieces, len(history) * STEP_FRAMES)


def test_another_songs_run_of_the_seeds_tempo_is_read_onto_its_beat_and_the_grid_goes_on_through_it():
    # A seed clicking every 0.41 s from its start and a song clicking every 0.41 s from 0.13 s into it: runs of
    # either joined at random stay on one grid once each is shifted by what the grid says of its first step.
    period_seconds = 0.41
    period = period_seconds * SAMPLE_RATE
    song_steps = 40
    seed = click_track(period, SEED)
    song = np.roll(click_track(period, song_steps), int(0.13 * SAMPLE_RATE), axis=0)
    sources = np.repeat([-1, 0], [SEED, song_steps])
    beats = np.concatenate([seed_step_beats(SEED, period_seconds, 1.0, 0.0),
                            seed_step_beats(song_steps, period_seconds, 1.0, 0.13)])
    grid, _ = step_grid(beats, SEED, period_seconds)
    history = runs_of_seed_and_song(np.random.default_rng(3), 160)
    reach = int(period / 2) + 1
    shifts = beat_shifts(history, sources, SEED, period_seconds, reach, grid)
    assert any(shift for start, _, shift in shifts if history[start] >= SEED)  # the other song's runs move too
    phases = click_phases(play_seed_and_song(seed, song, history, shifts), period)
    assert len(phases) >= 0.9 * (len(history) * STEP_FRAMES / period)
    assert np.abs((phases + 0.5) % 1.0 - 0.5).max() < 0.01
    # Without the song's beats, its runs and the seed's runs after them are read where they are: off the grid.
    plain = beat_shifts(history, sources, SEED, period_seconds, reach)
    assert all(shift == 0 for start, _, shift in plain if history[start] >= SEED)


def test_after_a_run_at_half_the_seeds_tempo_the_seeds_runs_go_on_on_the_seeds_own_beats():
    # A seed clicking every 1.0 s and a song every 0.5 s (half the seed's beat: each of the song's beats is one of
    # the seed's or falls between two). After a run of the song, the seed's runs are read onto the seed's own
    # beats, not onto the song's between them; the song's quiet clicks are not counted.
    period_seconds, song_period_seconds = 1.0, 0.5
    period = period_seconds * SAMPLE_RATE
    song_steps = 40
    seed = click_track(period, SEED)
    song = 0.3 * np.roll(click_track(song_period_seconds * SAMPLE_RATE, song_steps), int(0.13 * SAMPLE_RATE), axis=0)
    sources = np.repeat([-1, 0], [SEED, song_steps])
    beats = np.concatenate([seed_step_beats(SEED, period_seconds, 1.0, 0.0),
                            seed_step_beats(song_steps, song_period_seconds, 1.0, 0.13)])
    grid, _ = step_grid(beats, SEED, period_seconds)
    history = runs_of_seed_and_song(np.random.default_rng(5), 200)
    shifts = beat_shifts(history, sources, SEED, period_seconds, int(period / 2) + 1, grid)
    phases = click_phases(play_seed_and_song(seed, song, history, shifts), period)
    assert len(phases) >= 0.5 * (len(history) * STEP_FRAMES / period)
    assert np.abs((phases + 0.5) % 1.0 - 0.5).max() < 0.01
