"""Joins on the seed's beat at sample level: each run of seed steps is read from the seed a few milliseconds
early or late, so that the beat goes on where the previous run of seed steps left it.

A continuation joins runs of whole 1/4-s steps, and a beat rarely holds a whole number of them (0.857 s is
3.43 steps): a join that the generator chose as the best on the grid still lands up to ~0.15 s off the beat.
Reading the run's audio from its source shifted by that much keeps the beat across the join. Only runs of seed
steps that follow runs of seed steps are shifted: another song's beat has a phase nobody measured. Through the
generator (conv1d, four held-out songs of each kind, `--random-seed 1`, pulse x the real next minute's round
trip, whole steps -> shifted): hedgewars 0.72x -> 0.81x, nexuiz 0.72x -> 0.87x, wesnoth 0.59x -> 0.64x,
drascula 0.86x -> 0.87x.
"""
import numpy as np

from common.audio import CROSSFADE_FRAMES, SAMPLE_RATE, STEP_FRAMES

MAX_SHIFT = STEP_FRAMES // 2  # at most half a step either way: the rest of a beat's error is the grid cost's
MIN_STRENGTH = 0.1  # a seed whose pulse is weaker has no beat to keep (its period is noise)


def runs_in(history, sources):
    """[(start, stop)] positions of history (pool indices) where one source's consecutive steps follow each other."""
    history, sources = np.asarray(history), np.asarray(sources)
    if not len(history):
        return []
    cuts = np.flatnonzero((np.diff(history) != 1) | (sources[history[1:]] != sources[history[:-1]])) + 1
    edges = np.concatenate([[0], cuts, [len(history)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def beat_shifts(history, sources, seed_count, beat_seconds, max_shift=MAX_SHIFT):
    """[(start, stop, shift)] for each run of history after its first seed_count steps (the seed, played where it
    was): output sample start * STEP_FRAMES + x plays the run's source at sample history[start] * STEP_FRAMES +
    shift + x. A run of seed steps that follows a run of seed steps is shifted by the least that puts it on the
    seed's beat as the run before played it (at most max_shift); other songs' runs and the seed's runs after
    them (their beat's phase nobody knows), and every run where the seed has no beat (beat_seconds None), by 0."""
    period = None if not beat_seconds else beat_seconds * SAMPLE_RATE
    lead = 0.0  # output sample minus seed sample of the run before: 0 for the seed itself; None: another song's
    shifts = []
    for start, stop in runs_in(history, sources):
        if stop <= seed_count:
            continue
        first = history[start]
        shift = 0
        if period is not None and first < seed_count and lead is not None:
            offset = (start - first) * STEP_FRAMES - lead  # how far this run's beat is from the run before's
            shift = int(np.clip(np.round(off_the_beat(offset, period)), -max_shift, max_shift))
        lead = (start - first) * STEP_FRAMES - shift if first < seed_count else None
        shifts.append((start, stop, shift))
    return shifts


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
