"""Joins on the seed's beat at sample level: each run is read from its source a few milliseconds early or late,
so that the beat goes on where the previous run left it.

A continuation joins runs of whole 1/4-s steps, and a beat rarely holds a whole number of them (0.857 s is
3.43 steps): a join that the generator chose as the best on the grid still lands up to ~0.15 s off the beat.
Reading the run's audio from its source shifted by that much keeps the beat across the join. A run is shifted
where the beat of its first step and that of the run before are known on the seed's grid (step_grid): the
seed's own steps, and another song's steps whose local tempo is the seed's (or twice or half of it) and whose
pulse is at least half as strong, found at step 4 (step_features.song_beats). Through the generator (conv1d,
four held-out songs of each kind, `--random-seed 1`, pulse x the real next minute's round trip, whole steps ->
seed runs shifted): hedgewars 0.72x -> 0.81x, nexuiz 0.72x -> 0.87x, wesnoth 0.59x -> 0.64x, drascula 0.86x ->
0.87x; other songs' runs as well: docs/continuation.md.
"""
import numpy as np

from common.audio import CROSSFADE_FRAMES, SAMPLE_RATE, STEP_FRAMES

MAX_SHIFT = STEP_FRAMES // 2  # at most half a step either way: the rest of a beat's error is the grid cost's
MIN_STRENGTH = 0.1  # a seed whose pulse is weaker has no beat to keep (its period is noise)
TEMPO_TOLERANCE = 0.03  # another song's beat within 3% of the seed's (or of twice or half it) is on its grid:
# over a 2.5-s run of 0.5-s beats it drifts at most 75 ms
STRENGTH_SHARE = 0.5  # ... where its pulse is at least half as strong as the seed's: a weaker one does not carry it


def runs_in(history, sources):
    """[(start, stop)] positions of history (pool indices) where one source's consecutive steps follow each other."""
    history, sources = np.asarray(history), np.asarray(sources)
    if not len(history):
        return []
    cuts = np.flatnonzero((np.diff(history) != 1) | (sources[history[1:]] != sources[history[:-1]])) + 1
    edges = np.concatenate([[0], cuts, [len(history)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def beat_shifts(history, sources, seed_count, beat_seconds, max_shift=MAX_SHIFT, grid=None):
    """[(start, stop, shift)] for each run of history after its first seed_count steps (the seed, played where it
    was): output sample start * STEP_FRAMES + x plays the run's source at sample history[start] * STEP_FRAMES +
    shift + x. A run whose first step is on the seed's grid (grid: step_grid's, per pool index; None: the seed's
    own steps alone) and follows a run whose last step is on it is shifted by the least that puts it on the beat
    as the run before played it (at most max_shift); other runs (a beat nobody measured), and every run where the
    seed has no beat (beat_seconds None), by 0."""
    return [(start, stop, shift) for start, stop, shift, _ in
            runs_on_the_beat(history, sources, seed_count, beat_seconds, max_shift, grid)]


def runs_on_the_beat(history, sources, seed_count, beat_seconds, max_shift=MAX_SHIFT, grid=None):
    """beat_shifts' runs, each with the output frame of a beat of the grid as its last step plays it (None where
    that step's beat is not on the seed's grid)."""
    if not beat_seconds:
        return [(start, stop, 0, None) for start, stop in runs_in(history, sources) if stop > seed_count]
    if grid is None:
        grid = seed_grid(len(sources), seed_count, beat_seconds)
    anchor = None  # output frame of a beat of the seed's grid as the run before played it
    runs = []
    for start, stop in runs_in(history, sources):
        period, first_beat = grid[history[start]]
        shift = 0
        if stop > seed_count and anchor is not None and np.isfinite(period):
            offset = start * STEP_FRAMES + first_beat - anchor  # how far this run's beat is from the run before's
            shift = int(np.clip(np.round(off_the_beat(offset, period)), -max_shift, max_shift))
        last_period, last_beat = grid[history[stop - 1]]
        played_beat = (stop - 1) * STEP_FRAMES - shift + last_beat  # NaN where the last step is off the grid
        if not np.isfinite(played_beat):
            anchor = None
        elif anchor is None or stop <= seed_count:
            anchor = played_beat
        else:
            anchor = _on_the_seeds_beats(anchor, played_beat, last_period, beat_seconds * SAMPLE_RATE)
        if stop > seed_count:
            runs.append((start, stop, shift, anchor))
    return runs


def _on_the_seeds_beats(anchor, beat, period, seed_period):
    """The output frame of a beat of the seed's own period, seed_period, near beat, a beat of period frames that a
    run shifted onto the grid of anchor (a beat of the seed's) plays: beat itself where the run's beat is the
    seed's (or twice it), else the seed's beat on the run's grid nearest to it. A run of another song at half the
    seed's tempo puts a beat between two of the seed's: taken as the seed's, half the joins after it landed
    between the seed's beats (wesnoth's main_menu, a 1.00-s beat, its continuations' pulse at 0.50 s)."""
    drift = off_the_beat(beat - anchor, period)  # what the run's shift could not take up
    return anchor + seed_period * np.round((beat - anchor - drift) / seed_period) + drift


def seed_grid(num_steps, seed_count, beat_seconds, first_beat_seconds=0.0):
    """(num_steps, 2) the grid of step_grid for the first seed_count steps alone, the seed's own, whose beat is
    beat_seconds and first falls first_beat_seconds after its start; NaN for the others."""
    beats = np.zeros((num_steps, 3))
    beats[:seed_count] = seed_step_beats(seed_count, beat_seconds, 1.0, first_beat_seconds)
    return step_grid(beats, seed_count, beat_seconds)[0]


def seed_step_beats(seed_count, beat_seconds, strength, first_beat_seconds):
    """(seed_count, 3) step_features.song_beats' rows for the seed's steps, all on its one grid."""
    starts = np.arange(seed_count) * STEP_FRAMES / SAMPLE_RATE
    return np.stack([np.full(seed_count, beat_seconds), np.full(seed_count, strength),
                     (first_beat_seconds - starts) % beat_seconds], axis=1)


def step_grid(step_beats, seed_count, beat_seconds, tolerance=TEMPO_TOLERANCE, strength_share=STRENGTH_SHARE):
    """Where each step's beat falls on the seed's grid, from step_beats (num_steps, 3) (step_features.song_beats'
    rows: period s, strength, seconds to its first beat; the first seed_count rows the seed's own): (num_steps, 2)
    frames, the grid's period at that step and the frames from its start to its first beat, NaN where its beat is
    not on the seed's (no beat, one less than strength_share as strong as the seed's, or another tempo than the
    seed's, twice or half of it); and (num_steps,) True where it is not (False for the seed's own steps, always on
    its grid)."""
    step_beats = np.asarray(step_beats, np.float64)
    period, strength, first_beat = step_beats.T
    seed_strength = float(np.max(strength[:seed_count], initial=0.0))
    has_beat = (strength >= max(MIN_STRENGTH, strength_share * seed_strength)) & (period > 0)
    ratio = np.where(has_beat, period, beat_seconds) / beat_seconds
    on_grid = has_beat & (np.min(np.abs(np.log(ratio[:, None] / np.array([0.5, 1.0, 2.0]))), axis=1)
                          <= np.log1p(tolerance))
    on_grid[:seed_count] = True
    # Half the seed's beat puts a beat on every beat of the seed's and one between; twice it, every other one.
    grid_period = np.minimum(np.where(on_grid, period, np.nan), beat_seconds) * SAMPLE_RATE
    grid_period[:seed_count] = beat_seconds * SAMPLE_RATE
    grid = np.stack([grid_period, first_beat * SAMPLE_RATE % grid_period], axis=1)
    grid[~on_grid] = np.nan
    return grid, ~on_grid


def off_the_beat(offset, period):
    """How far offset (frames, or an array of them) lies from the nearest whole number of beats of period
    frames: -period / 2 .. period / 2."""
    return offset - period * np.round(offset / period)


def join_runs(pieces, total_frames, crossfade=CROSSFADE_FRAMES):
    """Lay out pieces [(output start frame, audio)], each audio holding crossfade // 2 frames more on either
    side than its place, with an equal-power cross-fade at each join (the two sides are unrelated audio, so
    their powers add): (total_frames, channels). Pieces in order, each ending where the next begins."""
    half = crossfade // 2
    channels = pieces[0][1].shape[1]
    out = np.zeros((total_frames + 2 * half, channels), np.float32)  # half a cross-fade of room at either end
    rise = np.sin(0.5 * np.pi * (np.arange(crossfade) + 0.5) / crossfade)[:, None].astype(np.float32)
    fall = rise[::-1]
    for number, (start, samples) in enumerate(pieces):
        samples = np.asarray(samples, np.float32).copy()
        if number > 0:
            samples[:crossfade] *= rise
        if number < len(pieces) - 1:
            samples[-crossfade:] *= fall
        begin = start  # (start - half) in output frames, + half of room
        out[begin:begin + len(samples)] += samples[:len(out) - begin]
    return out[half:half + total_frames]
