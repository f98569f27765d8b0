"""The "what comes next" test: can a scorer tell a song's real next 1.25 s from other places?

From a window of in_steps steps of a song, the real next out_steps steps are ranked against distractors (other
out_steps-step places) by a scorer: a function of the windows and the candidates that gives every candidate a
figure, higher meaning likelier to come next. Top-1 (chance: 1 / (distractors + 1)), top-5 and the mean
reciprocal rank of the real next steps say how much a scorer knows about how music goes on in time.

Beside the score models, four simple scorers set the bar (a model that does not beat them has not learned time):
  last step    a Gaussian at the window's last step with the window's spread, on the score
  mean step    a Gaussian at the window's mean step with the window's spread, on the score
  continuity   the candidate whose first step sounds most like the window's last (step features)
  history      what followed the moment in the window whose last second sounded most like the window's last
               second (repetition, as a factor oracle uses it), on step features

Pure NumPy; used by the score-model scripts (their validation songs, same-song distractors) and by
bench/ranking.py (held-out songs, three sets of distractors).
"""
import numpy as np

from common import step_features

CONTEXT_STEPS = 4  # history compares the window's last second with every earlier second of it
MIN_GAP_STEPS = 8  # same-song distractors start at least 2 s from the real next steps
DISTRACTORS = 24
SCALE_FLOOR = 0.01  # of the corpus variance, as the score models' reference normalisation


def same_song_starts(length, start, count, out_steps, rng, min_gap=MIN_GAP_STEPS):
    """count start positions of other out_steps-step places of a song of length steps, each at least min_gap
    steps from start (fewer if the song has fewer), drawn without replacement."""
    starts = np.arange(length - out_steps + 1)
    starts = starts[np.abs(starts - start) >= min_gap]
    return rng.choice(starts, size=min(count, len(starts)), replace=False)


def same_song_queries(songs, in_steps, out_steps, scale, variance, stride=4, rng=None, count=DISTRACTORS):
    """Queries of every song of songs (datasets.SongsHeard) long enough for a window and count distractors: a
    window every stride steps, its real next steps, and count other places of the same song."""
    rng = np.random.default_rng(0) if rng is None else rng
    windows, candidates = [], []
    for first, length in zip(songs.starts, songs.lengths):
        for start in range(in_steps, length - out_steps + 1, stride):
            others = same_song_starts(length, start, count, out_steps, rng)
            if len(others) == count:
                windows.append(first + start - in_steps)
                candidates.append(first + np.concatenate([[start], others]))
    if not windows:
        return None
    window_steps = np.asarray(windows)[:, None] + np.arange(in_steps)
    candidate_steps = np.asarray(candidates)[:, :, None] + np.arange(out_steps)
    return Queries(songs.scores[window_steps], songs.features[window_steps], songs.scores[candidate_steps],
                   songs.features[candidate_steps], scale, variance)


def ranks(figures):
    """(queries, candidates) figures, the real next steps in column 0 -> (queries,) their rank, 1 = best;
    ties count half."""
    figures = np.asarray(figures, np.float64)
    better = np.sum(figures[:, 1:] > figures[:, :1], axis=1)
    tied = np.sum(figures[:, 1:] == figures[:, :1], axis=1)
    return 1.0 + better + 0.5 * tied


def summary(rank):
    """{top1, top5, mrr, queries} of (queries,) ranks."""
    rank = np.asarray(rank, np.float64)
    return {"top1": float(np.mean(rank <= 1)), "top5": float(np.mean(rank <= 5)),
            "mrr": float(np.mean(1.0 / rank)), "queries": int(len(rank))}


class Queries:
    """A batch of ranking queries: windows (Q, in_steps, latent) and their step features (Q, in_steps, SIZE);
    candidates (Q, K, out_steps, latent) and their features (Q, K, out_steps, SIZE), the real next steps first.
    scale (SIZE,): the spread of each step feature over a corpus, so features can be compared (step_features.
    comparable); variance (latent,): the corpus variance of each score number (the Gaussians' spread floor)."""

    def __init__(self, windows, window_features, candidates, candidate_features, scale, variance, window_ends=None,
                 candidate_starts=None):
        self.windows = np.asarray(windows, np.float32)
        self.window_features = np.asarray(window_features, np.float32)
        self.candidates = np.asarray(candidates, np.float32)
        self.candidate_features = np.asarray(candidate_features, np.float32)
        self.scale, self.variance = np.asarray(scale, np.float32), np.asarray(variance, np.float32)
        # Optional seams (step_features.seam_spectra): the last window step's end (Q, SEAM_BANDS) and each
        # candidate's first step's start (Q, K, SEAM_BANDS), for the seam reference.
        self.window_ends, self.candidate_starts = window_ends, candidate_starts

    def comparable_window_features(self):
        return step_features.comparable(self.window_features, self.scale)

    def comparable_candidate_features(self):
        return step_features.comparable(self.candidate_features, self.scale)


def gaussian_figures(candidates, mean, spread):
    """(Q, K) log-likelihood (constant dropped) of candidates (Q, K, steps, latent) under a Gaussian of mean and
    spread (Q, steps or 1, latent): minus half the mean squared error in spreads."""
    steps = candidates.shape[2]
    mean, spread = mean[:, None, :steps], spread[:, None, :steps]
    return -0.5 * np.mean(np.square((candidates - mean) / spread), axis=(2, 3))


def window_spread(queries):
    """(Q, 1, latent): each window's own std, floored as the score models' reference normalisation is."""
    return np.sqrt(np.var(queries.windows, axis=1, keepdims=True) + SCALE_FLOOR * queries.variance)


def last_step(queries):
    return gaussian_figures(queries.candidates, queries.windows[:, -1:], window_spread(queries))


def mean_step(queries):
    return gaussian_figures(queries.candidates, queries.windows.mean(axis=1, keepdims=True), window_spread(queries))


def continuity(queries):
    """Minus the distance of each candidate's first step to the window's last, in step features."""
    last = queries.comparable_window_features()[:, -1]  # (Q, SIZE)
    first = queries.comparable_candidate_features()[:, :, 0]  # (Q, K, SIZE)
    return -np.sum(np.square(first - last[:, None]), axis=-1)


def history_prediction(window_features, out_steps, context=CONTEXT_STEPS):
    """(Q, out_steps, SIZE): what followed the moment of each window (comparable features, (Q, steps, SIZE))
    whose previous `context` steps sound most like the window's last `context` steps."""
    q, steps, _ = window_features.shape
    last = window_features[:, steps - context:].reshape(q, -1)
    # A moment j is followed by steps j .. j + out_steps - 1 of the window, after its context j - context .. j - 1.
    moments = np.arange(context, steps - out_steps + 1)
    contexts = np.stack([window_features[:, j - context:j].reshape(q, -1) for j in moments], axis=1)
    best = moments[np.argmin(np.sum(np.square(contexts - last[:, None]), axis=-1), axis=1)]
    return np.stack([window_features[np.arange(q), best + k] for k in range(out_steps)], axis=1)


def history(queries):
    """Minus the distance of each candidate to what followed the most similar moment of the window."""
    out_steps = queries.candidates.shape[2]
    predicted = history_prediction(queries.comparable_window_features(), out_steps)  # (Q, out_steps, SIZE)
    return -np.sum(np.square(queries.comparable_candidate_features() - predicted[:, None]), axis=(2, 3))


def seam(queries):
    """Minus how far each candidate's first 23 ms are from carrying on the window's last 23 ms (step_features.
    seam_distance). A reference, not a simple scorer to beat: where the candidates are cut from the same
    recording as the window, the real next steps carry on its sound physically, whatever the music."""
    return -step_features.seam_distance(queries.window_ends[:, None], queries.candidate_starts)


BASELINES = {"last step": last_step, "mean step": mean_step, "continuity": continuity, "history": history}
