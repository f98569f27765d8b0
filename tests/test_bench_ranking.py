"""bench/ranking.py's own parts on tiny synthetic songs: the places it ranks, the three sets of distractors,
per-song figures and the table's target lines."""
import numpy as np

from bench import ranking as bench
from common import ranking, step_features
from common.datasets import SongsHeard
from common.step_choice import AVOID_RECENT

SIZE, BANDS = step_features.SIZE, step_features.SEAM_BANDS


def test_whole_places_are_where_count_steps_of_one_source_follow():
    sources = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    assert bench.whole_places(sources, 3).tolist() == [True, True, False, False, False, False, True, False, False]
    assert bench.whole_places(sources, 1).all()


def traced(offset, length, latent=2):
    """(scores, features, seams) of a song whose feature 0 and score 0 are offset + each step's number."""
    steps = offset + np.arange(length, dtype=np.float32)
    features = np.zeros((length, SIZE), np.float32)
    features[:, 0] = steps
    seams = np.stack([np.tile(steps[:, None], (1, BANDS)), -np.tile(steps[:, None], (1, BANDS))], axis=1)
    return np.stack([steps] * latent, axis=1), features, seams.astype(np.float32)


def test_places_of_are_out_steps_steps_from_each_start_with_the_first_steps_start_seam():
    scores, features, seams = traced(100, 30)
    place_scores, place_features, place_seams = bench.places_of(scores, features, seams, [3, 20])
    assert place_scores.shape == (2, bench.OUT_STEPS, 2) and place_features.shape == (2, bench.OUT_STEPS, SIZE)
    assert place_features[..., 0].tolist() == [list(range(103, 108)), list(range(120, 125))]
    np.testing.assert_array_equal(place_seams, seams[[3, 20], 0])


def test_the_three_sets_rank_each_real_next_against_places_of_the_same_song_of_nearest_joins_and_at_random():
    rng = np.random.default_rng(0)
    songs = {"a.ogg": traced(1000, 70), "b.ogg": traced(2000, 60)}
    for _, song_features, _ in songs.values():  # sound that is not only a counter, so joins can be told apart
        song_features[:, 1:] = rng.standard_normal((len(song_features), SIZE - 1))
    lengths = [30, 25, 40]
    parts = [traced(offset, length) for offset, length in zip((0, 100, 200), lengths)]
    pool = SongsHeard(*(np.concatenate(arrays) for arrays in zip(*parts)), np.repeat(np.arange(3), lengths),
                      np.array([0, 30, 55]), np.array(lengths))
    pool.features[:, 1:] = rng.standard_normal((len(pool.sources), SIZE - 1))
    queries = bench.build_queries(songs, pool, stride=8, distractors=6, rng=np.random.default_rng(1))
    # Windows at steps 40, 48, 56 and 64 of a.ogg (70 steps), 40 and 48 of b.ogg (60 steps).
    for set_name in bench.SETS:
        query, of_song = queries[set_name]
        assert of_song.tolist() == ["a.ogg"] * 4 + ["b.ogg"] * 2
        first = query.candidate_features[:, :, 0, 0]
        np.testing.assert_array_equal(first[:, 0], [1040, 1048, 1056, 1064, 2040, 2048])  # the real next first
        np.testing.assert_array_equal(query.window_features[:, -1, 0], first[:, 0] - 1)
        assert np.all(np.diff(query.candidate_features[..., 0], axis=2) == 1)  # whole places of one source
        np.testing.assert_array_equal(query.window_ends, -query.window_features[:, -1:, 0].repeat(BANDS, axis=1))
        np.testing.assert_array_equal(query.candidate_starts[..., 0], first)
        assert query.candidates.shape == (6, 7, bench.OUT_STEPS, 2)
    same = queries["same song"][0].candidate_features[:, 1:, 0, 0]
    real = queries["same song"][0].candidate_features[:, :1, 0, 0]
    assert np.all(same // 1000 == real // 1000) and np.abs(same - real).min() >= ranking.MIN_GAP_STEPS
    random = queries["random"][0].candidate_features[:, 1:, 0, 0]
    assert np.all(random < 1000) and all(len(set(row.tolist())) == 6 for row in random)  # training songs' places
    # The generator's nearest joins: places of the training songs or of the window itself (as a seed), never of
    # its last 4 s.
    joins = queries["joins"][0].candidate_features[:, 1:, 0, 0]
    assert all(len(set(row.tolist())) == 6 for row in joins)
    in_window = (joins >= real - bench.IN_STEPS) & (joins < real - AVOID_RECENT)
    assert np.all((joins < 1000) | in_window) and (joins < 1000).mean() > 0.5


def fake_results(top1s):
    """{row: {set: summary}} where row's top-1 on every set is top1s[row] and its per-song figures two songs'."""
    return {row: {set_name: {"top1": top1, "top5": 1.0, "mrr": 0.5, "queries": 4,
                             "per_song": {"x/a.ogg": top1, "x/b.ogg": 1 - top1}} for set_name in bench.SETS}
            for row, top1 in top1s.items()}


def test_the_table_passes_a_model_only_where_it_beats_the_best_simple_scorer():
    top1s = {"lstm": 0.40, "conv1d": 0.30, "last step": 0.10, "mean step": 0.05, "continuity": 0.35,
             "history": 0.20}
    text = bench.table("### header", fake_results(top1s), ["lstm", "conv1d"])
    lines = text.splitlines()
    assert lines[0] == "### header"
    assert "| lstm | 0.40 / 1.00 / 0.50 | 0.40 / 1.00 / 0.50 | 0.40 / 1.00 / 0.50 |" in lines
    assert "- lstm, same song: 0.40 vs continuity 0.35 (+0.05): pass" in lines
    assert "- conv1d, joins: 0.30 vs continuity 0.35 (-0.05): FAIL" in lines
    assert "- conv1d: a 0.30, b 0.70; worst a 0.30" in lines
    assert sum(line.endswith(": pass") for line in lines) == 2 and sum(line.endswith(": FAIL") for line in lines) == 2


def test_evaluate_gives_each_rows_figures_per_set_and_per_song():
    query = ranking.Queries(np.zeros((3, 4, 2)), np.zeros((3, 4, SIZE)), np.zeros((3, 5, 2, 2)),
                            np.zeros((3, 5, 2, SIZE)), np.ones(SIZE), np.ones(2))
    queries = {set_name: (query, np.array(["a", "a", "b"])) for set_name in bench.SETS}
    right_on_a = np.array([[1.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0], [0.0, 1, 1, 1, 1]])
    results = bench.evaluate(queries, {"scorer": lambda _: right_on_a})
    for set_name in bench.SETS:
        summary = results["scorer"][set_name]
        assert summary["top1"] == 2 / 3 and summary["queries"] == 3
        assert summary["per_song"] == {"a": 1.0, "b": 0.0}
