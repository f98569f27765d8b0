"""Nothing replayed for long: the two rules by which common/step_choice.py makes a join cost more where it would
make the continuation play again what it has played (a loop pedal, not a continuation).

Both take the steps played so far (indices into the steps of the seed and the pool's songs, the seed first),
each step's source (song), and the pool's candidate steps, and say which candidates the rule flags:

  - joins_made_before: the same leap as an earlier join, from near its exit (continuations cycled through a few
    runs without it: up to 53 s of a 60-s continuation repeating an earlier part of it);
  - long_replays: a run that, with the steps played just before it, would repeat more than 3 s of what the
    continuation played 4 s or more before, one step off or across the earlier passage's joins too (the loops
    the first rule misses).
"""
import numpy as np

from common.beat_joins import runs_in

SAME_JOIN_STEPS = 2  # a join with the same leap as one made before, from within this many steps of its exit,
# plays that passage again
REPLAY_STEPS = 12  # a join whose run would make the continuation play again more than this many steps (3 s, the
# loop guard's limit) of what it played 4 s or more before makes a loop, even where its joins are not the same leap
NEAR_STEPS = 1  # steps of one source this close count as the same passage where a replay is looked for


def joins_made_before(played, sources, pool):
    """(len(pool),) True where joining that step after the steps played would make a join again: the same leap
    (entry minus exit, between the same two sources) as an earlier join whose exit lies within SAME_JOIN_STEPS of
    the last step played. The music around it would repeat what the earlier join played, and the next join after
    it too."""
    played, sources, pool = np.asarray(played), np.asarray(sources), np.asarray(pool)
    ends = np.array([stop for _, stop in runs_in(played, sources)[:-1]], np.int64)  # a join after each
    exits, entries, last = played[ends - 1], played[ends], played[-1]
    near = (sources[exits] == sources[last]) & (np.abs(exits - last) <= SAME_JOIN_STEPS)
    again = last + entries[near] - exits[near]
    inside = (again >= 0) & (again < len(sources))
    again = again[inside][sources[again[inside]] == sources[entries[near][inside]]]
    return np.isin(pool, again)


def long_replays(played, sources, pool, seed_count, max_run, min_lag):
    """(len(pool),) True where the run a join to that step would start (up to max_run steps), with the steps played
    just before it, would repeat more than REPLAY_STEPS consecutive steps that the continuation (after its
    seed_count seed steps) played min_lag or more steps earlier, each step within NEAR_STEPS of the one it repeats
    (same source), across the earlier passage's joins too. The same-leap rule misses such loops where a join is
    one step off an earlier one: hedgewars' Fruit, whose steps a beat apart sound alike, went 10-17, 26-33, 19-25,
    and later 10-17, 27-34, 18-24 (5.75 s of a loop, bench/musicality.py's loop guard)."""
    sources, pool = np.asarray(sources), np.asarray(pool)
    after_seed = np.asarray(played)[seed_count:]
    count = len(after_seed)
    flagged = np.zeros(len(pool), bool)
    if count <= min_lag:
        return flagged
    played_sources = sources[after_seed]
    lags = np.arange(min_lag, count)
    # back[lag]: how many of the last steps played repeat, in order, the steps before the one `lag` back.
    newer = count - 1 - np.arange(count)[:, None]  # (steps back, 1)
    older = newer - lags  # (steps back, lags)
    valid = older >= 0
    older = np.where(valid, older, 0)
    near = (valid & (played_sources[newer] == played_sources[older])
            & (np.abs(after_seed[newer] - after_seed[older]) <= NEAR_STEPS))
    back = np.argmin(near, axis=0)  # the first step back that differs (there is one: `older` runs out)
    # Where enough of the last steps repeat that a run of max_run steps could make the replay long: how far the
    # joined run, step + shift + 0, 1, ..., would go on repeating what followed there, across its joins too (a step
    # skipped there keeps the rest within NEAR_STEPS).
    for lag in lags[back + max_run > REPLAY_STEPS]:
        earlier = count - lag
        step, source = after_seed[earlier], played_sources[earlier]
        for shift in range(-NEAR_STEPS, NEAR_STEPS + 1):
            ahead = 0
            while (ahead < max_run and earlier + ahead < count and played_sources[earlier + ahead] == source
                   and abs(after_seed[earlier + ahead] - (step + shift + ahead)) <= NEAR_STEPS):
                ahead += 1
            if back[lag - min_lag] + ahead > REPLAY_STEPS:
                flagged |= (pool == step + shift) & (sources[pool] == source)
    return flagged
