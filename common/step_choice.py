"""Continuing a score with real steps: each new step is a step of the seed or of a training song, chosen
among those whose neighbours sound like what was just played, by how likely the score model finds it.

A score model's Gaussian averages the futures it cannot tell apart, and samples of it decode to the average
step plus noise: a pitchless texture. A real step is one plausible future, with its notes, chords and drum
hits whole (concatenative continuation, as the Continuator and OMax do with their own models). The
joins follow the music: a candidate is a step whose own previous steps sound like the last steps chosen
(common/step_features.py: notes, spectrum, beat position, level), so lines, harmony and pulse go on across
the join, and the score model picks among them. Runs of a source's own consecutive steps are cut after
max_run steps, so nothing is replayed for long.
"""
import numpy as np

from common import step_features

CONTEXT_STEPS = 4  # steps before a candidate compared with the last steps chosen
CANDIDATES = 24  # closest joins the score model chooses among
MAX_RUN = 10  # consecutive steps of one source (2.5 s), then a join; runs of random lengths (5-10) broke the
# beat at twice as many joins (beat-driven pulse 0.71x / 0.68x the round trip's, against 0.76x / 0.82x)
AVOID_RECENT = 16  # a step used in the last 4 s is not chosen again: no short loops
SHARPNESS = 8.0  # choice probability ~ exp(-SHARPNESS * cost / temperature)
LIKELIHOOD_WEIGHT = 1.0  # how much the score model's judgement counts among the closest joins
SEED_WEIGHT = 2.0  # how much staying close to the seed counts against following on well (per step compared)
BEAT_WEIGHT = 2.0  # cost of a join within the seed that lands half a beat off its pulse (times the pulse's strength)
EXCLUDED = 1e9  # cost of a step that may not be chosen now (kept finite: a tiny corpus still continues)


class StepChoice:
    """Chooses new steps one at a time from a pool of real steps.

    scores (N, latent): the pool's codes; features (N, step_features.SIZE): what each sounds like; sources
    (N,): which song each step is from (consecutive steps of one source follow each other). history: pool
    indices of the steps played so far (the seed's, which must be in the pool), oldest first.
    """

    def __init__(self, scores, features, sources, history, rng, temperature=1.0, max_run=MAX_RUN,
                 candidates=CANDIDATES, context=CONTEXT_STEPS):
        sources = np.asarray(sources)
        if not len(scores) == len(features) == len(sources):
            raise ValueError("scores, features and sources must have one row per step")
        self.scores = np.asarray(scores, np.float32)
        scale = np.std(features, axis=0)
        self.features = step_features.comparable(features, scale)
        self.context, self.max_run, self.rng, self.temperature = context, max_run, rng, temperature
        self.candidates = candidates
        # A step can follow the played steps if its own `context` previous steps are of its source.
        followable = np.zeros(len(sources), bool)
        followable[context:] = sources[context:] == sources[:-context]
        self.pool = np.flatnonzero(followable)
        self.before_pool = np.concatenate([self.features[self.pool - 1 - k] for k in range(context)], axis=1)
        self.has_next = np.append(sources[1:] == sources[:-1], False)
        seed = list(history)
        # How far each candidate sounds from the nearest step of what was played first (the seed): joins stay
        # in the seed's world (its key, instruments, how tonal it is), not wherever the corpus has most steps.
        # The seed's own steps count as themselves (distance 0): measured against the seed's other steps
        # instead, continuations took almost no seed steps, and on beat-driven music their pulse fell from
        # 1.1x to 0.46x the round trip's (other songs' tempos) and orchestral tonalness to 0.7x (measured on
        # the sparse code before its noise envelope).
        self.distance_to_seed = np.min(squared_distances(self.features[self.pool], self.features[seed]), axis=1)
        # A join from one seed step to another keeps the seed's beat where the jump is a whole number of its
        # beat periods (measured on the seed's block levels); most new steps are the seed's.
        self.is_seed = np.zeros(len(sources), bool)
        self.is_seed[seed] = True
        self.beat_blocks, self.beat_strength = step_features.beat_period(np.asarray(features)[seed])
        # Distances are counted in units of the typical distance between two steps of the pool.
        pairs = np.random.default_rng(0).integers(len(self.features), size=(2, 4096))
        self.typical_distance = max(float(np.median(np.sum(np.square(
            self.features[pairs[0]] - self.features[pairs[1]]), axis=1))), 1e-6)
        self.history = seed
        self.run = 1  # steps of the played run so far: the history's last consecutive steps of one source
        while (self.run < len(self.history) and self.history[-self.run] == self.history[-self.run - 1] + 1
               and self.has_next[self.history[-self.run - 1]]):
            self.run += 1
        self.joins = 0
        self.longest_run = 1  # the most consecutive steps of one source that were chosen in a row
        self.run_length = self.run  # the seed's run ends here: the first new step is a join

    def _context_cost(self):
        """(len(pool),) how far each candidate's previous steps sound from the last steps played, per step."""
        known = min(self.context, len(self.history))  # a seed shorter than the context: compare what there is
        played = np.concatenate([self.features[self.history[-1 - k]] for k in range(known)])
        return np.sum(np.square(self.before_pool[:, :len(played)] - played), axis=1) / known

    def choose(self, predict):
        """Pool index of the next step: the next step of the played run, or at the end of the run (max_run
        steps) a join to the candidate whose own next steps the score model finds likeliest among those that
        follow on well. predict() gives the model's Gaussian for the next steps
        (mean, spread: (steps, latent), the first for this step); it is called only for a join."""
        last = self.history[-1]
        if self.has_next[last] and self.run < self.run_length and last + 1 not in self.history[-AVOID_RECENT:]:
            pick, self.run = last + 1, self.run + 1
            self.longest_run = max(self.longest_run, self.run)
        else:
            mean, spread = predict()
            pick = self._join(np.asarray(mean, np.float32), np.asarray(spread, np.float32))
            self.run, self.joins = 1, self.joins + 1
            self.run_length = self.max_run  # unless the song ends or a step would come back within 4 s
        self.history.append(int(pick))
        return int(pick)

    def _join(self, mean, spread):
        # How well each candidate follows on (per step compared) and how close it stays to the seed; the score
        # model then weighs in on the closest.
        cost = (self._context_cost() + SEED_WEIGHT * self.distance_to_seed) / self.typical_distance
        cost += self._off_beat_cost()
        last = self.history[-1]
        cost[np.isin(self.pool, self.history[-AVOID_RECENT:]) | (self.pool == last + 1)] += EXCLUDED
        count = min(self.candidates, len(self.pool))
        rows = np.argpartition(cost, count - 1)[:count]
        near = self.pool[rows]
        likelihood_cost = np.array([self._unlikeliness(start, mean, spread) for start in near])
        total = cost[rows] + LIKELIHOOD_WEIGHT * likelihood_cost / max(np.median(likelihood_cost), 1e-6)
        if self.temperature > 0:
            logits = -SHARPNESS * (total - total.min()) / self.temperature
            return near[self.rng.choice(count, p=np.exp(logits) / np.sum(np.exp(logits)))]
        return near[np.argmin(total)]

    def _off_beat_cost(self):
        """(len(pool),) for joins from a seed step to a seed step: how far the jump lands from the seed's beat
        grid (0 on it, BEAT_WEIGHT * the pulse's strength half a beat off); 0 for every other join."""
        last = self.history[-1]
        if self.beat_blocks is None or not self.is_seed[last]:
            return 0.0
        jump = (self.pool - (last + 1)) * step_features.ENVELOPE_BLOCKS % self.beat_blocks
        off = np.minimum(jump, self.beat_blocks - jump) / self.beat_blocks  # 0 .. 0.5 of a beat
        return np.where(self.is_seed[self.pool], BEAT_WEIGHT * self.beat_strength * (2 * off) ** 2, 0.0)

    def _unlikeliness(self, start, mean, spread):
        """Mean squared error in predicted spreads of the pool's steps from start on (as far as its source
        goes) against the model's next steps: how unlikely the model finds that continuation."""
        length = 1
        while length < len(mean) and self.has_next[start + length - 1]:
            length += 1
        return 0.5 * np.mean(np.square((self.scores[start:start + length] - mean[:length]) / spread[:length]))


def squared_distances(rows, others):
    """(len(rows), len(others)) squared Euclidean distances, without a (rows, others, features) temporary."""
    rows, others = np.asarray(rows, np.float64), np.asarray(others, np.float64)
    distances = np.sum(rows ** 2, axis=1)[:, None] + np.sum(others ** 2, axis=1)[None] - 2 * rows @ others.T
    return np.maximum(distances, 0.0)

