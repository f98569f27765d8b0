"""Joins on the seed's beat at sample level (common/beat_joins.py)."""
import numpy as np
import pytest

from common.audio import CROSSFADE_FRAMES, SAMPLE_RATE, STEP_FRAMES
from common.beat_joins import MAX_SHIFT, beat_shifts, join_runs, runs_in

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
