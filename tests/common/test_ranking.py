"""The "what comes next" test (common/ranking.py): ranks, summaries, distractors and the simple scorers."""
import numpy as np
import pytest

from common import ranking, step_features
from common.audio import SAMPLE_RATE, STEP_FRAMES
from common.datasets import SongsHeard


def test_ranks_count_better_candidates_and_half_the_ties():
    figures = np.array([[5.0, 1.0, 2.0, 3.0],  # the real next steps the likeliest: rank 1
                        [1.0, 2.0, 0.0, 3.0],  # two better: rank 3
                        [2.0, 2.0, 1.0, 2.0],  # two tied, none better: rank 1 + 2 / 2
                        [0.0, 0.0, 0.0, 0.0]])  # all tied: the middle of 4
    np.testing.assert_array_equal(ranking.ranks(figures), [1.0, 3.0, 2.0, 2.5])


def test_summary_of_ranks():
    summary = ranking.summary([1.0, 3.0, 2.0, 6.0, 1.5])
    assert summary == {"top1": pytest.approx(1 / 5), "top5": pytest.approx(4 / 5),
                       "mrr": pytest.approx((1 + 1 / 3 + 1 / 2 + 1 / 6 + 1 / 1.5) / 5), "queries": 5}


@pytest.mark.parametrize("start", [0, 10, 37])
def test_same_song_starts_keep_their_distance_and_never_repeat(start):
    rng = np.random.default_rng(start)
    for _ in range(20):
        starts = ranking.same_song_starts(42, start, 20, 5, rng)
        assert len(starts) == 20 and len(set(starts.tolist())) == 20
        assert np.all(np.abs(starts - start) >= ranking.MIN_GAP_STEPS)
        assert starts.min() >= 0 and starts.max() <= 42 - 5
    # Fewer places than asked for: all of them, once each (a 20-step song has 16 places of 5 steps).
    assert sorted(ranking.same_song_starts(20, 10, 50, 5, rng).tolist()) == [0, 1, 2]


def queries_of(window_features, candidate_features, windows=None, candidates=None, **seams):
    """ranking.Queries of step features alone (scores of zeros unless given), every feature's spread 1."""
    window_features, candidate_features = np.asarray(window_features), np.asarray(candidate_features)
    windows = np.zeros(window_features.shape[:2] + (3,)) if windows is None else windows
    candidates = np.zeros(candidate_features.shape[:3] + (3,)) if candidates is None else candidates
    return ranking.Queries(windows, window_features, candidates, candidate_features, np.ones(step_features.SIZE),
                           np.ones(np.shape(windows)[-1]), **seams)


def repeating_pattern_queries(count=6, in_steps=40, out_steps=5, period=6, seed=0):
    """Windows that play a 6-step pattern over and over (a new pattern and phase each); the real next steps go on
    with it; the distractors are the pattern from every other phase (one of them starts with the window's last
    step, continuity's choice) and places of random steps."""
    rng = np.random.default_rng(seed)
    window_features, candidate_features = [], []
    for _ in range(count):
        pattern = rng.standard_normal((period, step_features.SIZE)).astype(np.float32)
        phase = rng.integers(period)
        song = pattern[(phase + np.arange(in_steps + out_steps + period)) % period]
        window_features.append(song[:in_steps])
        others = [song[in_steps + shift:in_steps + shift + out_steps] for shift in range(-1, period - 1) if shift]
        noise = rng.standard_normal((6, out_steps, step_features.SIZE)).astype(np.float32)
        candidate_features.append(np.concatenate([song[None, in_steps:in_steps + out_steps], others, noise]))
    return queries_of(window_features, candidate_features)


def test_history_predicts_what_followed_a_repeated_pattern():
    queries = repeating_pattern_queries()
    predicted = ranking.history_prediction(queries.comparable_window_features(), 5)
    np.testing.assert_allclose(predicted, queries.comparable_candidate_features()[:, 0], atol=1e-6)
    assert np.all(ranking.ranks(ranking.history(queries)) == 1)
    # Continuity prefers the distractor that starts with the window's last step, the pattern one step back.
    assert np.all(np.argmax(ranking.continuity(queries), axis=1) == 1)
    assert ranking.summary(ranking.ranks(ranking.continuity(queries)))["top1"] == 0.0


def test_continuity_picks_the_candidate_whose_first_step_is_the_windows_last():
    rng = np.random.default_rng(1)
    window_features = rng.standard_normal((4, 8, step_features.SIZE))
    candidate_features = rng.standard_normal((4, 10, 3, step_features.SIZE))
    planted = np.array([0, 3, 9, 5])
    candidate_features[np.arange(4), planted, 0] = window_features[:, -1]
    figures = ranking.continuity(queries_of(window_features, candidate_features))
    assert figures.shape == (4, 10) and np.array_equal(np.argmax(figures, axis=1), planted)
    assert np.allclose(figures[np.arange(4), planted], 0.0)


def test_last_step_and_mean_step_gaussians_in_the_score():
    rng = np.random.default_rng(2)
    windows = rng.standard_normal((3, 8, 4))
    candidates = rng.standard_normal((3, 6, 2, 4))
    candidates[:, 2] = windows[:, -1:]  # the last step held
    candidates[:, 4] = windows.mean(axis=1, keepdims=True)  # the window's mean step held
    queries = queries_of(np.zeros((3, 8, step_features.SIZE)), np.zeros((3, 6, 2, step_features.SIZE)), windows,
                         candidates)
    assert np.all(np.argmax(ranking.last_step(queries), axis=1) == 2)
    assert np.all(np.argmax(ranking.mean_step(queries), axis=1) == 4)
    # By hand: minus half the mean squared error in units of each window's own std (floored).
    spread = np.sqrt(windows.var(axis=1, keepdims=True) + ranking.SCALE_FLOOR)
    expected = -0.5 * np.mean(np.square((candidates - windows[:, None, -1:]) / spread[:, None]), axis=(2, 3))
    np.testing.assert_allclose(ranking.last_step(queries), expected, rtol=1e-5)


def test_the_seam_reference_ranks_the_physically_continuous_candidate_first():
    # A glide over four octaves in 3 s: where one step ends, the next carries on the same pitch; every other
    # place of the song, and steady tones of other pitches, start somewhere else.
    time = np.arange(12 * STEP_FRAMES) / SAMPLE_RATE
    phase = 2 * np.pi * 200 * 3 / np.log(16) * (16 ** (time / 3) - 1)  # 200 Hz -> 3200 Hz
    mono = 0.3 * np.sin(phase) + 0.1 * np.sin(2 * phase)
    song = np.stack([mono, mono], axis=1).astype(np.float32).reshape(12, STEP_FRAMES, 2)
    tones = [0.3 * np.sin(2 * np.pi * hz * time[:STEP_FRAMES]) for hz in (220, 440, 880)]
    tone_steps = np.stack([np.stack([tone, tone], axis=1) for tone in tones]).astype(np.float32)
    seams, tone_seams = step_features.seam_spectra(song), step_features.seam_spectra(tone_steps)
    ends = (3, 5, 8)  # windows ending at these steps; their real next steps start one later
    window_ends = seams[list(ends), 1]
    candidate_starts = np.stack([np.concatenate([seams[[end + 1], 0], seams[[0, 2, 7, 10, 11], 0], tone_seams[:, 0]])
                                 for end in ends])
    no_features = np.zeros((3, 4, step_features.SIZE)), np.zeros((3, 9, 2, step_features.SIZE))
    queries = queries_of(*no_features, window_ends=window_ends, candidate_starts=candidate_starts)
    np.testing.assert_array_equal(ranking.ranks(ranking.seam(queries)), [1.0, 1.0, 1.0])
    # Against other ends (steps 0, 1 and 9) the same candidates start where the window did not stop.
    shifted = queries_of(*no_features, window_ends=seams[[0, 1, 9], 1], candidate_starts=candidate_starts)
    assert np.all(ranking.ranks(ranking.seam(shifted)) > 1.0)


def test_same_song_queries_rank_each_windows_real_next_steps_against_places_of_its_own_song():
    lengths = np.array([60, 30, 50])  # the 30-step song has no window of 40 + 5
    steps = np.arange(lengths.sum())
    # Feature 0 of each step is its place in the dataset, so every candidate can be traced back.
    features = np.zeros((len(steps), step_features.SIZE), np.float32)
    features[:, 0] = steps
    songs = SongsHeard(np.stack([steps, -steps], axis=1).astype(np.float32), features,
                       np.zeros((len(steps), 2, step_features.SEAM_BANDS), np.float32),
                       np.repeat(np.arange(3), lengths), np.array([0, 60, 90]), lengths)
    queries = ranking.same_song_queries(songs, 40, 5, np.ones(step_features.SIZE), np.ones(2), stride=4)
    # Windows every 4 steps from step 40 on, while 5 next steps fit: 40..52 in the first song, 40 and 44 in the last.
    assert queries.windows.shape == (6, 40, 2) and queries.candidates.shape == (6, ranking.DISTRACTORS + 1, 5, 2)
    window_ends = queries.window_features[:, -1, 0]
    np.testing.assert_array_equal(window_ends, [39, 43, 47, 51, 90 + 39, 90 + 43])
    np.testing.assert_array_equal(queries.windows[:, :, 0], queries.window_features[:, :, 0])
    places = queries.candidate_features[..., 0]  # (queries, candidates, 5)
    assert np.all(np.diff(places, axis=2) == 1)  # each candidate is 5 consecutive steps
    np.testing.assert_array_equal(places[:, 0, 0], window_ends + 1)  # the real next steps first
    first = np.where(window_ends < 60, 0, 90)[:, None]
    length = np.where(window_ends < 60, 60, 50)[:, None]
    assert np.all((places[:, :, 0] >= first) & (places[:, :, -1] < first + length))  # within the window's song
    gaps = np.abs(places[:, 1:, 0] - places[:, :1, 0])
    assert gaps.min() >= ranking.MIN_GAP_STEPS
    assert all(len(set(row.tolist())) == ranking.DISTRACTORS for row in places[:, 1:, 0])
    assert ranking.same_song_queries(songs._replace(lengths=np.array([44, 44, 44])), 40, 5, np.ones(53),
                                     np.ones(2)) is None
