"""How real steps are joined (common/step_choice.py): runs, joins, the score model's part, the seed's beat."""
import numpy as np
import pytest

from common import step_features
from common.audio import SAMPLE_RATE, STEP_FRAMES, STEP_SECONDS
from common.beat_joins import MAX_SHIFT, beat_shifts, runs_in, seed_step_beats
from common.step_choice import AVOID_RECENT, BEAT_WEIGHT, OFF_GRID_COST, StepChoice

SIZE, BANDS = step_features.SIZE, step_features.SEAM_BANDS
SEED_STEPS, IN_STEPS, OUT_STEPS = 40, 12, 5


def random_pool(lengths, seed=0, latent=4):
    """A seed (source -1, the first lengths[0] rows) and songs (sources 0, 1, ...) of random steps that each sound
    a little like one of the seed's: scores, features, seams, sources."""
    rng = np.random.default_rng(seed)
    sources = np.repeat(np.arange(len(lengths)) - 1, lengths)
    sounds = rng.standard_normal((lengths[0], SIZE)).astype(np.float32)
    features = sounds[rng.integers(lengths[0], size=len(sources))] + 0.1 * rng.standard_normal((len(sources), SIZE))
    features[:lengths[0]] = sounds
    return (rng.standard_normal((len(sources), latent)).astype(np.float32), features.astype(np.float32),
            rng.standard_normal((len(sources), 2, BANDS)).astype(np.float32), sources)


def gaussians(count, rng):
    """predict's answer: a random Gaussian per window (n, OUT_STEPS, 2 * SIZE)."""
    mean = rng.standard_normal((count, OUT_STEPS, SIZE)).astype(np.float32)
    return np.concatenate([mean, np.ones_like(mean)], axis=-1)


def runs_of(history, sources):
    """The history cut into runs: consecutive steps of one source."""
    history = np.asarray(history)
    return [history[start:stop] for start, stop in runs_in(history, sources)]


@pytest.mark.parametrize("min_run, max_run", [(3, 6), (1, 1), (5, 5), (2, 9)])
def test_runs_last_min_run_to_max_run_steps_and_the_model_is_asked_once_per_extend(min_run, max_run):
    lengths = [SEED_STEPS, 30, 25, 9, 60, 14]
    scores, features, seams, sources = random_pool(lengths)
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(1), min_run=min_run,
                         max_run=max_run, out_steps=OUT_STEPS)
    rng, calls = np.random.default_rng(2), []

    def predict(windows):
        calls.append(windows.copy())
        return gaussians(len(windows), rng)

    for extend in range(60):
        before = list(chooser.history)
        new = chooser.extend(predict, IN_STEPS)
        assert len(calls) == extend + 1  # one model call per extend, for every place the run may leave at
        windows = calls[-1]
        assert windows.shape[1] == IN_STEPS and chooser.history == before + new
        # The windows are the last IN_STEPS steps played before each place the run may leave at, one step
        # apart; the join came after one of them.
        played = before + new[:-1]
        assert np.all(np.diff(windows[:, -1]) == 1) and windows[0, -1] >= before[-1]
        leaving = np.flatnonzero(windows[:, -1] == played[-1])
        assert len(leaving) == 1 and windows[leaving[0]].tolist() == played[-IN_STEPS:]
    history = chooser.history
    assert history[:SEED_STEPS] == list(range(SEED_STEPS))
    runs = runs_of(history, sources)
    assert len(runs[0]) == SEED_STEPS  # the seed's own run ends where the continuation starts
    assert max(len(run) for run in runs[1:]) <= max_run and chooser.longest_run <= max_run
    assert chooser.joins == 60 == len(runs) - 1
    has_next = np.append(sources[1:] == sources[:-1], False)
    position = SEED_STEPS
    for run in runs[1:-1]:  # the last run has just begun
        if len(run) < min_run:
            # It could not go on: its song ended, or its next step had been played in the 4 s before the run.
            last = run[-1]
            recent = history[max(0, position + 1 - AVOID_RECENT):position + 1]
            assert not has_next[last] or last + 1 in recent, (run, recent)
        position += len(run)
    assert sum(len(run) < min_run for run in runs[1:-1]) < len(runs) // 2  # most runs are not cut short
    # No step comes back within 4 s of being played.
    assert all(history[i] not in history[max(0, i - AVOID_RECENT):i] for i in range(SEED_STEPS, len(history)))


def test_with_model_weight_0_the_model_is_never_asked_and_joins_go_on_by_sound():
    scores, features, seams, sources = random_pool([SEED_STEPS, 30, 25, 60])

    def predict(windows):
        raise AssertionError("the score model was asked")

    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), min_run=2,
                         max_run=4, model_weight=0.0, out_steps=OUT_STEPS)
    new = [step for _ in range(20) for step in chooser.extend(predict, IN_STEPS)]
    assert chooser.joins == 20 and len(new) >= 20 + 19  # at least 2 steps a run after the first join
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), model_weight=0.0)
    assert len(chooser.extend(None, IN_STEPS)) == 1  # no model at all: the seed's run ends with a join


def test_the_same_random_generator_gives_the_same_choices():
    pool = random_pool([SEED_STEPS, 30, 25, 60])

    def choices(seed):
        chooser = StepChoice(*pool, SEED_STEPS, np.random.default_rng(seed), min_run=2, max_run=4, out_steps=OUT_STEPS)
        answers = np.random.default_rng(0)
        return [step for _ in range(15) for step in chooser.extend(lambda w: gaussians(len(w), answers), IN_STEPS)]

    assert choices(3) == choices(3) != choices(4)


def test_the_score_models_likeliest_join_wins_at_temperature_0_when_the_sound_cannot_tell(monkeypatch):
    """Two places start with the seed's natural next sound after the same second as the seed's last (S0 after
    S26..S29): song 0 goes on with S1..S4, song 1 with new sounds B0..B3. Context, seam and closeness to the seed
    cost them the same; only what comes after them differs, which only the score model judges."""
    monkeypatch.setattr("common.step_choice.SEED_END_SHARE", 0.0)  # a seed of unrelated sounds: its end would rule
    rng = np.random.default_rng(0)
    sounds, others = rng.standard_normal((30, SIZE)), rng.standard_normal((14, SIZE))
    song_0 = np.concatenate([sounds, sounds])  # pool rows 30..89: S0 again at row 60
    song_1 = np.concatenate([sounds, sounds[:1], others])  # rows 90..134: S0 again at row 120, then B0, B1, ...
    features = np.concatenate([sounds, song_0, song_1]).astype(np.float32)
    sound_of_row = np.concatenate([np.arange(30), np.arange(60) % 30, np.arange(31) % 30, 30 + np.arange(14)])
    seams = rng.standard_normal((44, 2, BANDS)).astype(np.float32)[sound_of_row]  # a sound's seams are its own
    sources = np.repeat([-1, 0, 1], [30, 60, 45])
    scores = rng.standard_normal((len(sources), 4)).astype(np.float32)
    for likeliest in (60, 120, 60):
        chooser = StepChoice(scores, features, seams, sources, 30, np.random.default_rng(0), temperature=0.0,
                             out_steps=OUT_STEPS)
        asked = []

        def predict(windows):  # the model expects exactly the next 5 steps of `likeliest`
            asked.append(windows)
            mean = features[likeliest:likeliest + OUT_STEPS][None].repeat(len(windows), axis=0)
            return np.concatenate([mean, np.full_like(mean, 0.5)], axis=-1)

        assert chooser.extend(predict, IN_STEPS) == [likeliest]
        assert len(asked) == 1 and asked[0].tolist() == [list(range(30 - IN_STEPS, 30))]
    # By sound alone the two places cost the same.
    costs = StepChoice(scores, features, seams, sources, 30, np.random.default_rng(0))._join_costs(list(range(30)),
                                                                                                   None)
    pool = list(StepChoice(scores, features, seams, sources, 30, np.random.default_rng(0)).pool)
    assert costs[pool.index(60)] == pytest.approx(costs[pool.index(120)], abs=1e-6)
    assert costs[pool.index(60)] < np.delete(costs, [pool.index(60), pool.index(120)]).min()


@pytest.mark.parametrize("beat, kept", [((0.5, 1.0), True), ((None, 0.0), False), ((0.5, 0.0), False)])
def test_seed_steps_off_the_seeds_beat_grid_are_avoided_when_the_seed_has_a_strong_beat(beat, kept):
    """A 0.5-s beat is 2 steps: a seed step c played at output step T keeps the grid of the last seed step c' played
    (at T') where (T - c) - (T' - c') is even. The sound of these random steps does not care."""
    scores, features, seams, sources = random_pool([SEED_STEPS, 40, 40], seed=3)
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), temperature=0.0,
                         min_run=2, max_run=4, model_weight=0.0, beat=beat, out_steps=OUT_STEPS)
    for _ in range(40):
        chooser.extend(None, IN_STEPS)
    history = np.asarray(chooser.history)
    is_seed = sources[history] == -1
    shifts = []
    for time in range(SEED_STEPS, len(history)):
        if is_seed[time] and history[time] != history[time - 1] + 1:  # a join to a seed step
            before = max(t for t in range(time) if is_seed[t])
            shifts.append((time - history[time]) - (before - history[before]))
    beats = np.array(shifts) * STEP_SECONDS / 0.5
    assert len(shifts) >= 10  # the seed is joined often enough to tell
    assert np.all(beats == np.round(beats)) == kept, shifts


def test_a_seed_step_costs_how_far_off_the_beat_it_stays_once_beat_joins_has_shifted_its_run():
    """The beat cost judges a join to the seed as beat_joins plays it: the run before was read shifted onto the
    beat (here by MAX_SHIFT, 0.1 of a beat short of it), and the joined run will be shifted by up to
    MAX_SHIFT too. Each seed step costs BEAT_WEIGHT * strength * (2 * what beat_shifts leaves off the beat)^2,
    the error measured by laying its run after the history and reading the shifts back."""
    scores, features, seams, sources = random_pool([SEED_STEPS, 40], seed=5)
    beat_seconds, period = 0.857, 0.857 * SAMPLE_RATE
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), temperature=0.0,
                         min_run=2, max_run=8, model_weight=0.0, beat=(beat_seconds, 1.0), out_steps=OUT_STEPS)
    history = list(range(SEED_STEPS)) + list(range(10, 18))  # a run read 8.75 beats after where it was

    def error_after_join(candidate):
        played = np.array(history + [candidate, candidate + 1])
        shifts = beat_shifts(played, sources, SEED_STEPS, beat_seconds)
        if len(shifts) == 1:  # the run goes on: played as it is
            return 0.0, shifts[0][2]
        (_, _, before), (start, _, shift) = shifts
        offset = (start - candidate) * STEP_FRAMES - ((SEED_STEPS - 10) * STEP_FRAMES - before)
        return abs(offset - period * np.round(offset / period) - shift) / period, before

    candidates = np.arange(0, SEED_STEPS - 1)
    errors = np.array([error_after_join(int(c))[0] for c in candidates])
    assert error_after_join(0)[1] == -MAX_SHIFT  # the run before was shifted as far as it goes
    assert np.sum(errors < 1e-3) >= 8 and errors.max() > 0.2  # some joins land on the beat as played, some far off
    np.testing.assert_allclose(chooser._off_beat_cost(history, candidates), BEAT_WEIGHT * (2 * errors) ** 2,
                               atol=1e-6)  # beat_shifts rounds shifts to whole frames


def test_nearest_joins_are_the_cheapest_places_with_a_whole_prediction_of_their_own_song(monkeypatch):
    monkeypatch.setattr("common.step_choice.SHORT_RUN_WEIGHT", 0.0)  # song ends would cost that too
    monkeypatch.setattr("common.step_choice.SEED_END_SHARE", 0.0)  # a seed of unrelated sounds: its end would rule
    rng = np.random.default_rng(0)
    seed = rng.standard_normal((30, SIZE))
    # Songs of 12 steps: the seed's last second (steps 26..29) and what would follow it (a step like the seed's
    # step 0) close half of them, where no whole 5-step prediction fits.
    songs = [np.concatenate([rng.standard_normal((7, SIZE)), seed[26:30], seed[:1]]) for _ in range(6)]
    songs += [rng.standard_normal((12, SIZE)) for _ in range(6)]
    features = np.concatenate([seed] + songs).astype(np.float32)
    features[30:] += 0.05 * rng.standard_normal(features[30:].shape)
    sources = np.repeat(np.arange(13) - 1, [30] + [12] * 12)
    seams = np.zeros((len(sources), 2, BANDS), np.float32)
    chooser = StepChoice(np.zeros((len(sources), 4), np.float32), features, seams, sources, 30,
                         np.random.default_rng(0), out_steps=OUT_STEPS)
    joins = chooser.nearest_joins(20)
    assert len(joins) == 20 == len(set(joins.tolist())) and set(joins.tolist()) <= set(chooser.pool.tolist())
    for join in joins:
        assert np.all(sources[join:join + OUT_STEPS] == sources[join]) and join + OUT_STEPS <= len(sources)
    assert not set(joins.tolist()) & set(range(30 - AVOID_RECENT, 31))  # nothing just played
    costs = dict(zip(chooser.pool.tolist(), chooser._join_costs(chooser.history, None)))
    assert [costs[join] for join in joins] == sorted(costs[join] for join in joins)
    whole = [step for step in chooser.pool if np.all(sources[step:step + OUT_STEPS] == sources[step])]
    left_out = sorted(set(whole) - set(joins.tolist()))
    assert max(costs[join] for join in joins) <= min(costs[step] for step in left_out)
    # The cheapest joins of all close the short songs, with no next steps to predict: they are not offered.
    cheapest = min(costs, key=costs.get)
    assert (cheapest - 30) % 12 == 11 and cheapest not in joins


def test_joins_stay_close_to_the_seed():
    # Song 0 sounds like the seed (source -1); song 1 follows on just as well, far from it.
    rng = np.random.default_rng(0)
    seed = rng.standard_normal((6, SIZE)).astype(np.float32)
    near = np.tile(seed, (5, 1)) + 0.1 * rng.standard_normal((30, SIZE)).astype(np.float32)
    features = np.concatenate([seed, near, near + 3.0])
    sources = np.repeat([-1, 0, 1], [6, 30, 30])
    seams = np.zeros((len(sources), 2, BANDS), np.float32)
    chooser = StepChoice(np.zeros((len(features), 4), np.float32), features, seams, sources, 6,
                         np.random.default_rng(0), min_run=1, max_run=2, model_weight=0.0)
    new = [step for _ in range(40) for step in chooser.extend(None, 6)]
    assert np.mean(sources[new] == 1) < 0.05 and np.mean(sources[new] == 0) > 0.5


def longest_repeat(history, sources=None, near=0, min_lag=AVOID_RECENT):
    """The most consecutive steps of a history that play again, in order, at least min_lag steps later; with
    sources, each step counted as played again where a step of its source within `near` of it is."""
    history, best = np.asarray(history), 0
    for lag in range(min_lag, len(history)):
        same = np.abs(history[lag:] - history[:-lag]) <= near
        if sources is not None:
            same &= sources[history[lag:]] == sources[history[:-lag]]
        edges = np.flatnonzero(np.diff(np.concatenate([[False], same, [False]]).astype(np.int8)))
        best = max(best, int(np.max(edges[1::2] - edges[::2], initial=0)))
    return best


@pytest.mark.parametrize("rules", ["both", "same leap", "none"])
def test_a_join_is_never_made_again_so_a_continuation_does_not_cycle_through_the_same_runs(rules, monkeypatch):
    """A greedy minute of the seed's own steps, where the same runs and joins always look best: without the rules
    it cycles, playing whole runs and their joins again; with the same-leap rule, no leap is made again from
    within SAME_JOIN_STEPS of an earlier exit, and nothing longer than a run repeats exactly, but runs one step
    off earlier ones replay 35 steps; with the replay rule too, at most REPLAY_STEPS."""
    from common.replays import REPLAY_STEPS, SAME_JOIN_STEPS

    if rules == "none":
        monkeypatch.setattr("common.replays.SAME_JOIN_STEPS", -1)  # no earlier join counts
    if rules != "both":
        monkeypatch.setattr("common.replays.REPLAY_STEPS", 10 ** 6)
    scores, features, seams, sources = random_pool([SEED_STEPS, 30], seed=2)
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), min_run=8,
                         max_run=10, model_weight=0.0, temperature=0.0, seed_steps_only=True)
    while len(chooser.history) < SEED_STEPS + 240:
        chooser.extend(None, IN_STEPS)
    runs = runs_of(chooser.history, sources)
    joins = [(run[-1], following[0] - run[-1]) for run, following in zip(runs, runs[1:])]  # (exit, leap)
    again = [(exit, leap) for number, (exit, leap) in enumerate(joins)
             if any(leap == earlier_leap and abs(exit - earlier_exit) <= SAME_JOIN_STEPS
                    for earlier_exit, earlier_leap in joins[:number])]
    repeat = longest_repeat(chooser.history[SEED_STEPS:])
    near_repeat = longest_repeat(chooser.history[SEED_STEPS:], sources, near=1)
    if rules == "none":
        assert len(again) > 5 and repeat > 100, (again, repeat)  # (205 steps: most of the minute)
    else:
        assert not again and repeat <= 10, (again, repeat)  # at most a run plays again
        assert (near_repeat <= REPLAY_STEPS) == (rules == "both"), near_repeat  # (35 steps with the one rule)


def test_a_join_that_would_replay_more_than_3_s_of_the_continuation_costs_as_much_as_a_join_made_again():
    """After the seed: runs 10-17, 26-33, 19-25, then 10-17 again (hedgewars' Fruit's loop). Joining 26 next would
    play 16 steps again (the same leap), and so would 25 or 27, one step off it, which the same-leap rule misses;
    28 or 5 play nothing again. After a run whose last 3 steps alone repeat (15-17), the same leap replays 3 + 8
    steps: no more than REPLAY_STEPS."""
    from common.replays import REPLAY_STEPS
    from common.step_choice import JOIN_AGAIN_COST

    scores, features, seams, sources = random_pool([SEED_STEPS, 30], seed=2)
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), min_run=8,
                         max_run=10, model_weight=0.0)
    seed = list(range(SEED_STEPS))
    runs = list(range(10, 18)) + list(range(26, 34)) + list(range(19, 26))
    played = seed + runs + list(range(10, 18))
    replays = set(chooser.pool[chooser._long_replays(played)].tolist())
    assert replays == {25, 26, 27}, replays
    assert set(chooser.pool[chooser._joins_made_before(played)].tolist()) == {26}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("common.replays.REPLAY_STEPS", 10 ** 6)
        without = chooser._join_costs(played, None)
    added = chooser._join_costs(played, None) - without
    np.testing.assert_allclose(added, JOIN_AGAIN_COST * np.isin(chooser.pool, [25, 26, 27]), atol=1e-9)
    assert 3 + 8 <= REPLAY_STEPS < 8 + 8  # the limit lies between the two cases
    shorter = seed + runs + list(range(35, 40)) + [15, 16, 17]
    assert not chooser._long_replays(shorter).any()
    assert set(chooser.pool[chooser._joins_made_before(shorter)].tolist()) == {26}
    assert not chooser._long_replays(seed + list(range(10, 18))).any()  # nothing 4 s back yet
    # A replay across an earlier join that skipped a step: 7-14, 16-22 went on as 7-22 would, one step off; after
    # 6-11, joining 13 or 14 would replay 6 + 9 steps of it (11 and 12 too, which the run may not join anyway: just
    # played, and its own next step); 10 would replay 4 + 4.
    skipped = seed + list(range(7, 15)) + list(range(16, 23)) + list(range(26, 34)) + list(range(35, 40)) + list(
        range(6, 12))
    assert set(chooser.pool[chooser._long_replays(skipped)].tolist()) == {11, 12, 13, 14}
    assert not chooser._joins_made_before(skipped).any()


def with_chroma(features, peak, rng):
    """features with each step's chroma a mix of one pitch class (share peak) and all twelve alike."""
    chroma = np.full((len(features), 12), (1 - peak) / 12)
    chroma[np.arange(len(features)), rng.integers(12, size=len(features))] += peak
    features = features.copy()
    features[:, step_features.MEL_BANDS:step_features.MEL_BANDS + 12] = chroma
    return features


@pytest.mark.parametrize("others_peak, gap", [(0.1, True), (0.9, False)])
def test_other_songs_steps_cost_how_much_less_tonal_they_are_only_where_the_seed_is_far_more_tonal(others_peak,
                                                                                                  gap):
    """A seed of single pitch classes (tonalness 1): other songs' steps of nearly all twelve alike (0.1 of one)
    cost TONAL_WEIGHT x their shortfall from it; other songs nearly as tonal (0.9 of one) cost nothing more."""
    from common.step_choice import TONAL_WEIGHT

    rng = np.random.default_rng(0)
    scores, features, seams, sources = random_pool([SEED_STEPS, 40, 40], seed=4)
    features = np.concatenate([with_chroma(features[:SEED_STEPS], 1.0, rng),
                               with_chroma(features[SEED_STEPS:], others_peak, rng)]).astype(np.float32)

    def costs(weight, monkeypatch):
        monkeypatch.setattr("common.step_choice.TONAL_WEIGHT", weight)
        chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0),
                             model_weight=0.0)
        return chooser, chooser.next_join_costs()

    with pytest.MonkeyPatch.context() as patch:
        chooser, without = costs(0.0, patch)
    with pytest.MonkeyPatch.context() as patch:
        _, with_it = costs(TONAL_WEIGHT, patch)
    others = ~chooser.is_seed[chooser.pool]
    shortfall = 1 - step_features.tonalness(features[chooser.pool[others]])
    assert np.all(with_it[~others] == without[~others])
    if gap:
        np.testing.assert_allclose(with_it[others] - without[others], TONAL_WEIGHT * shortfall, rtol=1e-4)
        assert np.all(shortfall > 0.5)
    else:
        assert np.all(with_it == without)


def test_inconsistent_pools_and_run_lengths_are_refused():
    scores, features, seams, sources = random_pool([10, 10])
    with pytest.raises(ValueError, match="one row per step"):
        StepChoice(scores, features, seams[:-1], sources, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="1 <= min_run <= max_run"):
        StepChoice(scores, features, seams, sources, 10, np.random.default_rng(0), min_run=5, max_run=4)


@pytest.mark.parametrize("short_run_weight, whole", [(None, True), (0.0, False)])
def test_joins_land_where_a_whole_run_can_follow_before_a_recent_step(short_run_weight, whole, monkeypatch):
    # A continuation of the seed's own 40 steps, 16 of them played in the last 4 s: a join to a step just
    # before a recent one would be cut after a step or two, a join a second. Such joins are avoided.
    if short_run_weight is not None:
        monkeypatch.setattr("common.step_choice.SHORT_RUN_WEIGHT", short_run_weight)
    scores, features, seams, sources = random_pool([SEED_STEPS, 30], seed=3)
    features[SEED_STEPS:] += 5.0  # the other song sounds far from the seed: joins stay in the seed
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), min_run=8,
                         max_run=10, model_weight=0.0)
    for _ in range(30):
        chooser.extend(None, IN_STEPS)
    lengths = [len(run) for run in runs_of(chooser.history, sources)[1:-1]]
    assert all(sources[step] == -1 for step in chooser.history)
    # Whole runs of 8, or a step short where a seed of 40 steps, 16 of them recent, leaves few places to join.
    assert (min(lengths) >= 7) == whole, lengths


@pytest.mark.parametrize("beat, skips_allowed", [((None, 0.0), False), ((0.5, 0.05), False), ((0.5, 1.0), True)])
def test_without_a_beat_joins_never_skip_a_few_steps_of_the_run_they_leave(beat, skips_allowed):
    """A join 1-3 steps past the step that would have followed is the same recording with a cut: on a seed
    without a beat (a sustained intro) it is heard as the stretch going on, so it is never chosen; on a beat it
    may be (it keeps the pulse). The seed's steps all sound alike here, so by sound such skips are as good as
    any join."""
    scores, features, seams, sources = random_pool([SEED_STEPS, 40], seed=5)
    features[:SEED_STEPS] = features[0] + 0.01 * np.random.default_rng(1).standard_normal((SEED_STEPS, SIZE))
    seams[:] = seams[0]
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), min_run=2,
                         max_run=4, model_weight=0.0, beat=beat, out_steps=OUT_STEPS)
    for _ in range(60):
        chooser.extend(None, IN_STEPS)
    history = np.asarray(chooser.history[SEED_STEPS - 1:])
    skips = np.diff(history) - 1
    same_source = sources[history[1:]] == sources[history[:-1]]
    skipped = np.sum(same_source & (skips >= 1) & (skips <= 3))
    assert (skipped > 0) == skips_allowed, skipped


def test_the_seed_counts_most_where_it_ended():
    # A seed that changes: 30 steps that sound like A, then 10 like B (its end); song 0 sounds like A, song 1
    # like B, each a little off. A's steps, the seed's own included, cost SEED_END_SHARE of their distance to B
    # on top: the continuation goes on from where the seed ended.
    from common.step_choice import SEED_END_SHARE, SEED_END_STEPS

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 1, SIZE)).astype(np.float32)
    seed = np.concatenate([np.repeat(a, 30, 0), np.repeat(b, SEED_END_STEPS, 0)])
    seed += 0.05 * rng.standard_normal(seed.shape).astype(np.float32)
    songs = np.concatenate([np.repeat(a, 30, 0), np.repeat(b, 30, 0)]) + 0.1 * rng.standard_normal((60, SIZE))
    features = np.concatenate([seed, songs]).astype(np.float32)
    sources = np.repeat([-1, 0, 1], [40, 30, 30])
    seams = np.zeros((len(sources), 2, BANDS), np.float32)
    chooser = StepChoice(np.zeros((len(features), 4), np.float32), features, seams, sources, 40,
                         np.random.default_rng(0), model_weight=0.0)
    by_step = dict(zip(chooser.pool.tolist(), chooser.distance_to_seed))
    comparable = chooser.features
    a_to_b = np.sum(np.square(comparable[29] - comparable[30:40]), axis=1).min()
    np.testing.assert_allclose(by_step[29], SEED_END_SHARE * a_to_b, rtol=1e-5)  # a seed step of A
    assert by_step[39] == 0.0  # the seed's last step
    song_a = np.mean([by_step[step] for step in range(44, 70)])
    song_b = np.mean([by_step[step] for step in range(74, 100)])
    assert song_b < 0.1 * song_a  # B's steps sound like the seed's end, A's like its older part


def test_seed_steps_only_never_joins_another_songs_step_even_where_no_seed_step_may_come_back_now():
    # The other songs' steps sound like the seed's (random_pool), so a minute of joins takes some of them; with
    # seed_steps_only none, also after a seed of 18 steps, whose 14 joinable steps were all played in the last 4 s.
    def minute(seed_steps=SEED_STEPS, **settings):
        scores, features, seams, sources = random_pool([seed_steps, 200, 200], seed=3)
        chooser = StepChoice(scores, features, seams, sources, seed_steps, np.random.default_rng(4),
                             out_steps=OUT_STEPS, **settings)
        rng = np.random.default_rng(5)
        while len(chooser.history) < seed_steps + 240:
            chooser.extend(lambda windows: gaussians(len(windows), rng), IN_STEPS)
        return np.asarray(chooser.history[seed_steps:]) >= seed_steps  # another song's step

    assert np.mean(minute()) > 0.2
    assert not np.any(minute(seed_steps_only=True))
    assert not np.any(minute(18, seed_steps_only=True))


def test_another_songs_step_costs_how_far_off_the_seeds_beat_it_lands_another_tempo_as_much_as_half_a_beat():
    """With each step's local beat known (step 4's song_beats), a step of another song of the seed's tempo is
    on its grid like a seed step: it costs what beat_shifts leaves off the beat once its run is shifted; a
    step of another tempo, or with no beat, as much as half a beat off. Without the songs' beats, their steps
    cost a phase at random."""
    scores, features, seams, sources = random_pool([SEED_STEPS, 40, 20, 20], seed=6)
    beat_seconds, period = 0.6, 0.6 * SAMPLE_RATE
    song_beats = np.concatenate([seed_step_beats(SEED_STEPS, beat_seconds, 0.8, 0.05),
                                 seed_step_beats(40, beat_seconds * 1.01, 0.7, 0.21),  # the seed's tempo
                                 seed_step_beats(20, 0.8, 0.7, 0.0),  # another tempo
                                 np.zeros((20, 3))])  # no beat
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), temperature=0.0,
                         min_run=2, max_run=8, model_weight=0.0, beat=(beat_seconds, 0.8), out_steps=OUT_STEPS,
                         step_beats=song_beats)
    history = list(range(SEED_STEPS)) + list(range(SEED_STEPS + 3, SEED_STEPS + 12))  # a run of the song
    song = np.arange(SEED_STEPS, SEED_STEPS + 39)

    def error_after_join(candidate):  # how far the joined run's beat lands from the grid as beat_joins plays it
        played = history + [candidate, candidate + 1]
        (_, _, before), (start, _, shift) = beat_shifts(played, sources, SEED_STEPS, beat_seconds,
                                                        grid=chooser.grid)
        grid_period, first_beat = chooser.grid[candidate]
        last_beat = (start - 1) * STEP_FRAMES - before + chooser.grid[played[start - 1], 1]
        offset = start * STEP_FRAMES + first_beat - last_beat
        return abs(offset - grid_period * np.round(offset / grid_period) - shift) / grid_period

    candidates = np.concatenate([np.arange(0, SEED_STEPS - 1), song[song != SEED_STEPS + 12]])
    errors = np.array([error_after_join(int(c)) for c in candidates])
    assert errors.max() > 0.2 and np.sum(errors < 1e-3) >= 8
    np.testing.assert_allclose(chooser._off_beat_cost(history, candidates), BEAT_WEIGHT * 0.8 * (2 * errors) ** 2,
                               atol=1e-5)
    off_grid = np.arange(SEED_STEPS + 40, SEED_STEPS + 80)  # another tempo, then no beat
    np.testing.assert_allclose(chooser._off_beat_cost(history, off_grid), OFF_GRID_COST * BEAT_WEIGHT * 0.8)
    # Without the songs' beats only the seed's steps are on its grid (the song's run before is not: seed steps
    # cost all of their offset from the last seed step's beat, unshifted).
    plain = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), temperature=0.0,
                       min_run=2, max_run=8, model_weight=0.0, beat=(beat_seconds, 0.8), out_steps=OUT_STEPS)
    np.testing.assert_allclose(plain._off_beat_cost(history, song), BEAT_WEIGHT * 0.8 / 3)
    offsets = (len(history) - np.arange(SEED_STEPS)) * STEP_FRAMES
    expected = BEAT_WEIGHT * 0.8 * (2 * (offsets - period * np.round(offsets / period)) / period) ** 2
    np.testing.assert_allclose(plain._off_beat_cost(history, np.arange(SEED_STEPS)), expected, atol=1e-5)


@pytest.mark.parametrize("bar_beats", [1, 3])
def test_joins_from_the_seed_to_the_seed_keep_the_beat_of_its_bar_where_it_has_one(bar_beats, monkeypatch):
    """A 0.5-s beat is 2 steps, a bar of 3 beats 6: a join from a seed step c' (played at T') to a seed step c
    (at T) lands on the same beat of the bar where (T - c) - (T' - c') is a multiple of 6 steps. Every beat of the
    bar is as good without a bar. (The bar alone: 60 joins of 2-4 steps use up a 40-step seed's few places on
    its bar, after which a join made again costs more than one off it, JOIN_AGAIN_COST.)"""
    monkeypatch.setattr("common.step_choice.JOIN_AGAIN_COST", 0.0)
    scores, features, seams, sources = random_pool([SEED_STEPS, 40, 40], seed=3)
    chooser = StepChoice(scores, features, seams, sources, SEED_STEPS, np.random.default_rng(0), temperature=0.0,
                         min_run=2, max_run=4, model_weight=0.0, beat=(0.5, 1.0), out_steps=OUT_STEPS,
                         bar_beats=bar_beats)
    for _ in range(60):
        chooser.extend(None, IN_STEPS)
    history = np.asarray(chooser.history)
    beats = []
    for time in range(SEED_STEPS, len(history)):
        if history[time] < SEED_STEPS and history[time - 1] < SEED_STEPS and history[time] != history[time - 1] + 1:
            beats.append(((time - history[time]) - (time - 1 - history[time - 1])) * STEP_SECONDS / 0.5)
    beats = np.array(beats)
    assert len(beats) >= 10 and np.all(beats == np.round(beats))  # on the beat either way
    on_the_bar = np.mean(beats % 3 == 0)
    assert on_the_bar == 1.0 if bar_beats == 3 else on_the_bar < 0.7, beats
