"""bench/ranking.py's own parts on tiny synthetic songs: the places it ranks, the three sets of distractors,
per-song figures and the table's target lines."""
import numpy as np

import pytest

from bench import ranking as bench
from common import models, ranking, step_features
from common.datasets import SongsHeard
from common.step_choice import AVOID_RECENT, StepChoice

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
    songs = {"a.ogg": (*traced(1000, 70), np.zeros(0)), "b.ogg": (*traced(2000, 60), np.zeros(0))}
    for _, song_features, _, _ in songs.values():  # sound that is not only a counter, so joins can be told apart
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


def random_songs(rng, lengths, offset=0):
    """(score, features, seams, onsets) of songs of random steps with one seam throughout (no cue there) and no
    onsets (no beat)."""
    return {f"{offset + number}.ogg": (rng.standard_normal((length, 2)).astype(np.float32),
                                       rng.standard_normal((length, SIZE)).astype(np.float32),
                                       np.zeros((length, 2, BANDS), np.float32), np.zeros(length * 20, np.float32))
            for number, length in enumerate(lengths)}


def pool_of(songs):
    lengths = [len(song[0]) for song in songs.values()]
    return SongsHeard(*(np.concatenate([song[part] for song in songs.values()]) for part in range(3)),
                      np.repeat(np.arange(len(lengths)), lengths), np.cumsum([0] + lengths[:-1]), np.array(lengths))


def test_seed_places_closer_counts_the_seeds_joinable_places_that_sound_closer_to_the_real_next():
    rng = np.random.default_rng(0)
    (score, features, seams, _), = random_songs(rng, [bench.IN_STEPS]).values()
    pool = pool_of(random_songs(rng, [30, 30], offset=1))
    chooser = StepChoice.after_seed(score, features, seams, pool, rng, out_steps=bench.OUT_STEPS)
    costs = chooser.next_join_costs()
    real_next = features[10:10 + bench.OUT_STEPS]  # the seed's own place at step 10, exactly
    closer = bench.seed_places_closer(chooser, real_next, costs)
    rows = {int(step): row for row, step in enumerate(chooser.pool)}
    joinable_seed = [step for step in range(bench.IN_STEPS) if step in rows and costs[rows[step]] < 1e8]
    assert closer[rows[10]] == 0.0  # no place is closer than the real next itself
    assert sorted(closer[rows[step]] for step in joinable_seed) == [k / len(joinable_seed)
                                                                    for k in range(len(joinable_seed))]
    assert np.all((closer >= 0) & (closer <= 1))


@pytest.fixture
def steering_case(monkeypatch):
    """Test songs and a pool of random steps, and a stand-in for the score models: "oracle" predicts each window's
    real next steps, "misled" another window's."""
    rng = np.random.default_rng(3)
    songs = random_songs(rng, [90, 80])
    pool = pool_of(random_songs(rng, [60, 60, 60], offset=2))
    stride = 16
    for _, features, _, _ in songs.values():  # each real next sounds like a place 7.5 s before it, which the
        for start in range(bench.IN_STEPS, len(features) - bench.OUT_STEPS + 1, stride):  # sound cannot tell
            features[start:start + bench.OUT_STEPS] = (features[start - 30:start - 30 + bench.OUT_STEPS]
                                                       + 0.1 * rng.standard_normal((bench.OUT_STEPS, SIZE)))
    real_next = np.stack([song[1][start:start + bench.OUT_STEPS] for song in songs.values()
                          for start in range(bench.IN_STEPS, len(song[0]) - bench.OUT_STEPS + 1, stride)])

    def predict(network, inputs):
        mean = real_next if network == "oracle" else np.roll(real_next, 1, axis=0)
        return np.concatenate([mean, np.full_like(mean, 0.3)], axis=-1)

    monkeypatch.setattr(models, "inference", predict)
    return songs, pool, stride


def test_steering_draws_the_first_join_closer_to_the_real_next_only_with_a_model_that_knows_it(steering_case):
    songs, pool, stride = steering_case
    steered = bench.steering(songs, pool, {"oracle": "oracle", "misled": "misled"}, stride)
    assert set(steered) == {"sound alone", "oracle", "misled"}
    assert set(steered["oracle"]["per_song"]) == set(songs)
    # By sound the join is about as close as a place at random; knowing the real next, far closer.
    assert 0.3 < steered["sound alone"]["mean"] < 0.7
    assert steered["oracle"]["mean"] < 0.5 * steered["sound alone"]["mean"]
    assert 0.35 < steered["misled"]["mean"] < 0.65  # a model that expects another window's future: no closer
    oracle, sound = steered["oracle"]["mean"], steered["sound alone"]["mean"]
    lines = bench.steering_table(steered, stride).splitlines()
    assert steered["sound alone"]["windows"] == 6  # 40, 56, 72 of a 90-step song; 40, 56, 72 of an 80-step one
    assert lines[0].startswith("### Steering: the generator's first join after 6 windows (every 4 s)")
    assert f"| sound alone | {sound:.3f} | " in "\n".join(lines)
    assert f"- oracle: {oracle:.3f} vs {sound:.3f} ({oracle - sound:+.3f}): closer" in lines


def test_listening_shares_divide_an_untrained_model_by_its_experts_track_records():
    """Untrained, each expert is trusted as 1 / (its track record + floor 0.02) per predicted step: on a window of
    one repeated step both guess it exactly (half each); on a window that alternates two steps 4 apart, the
    look-back guesses all 5 next steps exactly, the last step the 2nd and 4th (its record on the others: 4^2).
    Every feature is trusted alike there, so each group's share is its size's."""
    import lstm_creater
    from common import score_models

    in_steps, out_steps, latent = bench.IN_STEPS, bench.OUT_STEPS, 3
    body = lstm_creater.build_body(in_steps, out_steps, score_models.body_outputs(), units=4)
    model = score_models.wrap_body(body, in_steps, out_steps, latent, np.ones(SIZE, np.float32), np.ones(latent),
                                   0.0, "lstm")
    scores = np.zeros((2, in_steps, latent), np.float32)
    features = np.ones((2, in_steps, SIZE), np.float32)
    features[1, ::2] = 5.0  # steps 5, 1, 5, 1, ...
    held, alternating = (bench.listening_shares(model, scores[i:i + 1], features[i:i + 1]) for i in range(2))
    sizes = {group: size / SIZE for group, size in step_features.GROUPS.items()}
    assert held["look-back"] == pytest.approx(0.5, abs=1e-4) and held["last step"] == pytest.approx(0.5, abs=1e-4)
    exact, wrong = 1 / 0.02, 1 / (16 + 0.02)
    assert alternating["look-back"] == pytest.approx(5 * exact / (5 * exact + 2 * exact + 3 * wrong), abs=1e-4)
    assert alternating["look-back"] + alternating["last step"] == pytest.approx(1)
    for shares in (held, alternating):
        assert {group: shares[group] for group in sizes} == pytest.approx(sizes, abs=1e-3)
    table = bench.listening_table({"lstm": held})
    assert "| lstm | 0.500 | 0.500 |" in table and f"| {sizes['log_mel']:.3f} |" in table.splitlines()[-1]
