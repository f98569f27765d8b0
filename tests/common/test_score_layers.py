"""The score models' experts, their product, the contrastive loss and the model around each body
(common/score_layers.py, common/score_models.py), on windows made here whose next steps are known."""
import numpy as np
import pytest

import conv1d_creater
import lstm_creater
from common import models, ranking, score_models, step_features
from common.datasets import SongsHeard

SIZE = step_features.SIZE
GROUPS = step_features.group_of_each_feature()
IN_STEPS, OUT_STEPS = 40, 5


def periodic(steps, period=6, seed=0, phase=0):
    """(steps, SIZE): a pattern of `period` random steps played over and over, from `phase` on."""
    pattern = np.random.default_rng(seed).standard_normal((period, SIZE)).astype(np.float32)
    return pattern[(phase + np.arange(steps)) % period]


def noise(steps, seed=1):
    return np.random.default_rng(seed).standard_normal((steps, SIZE)).astype(np.float32)


def group_means(squares):
    """(..., SIZE) -> (..., groups) in NumPy: the mean of each group's features."""
    return np.stack([squares[..., GROUPS == group].mean(axis=-1) for group in range(GROUPS.max() + 1)], axis=-1)


def test_look_back_guesses_what_followed_a_repeated_pattern_and_its_track_record_says_so():
    from common.score_layers import LookBack

    look_back = LookBack(4, OUT_STEPS, GROUPS)
    song = periodic(IN_STEPS + OUT_STEPS)
    guess, record = (np.asarray(output) for output in look_back(song[None, :IN_STEPS]))
    assert guess.shape == (1, OUT_STEPS, SIZE) and record.shape == (1, OUT_STEPS, GROUPS.max() + 1)
    np.testing.assert_allclose(guess[0], song[IN_STEPS:], atol=1e-4)
    assert record.max() < 1e-6  # it guessed every one of the window's own later steps
    # On noise nothing repeats: its guesses of the window's own steps are off by about two variances (the
    # distance between two random steps). A look-back that saw the steps it guesses would score 0 here.
    _, noise_record = (np.asarray(output) for output in look_back(noise(IN_STEPS)[None]))
    assert noise_record.min() > 0.5 and 1.0 < noise_record.mean() < 3.0


def test_the_last_steps_track_record_is_how_far_the_window_moved_from_each_step():
    from common.score_layers import BACKTEST_FROM, LastStep

    last_step = LastStep(OUT_STEPS, GROUPS)
    held = np.tile(noise(1), (IN_STEPS, 1))[None]
    expert, record = (np.asarray(output) for output in last_step(held))
    np.testing.assert_array_equal(expert[0], np.tile(held[0, -1], (OUT_STEPS, 1)))
    assert np.abs(record).max() < 1e-6  # a held sound: the last step always right
    window = noise(IN_STEPS)
    expert, record = (np.asarray(output) for output in last_step(window[None]))
    np.testing.assert_array_equal(expert[0], np.tile(window[-1], (OUT_STEPS, 1)))
    asked = range(BACKTEST_FROM, IN_STEPS - OUT_STEPS + 1)
    expected = np.mean([group_means(np.square(window[j:j + OUT_STEPS] - window[j - 1])) for j in asked], axis=0)
    np.testing.assert_allclose(record[0], expected, rtol=1e-5)


def test_the_product_of_experts_trusts_the_expert_with_the_better_track_record():
    from common.score_layers import ProductOfExperts

    rng = np.random.default_rng(0)
    multipliers = rng.uniform(0.5, 2.0, SIZE).astype(np.float32)
    good, bad = rng.standard_normal((2, 1, OUT_STEPS, SIZE)).astype(np.float32)
    groups = GROUPS.max() + 1
    good_record = np.full((1, OUT_STEPS, groups), 0.01, np.float32)
    bad_record = np.full((1, OUT_STEPS, groups), 4.0, np.float32)
    body = np.zeros((1, OUT_STEPS, 2 * groups + SIZE), np.float32)  # an untrained body: the records alone
    floor = 0.02
    layer = ProductOfExperts(GROUPS, multipliers, floor=floor)
    prediction = np.asarray(layer([body, good, good_record, bad, bad_record]))
    mean, spread = prediction[..., :SIZE], prediction[..., SIZE:]
    # By hand: precisions 1 / (record + floor), the precision-weighted mean, back in the features' units.
    trust_good, trust_bad = 1 / (0.01 + floor), 1 / (4.0 + floor)
    expected = (trust_good * good + trust_bad * bad) / (trust_good + trust_bad) / multipliers
    np.testing.assert_allclose(mean, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(spread, np.broadcast_to(1 / (multipliers * np.sqrt(2 * (trust_good + trust_bad))),
                                                       spread.shape), rtol=1e-4)
    assert np.abs(mean * multipliers - good).max() < 0.01 * np.abs(bad - good).max()
    # Swapped records: the other expert wins. The body's mean correction is added in comparable units.
    swapped = np.asarray(layer([body, good, bad_record, bad, good_record]))[..., :SIZE] * multipliers
    assert np.abs(swapped - bad).max() < 0.01 * np.abs(bad - good).max()
    body[..., 2 * groups:] = 1.0
    corrected = np.asarray(layer([body, good, good_record, bad, bad_record]))[..., :SIZE]
    np.testing.assert_allclose(corrected, expected + 1 / multipliers, rtol=1e-4, atol=1e-5)


def wrapped(body_name, latent=4, scale=None, input_noise=0.1):
    """A score model around a tiny conv1d or lstm body, untrained (its body's last layer at zero)."""
    import keras

    keras.utils.set_random_seed(0)
    outputs = score_models.body_outputs()
    body = (conv1d_creater.build_body(IN_STEPS, OUT_STEPS, outputs, filters=4, kernel_size=3, dropout=0.3)
            if body_name == "conv1d" else lstm_creater.build_body(IN_STEPS, OUT_STEPS, outputs, units=4, dropout=0.3))
    scale = np.ones(SIZE, np.float32) if scale is None else scale
    return score_models.wrap_body(body, IN_STEPS, OUT_STEPS, latent, step_features.comparable_multipliers(scale),
                                  np.ones(latent), input_noise, body_name)


def periodic_queries(count=4, latent=4):
    """Windows of a 6-step pattern (a new one each, in the features' own units: level in dB and so on) whose
    real next steps go on with it, against the pattern from its five other phases and three random places."""
    rng = np.random.default_rng(5)
    window_features, candidate_features = [], []
    for number in range(count):
        song = 10 + 5 * periodic(IN_STEPS + OUT_STEPS + 6, seed=10 + number, phase=number)
        window_features.append(song[:IN_STEPS])
        others = [song[IN_STEPS + shift:IN_STEPS + shift + OUT_STEPS] for shift in range(1, 6)]
        places = 10 + 5 * rng.standard_normal((3, OUT_STEPS, SIZE))
        candidate_features.append(np.concatenate([song[None, IN_STEPS:IN_STEPS + OUT_STEPS], others, places]))
    window_features, candidate_features = np.array(window_features), np.array(candidate_features)
    scores = rng.standard_normal((count, IN_STEPS, latent))
    candidates = rng.standard_normal(candidate_features.shape[:3] + (latent,))
    return ranking.Queries(scores, window_features, candidates, candidate_features, np.full(SIZE, 5.0),
                           np.ones(latent))


def test_an_untrained_score_model_ranks_the_real_continuation_of_a_repeated_pattern_first():
    queries = periodic_queries()
    figures = {name: score_models.model_figures(wrapped(name, scale=queries.scale))(queries)
               for name in ("conv1d", "lstm")}
    for name, figure in figures.items():
        assert figure.shape == (4, 9)
        np.testing.assert_array_equal(ranking.ranks(figure), np.ones(4), err_msg=name)
    # Both bodies start at zero: until trained, the model is its experts alone, whatever the body.
    np.testing.assert_allclose(figures["conv1d"], figures["lstm"], rtol=1e-5)
    # Continuity alone (the last step's expert) does not know the pattern.
    assert ranking.summary(ranking.ranks(ranking.continuity(queries)))["top1"] < 1.0


def test_the_models_mean_is_the_look_back_in_the_features_own_units():
    queries = periodic_queries(count=1)
    model = wrapped("lstm", scale=queries.scale)
    prediction = score_models.predictions(model, queries.windows, queries.window_features)
    assert prediction.shape == (1, OUT_STEPS, 2 * SIZE)
    mean, spread = prediction[0, :, :SIZE], prediction[0, :, SIZE:]
    # In the features' own units, near the real next steps: the look-back guessed them, and the last step's
    # expert, whose track record on a 6-step pattern is poor, pulls the mean a little (a fifth) towards itself.
    real, others = queries.candidate_features[0, 0], queries.candidate_features[0, 1:]
    error, other_errors = np.abs(mean - real).mean(), np.abs(mean - others).mean(axis=(1, 2))
    assert error < 0.3 * np.abs(others - real).mean() and error < other_errors.min()
    assert np.all(spread > 0) and np.all(np.isfinite(spread))


def log_likelihoods_by_hand(candidates, mean, spread):
    return -0.5 * np.sum(np.square((candidates - mean[:, None]) / spread[:, None]), axis=(2, 3))


def test_the_contrastive_loss_by_hand_and_lower_when_the_real_next_steps_are_likelier():
    from common.score_layers import NextStepsContrast, next_steps_top1

    rng = np.random.default_rng(0)
    candidates = rng.standard_normal((3, 4, 2, SIZE)).astype(np.float32)  # 3 windows, real next steps first
    spread = np.full((3, 2, SIZE), 2.0, np.float32)

    def loss_and_top1(mean):
        prediction = np.concatenate([mean, spread], axis=-1)
        return (np.asarray(NextStepsContrast().call(candidates, prediction)),
                np.asarray(next_steps_top1(candidates, prediction)))

    at_real, top1_real = loss_and_top1(candidates[:, 0])
    at_other, top1_other = loss_and_top1(candidates[:, 2])
    assert np.all(at_real < at_other) and list(top1_real) == [1, 1, 1] and list(top1_other) == [0, 0, 0]
    # By hand: the window's own candidates, then the other windows' real next steps (its own real ones once, not
    # twice); softmax cross-entropy.
    for mean, loss in ((candidates[:, 0], at_real), (candidates[:, 2], at_other)):
        own = log_likelihoods_by_hand(candidates, mean, spread)
        others = log_likelihoods_by_hand(np.broadcast_to(candidates[None, :, 0], (3, 3, 2, SIZE)), mean, spread)
        logits = [np.concatenate([own[b], np.delete(others[b], b)]) for b in range(3)]
        expected = [np.log(np.sum(np.exp(row - row.max()))) + row.max() - row[0] for row in logits]
        np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-6)


def randomised(model, seed=0):
    """The model with every weight of its body drawn at random: the body's outputs matter."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ in ("Dense", "LSTM", "Conv1D"):
            layer.set_weights([rng.normal(0, 0.2, weights.shape) for weights in layer.get_weights()])
    return model


@pytest.mark.parametrize("name", ["conv1d", "lstm"])
def test_a_saved_score_model_loads_in_safe_mode_and_predicts_the_same(tmp_path, name):
    from common import score_layers  # noqa: F401  (registers the custom layers, as the generator does)

    queries = periodic_queries(count=3)
    model = randomised(wrapped(name, scale=queries.scale))
    untrained = wrapped(name, scale=queries.scale)
    before = score_models.predictions(model, queries.windows, queries.window_features)
    assert np.abs(before - score_models.predictions(untrained, queries.windows, queries.window_features)).max() > 0.01
    models.save_model(model, tmp_path / f"{name}.keras")
    loaded = models.load_model(tmp_path, name, name)
    assert [layer.__class__.__name__ for layer in loaded.layers] == [layer.__class__.__name__ for layer in model.layers]
    np.testing.assert_allclose(score_models.predictions(loaded, queries.windows, queries.window_features), before,
                               rtol=1e-6, atol=1e-6)


def traced_songs(lengths):
    """SongsHeard whose feature 0 is each step's place in the dataset, so that every window can be traced."""
    steps = np.arange(sum(lengths))
    features = np.zeros((len(steps), SIZE), np.float32)
    features[:, 0] = steps
    return SongsHeard(np.stack([steps, steps], axis=1).astype(np.float32), features,
                      np.zeros((len(steps), 2, step_features.SEAM_BANDS), np.float32),
                      np.repeat(np.arange(len(lengths)), lengths), np.cumsum([0] + lengths[:-1]), np.array(lengths))


def test_training_windows_come_with_their_real_next_steps_first_then_places_of_their_own_song():
    lengths = [70, 44, 60]  # the 44-step song is too short for a window
    songs = traced_songs(lengths)
    firsts = np.cumsum([0] + lengths[:-1])

    def batches(shuffle):
        data = score_models.contrastive_dataset(songs, IN_STEPS, OUT_STEPS, 6, 8, shuffle=shuffle, seed=1)
        return [(inputs["feature_window"].numpy()[..., 0], inputs["score_window"].numpy()[..., 0],
                 candidates.numpy()[..., 0]) for inputs, candidates in data]

    fixed = batches(shuffle=False)
    windows = np.concatenate([window for window, _, _ in fixed])
    candidates = np.concatenate([candidate for _, _, candidate in fixed])
    assert len(windows) == (70 - 45 + 1) + (60 - 45 + 1) and candidates.shape == (len(windows), 7, OUT_STEPS)
    np.testing.assert_array_equal(np.concatenate([scores for _, scores, _ in fixed]), windows)
    assert np.all(np.diff(windows, axis=1) == 1) and np.all(np.diff(candidates, axis=2) == 1)
    np.testing.assert_array_equal(candidates[:, 0, 0], windows[:, -1] + 1)
    song = np.searchsorted(firsts, windows[:, 0], side="right") - 1
    first, last = firsts[song][:, None], (firsts + lengths)[song][:, None]
    assert np.all((candidates[:, 1:, 0] >= first) & (candidates[:, 1:, -1] < last))
    assert np.abs(candidates[:, 1:, 0] - candidates[:, :1, 0]).min() >= ranking.MIN_GAP_STEPS
    assert batches(shuffle=False)[0][2].tolist() == fixed[0][2].tolist()  # validation: the same every epoch
    shuffled = score_models.contrastive_dataset(songs, IN_STEPS, OUT_STEPS, 6, 8, shuffle=True, seed=1)
    epochs = [np.concatenate([c.numpy()[..., 0] for _, c in shuffled]) for _ in range(2)]
    assert all(len(epoch) == 40 for epoch in epochs)  # whole batches of 8 while training
    assert not np.array_equal(epochs[0], epochs[1])  # new windows' order and distractors each epoch
