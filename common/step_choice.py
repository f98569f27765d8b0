"""Continuing a score with real steps, steered by the score model: runs of a song's consecutive steps, and
joins chosen by what the model expects to come next.

A continuation is made of real steps of the seed and of the training songs (concatenative continuation, as the
Continuator and OMax do with their own models): a real step keeps its notes, chords and drum hits whole, where a
step sampled from a model's prediction decodes to a pitchless texture. The score model predicts what the next
steps will sound like (a Gaussian over their step features), and that is what chooses:

  - where to join: a run follows one song for at least min_run and at most max_run steps. At every step of
    that stretch the model is asked what comes next; the run leaves where the best join is least worse than
    staying (the run's own next steps are a candidate like any other), and otherwise at max_run or where its
    song ends or a step would come back within 4 s;
  - where to: every step of the pool is a candidate, weighed by how likely the model finds it and its next
    steps, how well its own previous second matches the last second played (its context), how closely its
    first milliseconds carry on the sound the last step ends with (its seam), how close it stays to the seed
    (SEED_WEIGHT) and whether it keeps the seed's beat (the seed's own steps, and other songs' of its tempo,
    whose local beat step 4 found: where they land on the grid; other songs' steps of another tempo or none
    cost as much as half a beat off; where the seed has a bar, its own steps also on which beat of it); where
    the seed is far more tonal than the other songs, their steps also by how much less tonal they are.

With the model switched off (model_weight 0) the same choice is made by sound alone. Nothing is replayed for
long: a step played in the last 4 s is never chosen again, a join made before costs JOIN_AGAIN_COST (no cycles
through the same runs), as does one whose run would play more than 3 s of the continuation again (both rules in
common/replays.py), and where the seed has no beat, a join never skips just 1-3 steps of the run it leaves (the
same recording with a cut).
"""
import numpy as np

from common import replays, step_features
from common.audio import SAMPLE_RATE, STEP_FRAMES
from common.beat_joins import (MAX_SHIFT, MIN_STRENGTH, off_the_beat, runs_on_the_beat, seed_grid, seed_step_beats,
                               step_grid)

CONTEXT_STEPS = 4  # steps before a candidate compared with the last steps played
MIN_RUN = 8  # steps of one source before the run may leave it (2 s): every join can break the beat
MAX_RUN = 10  # consecutive steps of one source at most (2.5 s): the copy guard's limit is 3 s
AVOID_RECENT = 16  # a step used in the last 4 s is not chosen again: no short loops
SHARPNESS = 8.0  # choice probability ~ exp(-SHARPNESS * cost / temperature)
MODEL_WEIGHT = 1.0  # how much the score model's judgement counts in a join's cost
SEED_WEIGHT = 6.0  # how much staying close to the seed counts against following on well (per step compared)
SEED_END_STEPS = 10  # the seed's last 2.5 s: where the music it was cut from goes on from
SEED_END_SHARE = 0.3  # the share of the distance to the seed measured to those steps alone
SEAM_WEIGHT = 1.0  # how much a seam that breaks the sound counts
SHORT_RUN_WEIGHT = 2.0  # cost per step a joined run could not play before it meets a recent step or its song's end
BEAT_WEIGHT = 8.0  # cost of a step that lands half a beat off the seed's grid (times the pulse's strength)
BAR_COST = 0.5  # a seed step on the beat but on another beat of the seed's bar costs this x BEAT_WEIGHT x strength
OFF_GRID_COST = 1.0  # a step of another tempo or none costs this x BEAT_WEIGHT x strength: as if half a beat off
JOIN_AGAIN_COST = 4.0  # a join made again or a long replay (common/replays.py) costs as much as a wrong beat of the
# bar at full strength: finite, so that a long continuation whose fresh joins have run out repeats one rather than
# breaking the beat or leaving the seed's world
TONAL_GAP = 2.0  # where the seed's median step is this many times as tonal as the other songs' median step, ...
TONAL_WEIGHT = 6.0  # ... their steps cost this x how much less tonal they are than the seed's median (relative)
SKIP_STEPS = 3  # without a beat, a join may not skip this few steps of the run it leaves: it reads as a copy
EXCLUDED = 1e9  # cost of a step that may not be chosen now (kept finite: a tiny corpus still continues)


class StepChoice:
    """Chooses new steps run by run from a pool of real steps whose first seed_count rows are the seed's own
    steps (its own source, oldest first): scores (N, latent), features (N, SIZE), seams (N, 2, SEAM_BANDS),
    sources (N,) (consecutive steps of one source follow each other); beat: the seed's beat period in seconds
    and its strength (step_features.beat_period; None: no grid is kept); step_beats: (N, 3) each step's local
    beat (step_features.song_beats' rows, the seed's on its own grid; None: only the seed's steps are known to
    be on it). bar_beats: beats in the seed's bar (step_features.beats_in_a_bar; 1: none), the beat of it a join
    to a seed step should land on. seed_steps_only: join only the seed's own steps (the other songs' are never
    chosen). history: pool indices played so far.
    """

    def __init__(self, scores, features, seams, sources, seed_count, rng, temperature=1.0, min_run=MIN_RUN,
                 max_run=MAX_RUN, model_weight=MODEL_WEIGHT, out_steps=5, beat=(None, 0.0), context=CONTEXT_STEPS,
                 seed_steps_only=False, step_beats=None, bar_beats=1):
        sources = np.asarray(sources)
        if not len(scores) == len(features) == len(seams) == len(sources):
            raise ValueError("scores, features, seams and sources must have one row per step")
        if not 1 <= min_run <= max_run:
            raise ValueError(f"runs need 1 <= min_run <= max_run, not {min_run} and {max_run}")
        self.scores, self.raw_features = np.asarray(scores, np.float32), np.asarray(features, np.float32)
        self.features = step_features.comparable(features, np.std(features, axis=0))
        self.seams = np.asarray(seams, np.float32)
        self.context, self.min_run, self.max_run = context, min_run, max_run
        self.rng, self.temperature, self.model_weight = rng, temperature, model_weight
        self.seed_steps_only = seed_steps_only
        # A step can be joined if its own `context` previous steps are of its source.
        followable = np.zeros(len(sources), bool)
        followable[context:] = sources[context:] == sources[:-context]
        self.pool = np.flatnonzero(followable)
        self.before_pool = np.concatenate([self.features[self.pool - 1 - k] for k in range(context)], axis=1)
        size = self.features.shape[1]
        self.before_norms = np.stack([np.sum(np.square(self.before_pool[:, :size * known]), axis=1)
                                      for known in range(1, context + 1)])
        self.pool_seams = self.seams[self.pool, 0]
        self.has_next = np.append(sources[1:] == sources[:-1], False)
        self.sources = sources
        # Each candidate's next steps as far as the model predicts and whether each is of its source; and the
        # steps of the run a join to it would start.
        self.pool_next, self.pool_next_mask = following_steps(self.raw_features, self.has_next, self.pool,
                                                                  out_steps)
        self.pool_run, self.pool_run_mask = following_indices(self.has_next, self.pool, min_run)
        self.history = list(range(seed_count))
        self.seed_count = seed_count
        # How far each candidate sounds from the seed: joins stay in the seed's world (its key, instruments, how
        # tonal it is), not wherever the corpus has most steps. The seed's own steps count as themselves (distance
        # 0): measured against the seed's other steps instead, continuations took almost no seed steps, and
        # beat-driven pulse fell to 0.46x the round trip's (other songs' tempos). SEED_END_SHARE of it is the
        # distance to the seed's last SEED_END_STEPS: music goes on from where the seed ended. By the nearest
        # seed step alone, a seed that changes (hedgewars' Rock: 7.5 s of intro, then the band) was continued
        # from every part of it alike, three quarters intro, where the real minute stays with the band.
        seed = self.history
        to_seed = squared_distances(self.features[self.pool], self.features[seed])
        self.distance_to_seed = ((1 - SEED_END_SHARE) * np.min(to_seed, axis=1)
                                 + SEED_END_SHARE * np.min(to_seed[:, -SEED_END_STEPS:], axis=1))
        self.is_seed = np.zeros(len(sources), bool)
        self.is_seed[seed] = True
        self.tonal_shortfall = tonal_shortfall(features, seed_count, self.pool)
        self.beat_seconds, self.beat_strength = beat
        self.bar_beats = bar_beats if self.beat_seconds is not None else 1
        # Where each step's beat falls on the seed's grid (NaN: not on it), and which steps are known to be off it.
        self.grid, self.off_grid = None, np.zeros(len(sources), bool)
        if self.beat_seconds is not None and step_beats is None:
            self.grid = seed_grid(len(sources), seed_count, self.beat_seconds)
        elif self.beat_seconds is not None:
            self.grid, self.off_grid = step_grid(step_beats, seed_count, self.beat_seconds)
        # Distances are counted in units of typical distances between two steps of the pool.
        pairs = np.random.default_rng(0).integers(len(self.features), size=(2, 4096))
        self.typical_distance = max(float(np.median(np.sum(np.square(
            self.features[pairs[0]] - self.features[pairs[1]]), axis=1))), 1e-6)
        self.typical_seam = max(float(np.median(step_features.seam_distance(
            self.seams[pairs[0], 1], self.seams[pairs[1], 0]))), 1e-6)
        self.run = 1  # steps of the played run so far: the history's last consecutive steps of one source
        while (self.run < len(self.history) and self.history[-self.run] == self.history[-self.run - 1] + 1
               and self.has_next[self.history[-self.run - 1]]):
            self.run += 1
        self.joins = 0
        self.longest_run = 1  # the most consecutive steps of one source that were chosen in a row
        self.first_join = True  # the seed's own run ends where the continuation starts

    @classmethod
    def after_seed(cls, seed_scores, seed_features, seed_seams, pool, rng, first_beat=None, **settings):
        """A StepChoice continuing a seed (its scores, features and seams, oldest first) with its own steps and
        those of pool (datasets.SongsHeard); the seed is a source of its own (-1), ahead of the pool, its last
        step without a known successor. first_beat: seconds from the seed's start to its first beat
        (step_features.beat_grid; None: the other songs' steps are never on its grid). settings: the
        constructor's other arguments."""
        beat_seconds, strength = settings.get("beat", (None, 0.0))
        step_beats = None
        if beat_seconds is not None and first_beat is not None and pool.beats is not None:
            step_beats = np.concatenate([seed_step_beats(len(seed_scores), beat_seconds, strength, first_beat),
                                         pool.beats])
        return cls(np.concatenate([seed_scores, pool.scores]), np.concatenate([seed_features, pool.features]),
                   np.concatenate([seed_seams, pool.seams]), np.concatenate([np.full(len(seed_scores), -1),
                                                                             pool.sources]),
                   len(seed_scores), rng, step_beats=step_beats, **settings)

    def extend(self, predict, in_steps):
        """Play the current run on to where it is best left, then join: the pool indices of the new steps.

        predict(windows) -> (n, out_steps, 2 * SIZE): the score model's Gaussian (mean | spread of the next
        steps' features) for each of n windows of pool indices (n, in_steps), asked once for every step at
        which the run may leave; None: the model is not asked (its weight is 0).
        """
        ahead = self._run_ahead()
        earliest = 0 if self.first_join else min(max(self.min_run - self.run, 0), len(ahead))
        leave_at = np.arange(earliest, len(ahead) + 1)  # steps of `ahead` played before the join
        windows = np.array([(self.history + ahead[:k])[-in_steps:] for k in leave_at])
        gaussians = predict(windows) if self.model_weight and predict is not None else None
        costs = []
        for number, k in enumerate(leave_at):
            played = self.history + ahead[:k]
            unlikeliness = None if gaussians is None else self.unlikeliness(gaussians[number])
            costs.append(self._join_costs(played, unlikeliness))
        # Leave where the best join is cheapest (the later step where two are as good: longer runs).
        best = np.array([cost.min() for cost in costs])
        chosen = len(leave_at) - 1 - int(np.argmin(best[::-1]))
        k = int(leave_at[chosen])
        new = ahead[:k] + [self._pick(costs[chosen])]
        self.longest_run = max(self.longest_run, k if self.first_join else self.run + k)
        self.history.extend(new)
        self.run, self.joins, self.first_join = 1, self.joins + 1, False
        return new

    def nearest_joins(self, count):
        """Pool indices of the count cheapest joins after the history, by sound alone (what the model is asked to
        choose among), each with a whole prediction's worth of next steps of its own source."""
        cost = self._join_costs(self.history, None)
        cost = np.where(self.pool_next_mask.all(axis=1), cost, cost + EXCLUDED)
        return self.pool[np.argsort(cost, kind="stable")[:count]]

    def _run_ahead(self):
        """The steps the current run could still play, in order: up to max_run in all, until its source ends or
        a step would come back within 4 s (none at the first join: the seed's run ends with the seed)."""
        if self.first_join:
            return []
        ahead, last = [], self.history[-1]
        while self.run + len(ahead) < self.max_run and self.has_next[last] and last + 1 not in (
                self.history[-AVOID_RECENT:] + ahead):
            last += 1
            ahead.append(last)
        return ahead

    def _join_costs(self, played, unlikeliness):
        """(len(pool),) the cost of joining each candidate of the pool after the steps played (unlikeliness: the
        model's, per pool row, or None)."""
        known = min(self.context, len(played))
        last = np.concatenate([self.features[played[-1 - k]] for k in range(known)])
        before = self.before_pool[:, :len(last)]
        context = (self.before_norms[known - 1] - 2 * before @ last + last @ last) / known
        cost = (context + SEED_WEIGHT * self.distance_to_seed) / self.typical_distance
        seam = step_features.seam_distance(self.seams[played[-1], 1], self.pool_seams)
        cost += SEAM_WEIGHT * seam / self.typical_seam
        cost += self._off_beat_cost(played, self.pool)
        recent = np.zeros(len(self.has_next), bool)  # every step played in the last 4 s
        recent[played[-AVOID_RECENT:]] = True
        cost += SHORT_RUN_WEIGHT * self._steps_short_of_a_run(recent)
        if unlikeliness is not None:
            cost += self.model_weight * unlikeliness
        # Counted apart, so that a join made again that also makes a long replay costs the most.
        cost += JOIN_AGAIN_COST * (self._joins_made_before(played).astype(np.float64) + self._long_replays(played))
        cost += TONAL_WEIGHT * self.tonal_shortfall
        excluded = recent[self.pool] | (self.pool == played[-1] + 1)
        if self.beat_strength < MIN_STRENGTH:  # the seed has no beat to keep
            # A join 1-3 steps past the step that would have followed is the same recording with a cut. On a beat
            # such a skip keeps the pulse (excluded everywhere, drascula 0.87x -> 0.80x, hedgewars 0.71x ->
            # 0.63x); without one it is heard, and measured, as the stretch going on (wesnoth's elf-land 5 s).
            skip = self.pool - played[-1] - 1
            excluded |= (skip >= 1) & (skip <= SKIP_STEPS) & (self.sources[self.pool] == self.sources[played[-1]])
        cost = np.where(excluded, cost + EXCLUDED, cost)
        if self.seed_steps_only:  # costlier than any seed step, even one that may not come back now
            cost = np.where(self.is_seed[self.pool], cost, cost + 2 * EXCLUDED)
        return cost

    def _joins_made_before(self, played):
        """(len(pool),) True where joining that step would make a join again (common/replays.py)."""
        return replays.joins_made_before(played, self.sources, self.pool)

    def _long_replays(self, played):
        """(len(pool),) True where a join to that step would replay more than 3 s (common/replays.py)."""
        return replays.long_replays(played, self.sources, self.pool, self.seed_count, self.max_run, AVOID_RECENT)

    def _steps_short_of_a_run(self, recent):
        """(len(pool),) how many of min_run steps each candidate's run could not play: it stops at its song's end
        or at a step played in the last 4 s (recent: a mask over all steps). (Without this a seed of 40 steps, 16
        of them recent, led to runs of 1-2 steps, a join every second, and beat-driven pulse 0.3x the round
        trip's.)"""
        playable = (self.pool_run_mask > 0) & ~recent[self.pool_run]
        return self.min_run - np.sum(np.cumprod(playable, axis=1), axis=1)

    def unlikeliness(self, gaussian):
        """(len(pool),) minus the log-likelihood of each pool step and its next steps (as far as its source goes)
        under the model's Gaussian (out_steps, 2 * SIZE), per step and feature, in units of its median."""
        out_steps, size = gaussian.shape[0], gaussian.shape[1] // 2
        mean, precision = gaussian[:, :size], 1.0 / np.square(gaussian[:, size:])
        steps = self.pool_next[:, :out_steps]  # (len(pool), out_steps, SIZE)
        squares = (np.einsum("nkf,kf->nk", np.square(steps), precision)
                   - 2 * np.einsum("nkf,kf->nk", steps, mean * precision) + np.sum(precision * np.square(mean), axis=1))
        mask = self.pool_next_mask[:, :out_steps]
        unlikeliness = 0.5 * np.sum(squares * mask, axis=1) / (size * np.sum(mask, axis=1))
        return unlikeliness / max(float(np.median(unlikeliness)), 1e-6)

    def choice_probabilities(self, cost):
        """(rows of the pool, their probabilities) of the join drawn after join costs `cost` (len(pool),): the 24
        cheapest, each with probability ~ exp(-SHARPNESS * cost / temperature); at temperature 0 the cheapest,
        with probability 1."""
        count = min(24, len(self.pool))
        rows = np.argpartition(cost, count - 1)[:count]
        total = cost[rows]
        if self.temperature > 0:
            weights = np.exp(-SHARPNESS * (total - total.min()) / self.temperature)
            return rows, weights / np.sum(weights)
        return rows, (np.arange(count) == np.argmin(total)).astype(np.float64)

    def _pick(self, cost):
        """A pool index drawn as choice_probabilities says."""
        rows, probabilities = self.choice_probabilities(cost)
        if self.temperature > 0:
            return int(self.pool[rows[self.rng.choice(len(rows), p=probabilities)]])
        return int(self.pool[rows[np.argmax(probabilities)]])

    def next_join_costs(self, unlikeliness=None):
        """(len(pool),) what joining each step of the pool after the history costs (unlikeliness: the model's,
        per pool row, from unlikeliness(); None: by sound alone)."""
        return self._join_costs(self.history, unlikeliness)

    def _off_beat_cost(self, played, candidates):
        """(len(candidates),) for steps on the seed's grid (its own, and other songs' of its tempo): how far they
        land from the seed's beat as the continuation plays it (0 on it, BEAT_WEIGHT * the pulse's strength half
        a beat off); for steps known to be off it (another tempo, or no beat) as much as half a beat off
        (OFF_GRID_COST); for steps whose beat nobody measured (a score dataset made before step 4 stored it),
        the mean cost of a phase at random. The beat is the one of the last step on the grid
        played, as beat_joins reads it (its run shifted onto the beat by up to MAX_SHIFT): a step on the grid
        after a step on the grid costs only the part of its offset that its own run's shift cannot take up;
        after a step off it (not shifted), all of it. Counted on whole steps instead (the run before as if
        unshifted, and offsets a shift takes up as off the beat), hedgewars' Rock measured a pulse of 0.21
        against 0.27 (conv1d and lstm, 3 random seeds each). (Carried on from the seed itself instead of its
        last step played, every join had fewer steps to choose from on the grid, and the pulse measured lower:
        0.80x / 0.62x the round trip's against 0.84x / 0.66x on electronic / orchestral songs.)"""
        if self.beat_seconds is None:
            return 0.0
        candidates = np.asarray(candidates)
        shifted = self.beat_strength >= MIN_STRENGTH  # music_generator reads runs on the beat only then
        runs = runs_on_the_beat(played, self.sources, self.seed_count, self.beat_seconds,
                                MAX_SHIFT if shifted else 0, self.grid)
        seed_end = (self.seed_count - 1) * STEP_FRAMES + self.grid[self.seed_count - 1, 1]  # the seed's last beat
        anchor = runs[-1][3] if runs else seed_end  # None after a run off the grid
        last_known = next((known for *_, known in reversed(runs) if known is not None), seed_end)
        # A step whose beat phase nobody knows costs what a random phase costs on average (the mean of (2 *
        # off)^2 over off uniform in 0 .. 0.5 is 1/3).
        unknown = BEAT_WEIGHT * self.beat_strength / 3
        period, first_beat = self.grid[candidates].T
        on_grid = np.isfinite(period)
        safe_period = np.where(on_grid, period, 1.0)
        off = off_the_beat(len(played) * STEP_FRAMES + np.where(on_grid, first_beat, 0.0) - last_known, safe_period)
        if shifted and anchor is not None:  # after a step on the grid, the joined run is shifted too
            off = off - np.clip(off, -MAX_SHIFT, MAX_SHIFT)
        cost = BEAT_WEIGHT * self.beat_strength * (2 * off / safe_period) ** 2
        cost = np.where(on_grid, cost, unknown)
        if self.bar_beats > 1:
            cost = cost + self._off_the_bar_cost(played, runs, candidates)
        return np.where(self.off_grid[candidates], OFF_GRID_COST * BEAT_WEIGHT * self.beat_strength, cost)

    def _off_the_bar_cost(self, played, runs, candidates):
        """(len(candidates),) BAR_COST x BEAT_WEIGHT x the pulse's strength for a seed step that would land on
        another beat of the seed's bar (bar_beats of them) than the seed's last run played puts there; for other
        songs' steps, whose bar nobody measured, the mean over a beat at random. Nothing where a run off the grid
        came after the seed's last run (the bar's place is lost)."""
        period = self.beat_seconds * SAMPLE_RATE
        bar = self.bar_beats * period
        seed_runs = [run for run in runs if played[run[0]] < self.seed_count]
        later = runs[runs.index(seed_runs[-1]) + 1:] if seed_runs else runs
        if any(anchor is None for *_, anchor in later):
            return 0.0
        first_downbeat = self.grid[0, 1]  # frames from the seed's start: a beat of the seed taken as a bar's first
        if seed_runs:
            _, stop, shift, _ = seed_runs[-1]
            seed_step, out_step = played[stop - 1], stop - 1
        else:
            shift, seed_step, out_step = 0, self.seed_count - 1, self.seed_count - 1
        # Output frame at which a bar starts, as the last seed run plays it, and where each candidate's bar starts.
        downbeat = out_step * STEP_FRAMES - shift + (first_downbeat - seed_step * STEP_FRAMES) % bar
        starts = len(played) * STEP_FRAMES + (first_downbeat - np.asarray(candidates) * STEP_FRAMES) % bar
        wrong_beat = np.round(off_the_beat(starts - downbeat, bar) / period) != 0
        full = BAR_COST * BEAT_WEIGHT * self.beat_strength
        return np.where(self.is_seed[candidates], full * wrong_beat, full * (1 - 1 / self.bar_beats))


def tonal_shortfall(features, seed_count, pool):
    """(len(pool),) for the other songs' steps of the pool, how much less tonal each is than the seed's median step
    (relative, 0-1; 0 for steps as tonal or more, and for the seed's own), where the seed's median step is
    TONAL_GAP times as tonal as theirs or more; else zeros. The step features' distance hardly sees it: nexuiz's
    beast-of-insanity (a seed of tonal lines over drums, its median step 5.9 times as tonal as the electronic
    songs') was continued with 0% of its own steps and drum-heavy steps of the others, tonalness 0.42x the
    round trip's. Where the other songs are about as tonal as the seed (the other 15 held-out songs of four
    kinds: 0.07-1.7 times), their steps carry the seed's beat at its tempo, and the same cost there lowered
    wesnoth's main_menu from 0.81x to 0.62x of the round trip's pulse."""
    tonal = step_features.tonalness(features)
    seed_median = float(np.median(tonal[:seed_count]))
    others = tonal[seed_count:]
    if not len(others) or seed_median < TONAL_GAP * float(np.median(others)):
        return np.zeros(len(pool))
    shortfall = np.maximum(seed_median - tonal[pool], 0.0) / max(seed_median, 1e-6)
    return np.where(np.asarray(pool) < seed_count, 0.0, shortfall)


def following_indices(has_next, starts, count):
    """(len(starts), count) each start step and the count - 1 steps after it, and (len(starts), count) 1.0 where
    that step is of the start's source (else 0.0, the source's last step repeated)."""
    indices = np.empty((len(starts), count), np.int64)
    mask = np.ones((len(starts), count), np.float32)
    step = np.asarray(starts).copy()
    going = np.ones(len(starts), bool)
    for k in range(count):
        indices[:, k] = step
        mask[:, k] = going
        going &= has_next[step]
        step = np.where(going, step + 1, step)
    return indices, mask


def following_steps(features, has_next, starts, count):
    """(len(starts), count, SIZE) the features of following_indices(has_next, starts, count), and its mask."""
    indices, mask = following_indices(has_next, starts, count)
    return np.asarray(features, np.float32)[indices], mask


def squared_distances(rows, others):
    """(len(rows), len(others)) squared Euclidean distances, without a (rows, others, features) temporary."""
    rows, others = np.asarray(rows, np.float64), np.asarray(others, np.float64)
    distances = np.sum(rows ** 2, axis=1)[:, None] + np.sum(others ** 2, axis=1)[None] - 2 * rows @ others.T
    return np.maximum(distances, 0.0)
