"""The custom pieces saved score models need to load: how a window is compared with itself, the experts whose
product is the prediction, and the contrastive loss they are trained on.

A score model predicts a Gaussian over what each of the next out_steps steps sounds like (the step features
of common/step_features.py: log-mel, chroma, envelope, level), as a product of experts: each expert guesses the
next steps' features and the model decides, per window, step and group of features, how far to trust each
guess (its precision), and corrects the mean. The experts:
  - look-back (LookBack): what followed the moments of the window whose previous steps sound most like the
    window's last steps: repetition, as a factor oracle or an attention head uses it;
  - the window's last step (continuity) and its mean step (the song's sound).
Imported by common/score_models.py (training) and music_generator.py (before loading a score model), never at
script start-up, so --help stays fast and TensorFlow's start-up lines stay hidden (see common/cli.py).
"""
import keras
import numpy as np
from keras import layers, ops

SCALE_FLOOR = 0.01  # times the training variance: keeps a silent window from dividing by zero (-20 dB floor)
LOG_PRECISION_LIMITS = (-8.0, 8.0)
MASKED = 1e4  # subtracted from a logit that must not count (a window's own real next steps among the others')


@keras.saving.register_keras_serializable(package="musicgen")
class ContextNormalisation(layers.Layer):
    """[window, reference] (batch, steps, latent) -> (normalised window, reference mean, reference scale).

    Reversible instance normalisation (RevIN): every dimension of the window is measured from the reference's
    own mean, in units of its own std; both (batch, 1, latent). The std has a floor of SCALE_FLOOR times the
    training variance, so a constant or silent reference does not divide by zero.
    """

    def __init__(self, variance, floor=SCALE_FLOOR, **kwargs):
        super().__init__(**kwargs)
        self.variance_values, self.floor = list(map(float, variance)), floor

    def call(self, inputs):
        window, reference = inputs
        floor = self.floor * ops.convert_to_tensor(self.variance_values, dtype=window.dtype)
        centre = ops.mean(reference, axis=1, keepdims=True)
        scale = ops.sqrt(ops.mean(ops.square(reference - centre), axis=1, keepdims=True) + floor)
        return (window - centre) / scale, centre, scale

    def compute_output_spec(self, inputs):
        window, _ = inputs
        statistic_shape = (window.shape[0], 1, window.shape[2])
        return (keras.KerasTensor(window.shape, window.dtype), keras.KerasTensor(statistic_shape, window.dtype),
                keras.KerasTensor(statistic_shape, window.dtype))

    def get_config(self):
        return {**super().get_config(), "variance": self.variance_values, "floor": self.floor}


@keras.saving.register_keras_serializable(package="musicgen")
class WindowMean(layers.Layer):
    """(batch, steps, channels) -> (batch, 1, channels): the mean step of the window."""

    def call(self, window):
        return ops.mean(window, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="musicgen")
class NewestFirst(layers.Layer):
    """(batch, steps, channels) -> the same with the steps in reverse order, the newest first."""

    def call(self, window):
        return ops.flip(window, axis=1)


@keras.saving.register_keras_serializable(package="musicgen")
class ComparableFeatures(layers.Layer):
    """Step features (..., SIZE) -> the same in comparable units: times multipliers (SIZE,) (step_features.
    comparable: 1 / the corpus spread, times each group's weight), so that squared distances weigh notes,
    spectrum, envelope and level as the generator does."""

    def __init__(self, multipliers, **kwargs):
        super().__init__(**kwargs)
        self.multipliers = [float(value) for value in multipliers]

    def call(self, features):
        return features * ops.convert_to_tensor(self.multipliers, dtype=features.dtype)

    def get_config(self):
        return {**super().get_config(), "multipliers": self.multipliers}


BACKTEST_FROM = 16  # a window's own steps from here on are predicted by each expert to measure its track record


def group_means(squares, groups):
    """(..., SIZE) -> (..., groups): the mean of each group of features (groups: each feature's group number)."""
    of_group = np.eye(max(groups) + 1, dtype=np.float32)[groups]
    return ops.matmul(squares, ops.convert_to_tensor(of_group / of_group.sum(axis=0)))


@keras.saving.register_keras_serializable(package="musicgen")
class LookBack(layers.Layer):
    """Comparable features (batch, in_steps, SIZE) -> [expert (batch, out_steps, SIZE), track record (batch,
    out_steps, groups)].

    The expert: every moment j of the window whose `context` previous steps and out_steps next steps lie inside
    it is weighed by how close its previous steps sound to the window's last `context` steps (a squared
    distance with a learned weight per step and group of features, times a learned sharpness, through a
    softmax); the guess is the weighted mean of what followed each moment: repetition, as a factor oracle or
    an attention head uses it. The track record: the mean squared error per step and group with which the
    same look-back, from the steps before each of the window's own steps from BACKTEST_FROM on, guessed them.
    """

    def __init__(self, context, out_steps, groups, sharpness=10.0, **kwargs):
        super().__init__(**kwargs)
        self.context, self.out_steps, self.sharpness = int(context), int(out_steps), float(sharpness)
        self.groups = [int(group) for group in groups]

    def build(self, shape):
        self.log_sharpness = self.add_weight(shape=(), name="log_sharpness",
                                             initializer=keras.initializers.Constant(np.log(self.sharpness)))
        self.key_log_weight = self.add_weight(shape=(self.context, max(self.groups) + 1), initializer="zeros",
                                              name="key_log_weight")

    def call(self, features):
        steps, size, context, out_steps = features.shape[1], features.shape[2], self.context, self.out_steps
        moments = np.arange(context, steps - out_steps + 1)  # whose next out_steps steps lie inside the window
        asked = np.append(np.arange(BACKTEST_FROM, steps - out_steps + 1), steps)  # the backtest's, then now
        weight = ops.reshape(ops.exp(ops.take(self.key_log_weight, self.groups, axis=1)), (1, 1, context * size))

        def contexts(ends):  # (batch, len(ends), context * SIZE): the context steps before each end
            before = (np.asarray(ends)[:, None] - context + np.arange(context)[None]).reshape(-1)
            return ops.reshape(ops.take(features, before, axis=1), (-1, len(ends), context * size))

        known, wanted = contexts(moments), contexts(asked)
        distance = (ops.sum(ops.square(wanted) * weight, axis=-1)[..., None]  # (batch, asked, moments)
                    - 2.0 * ops.einsum("bac,bmc->bam", wanted * weight, known)
                    + ops.sum(ops.square(known) * weight, axis=-1)[:, None]) / context
        # A moment may guess a step only if everything it knows came before that step.
        allowed = (moments[None, :] + out_steps <= asked[:, None]).astype(np.float32)
        logits = -ops.exp(self.log_sharpness) * distance - 1e9 * (1.0 - allowed)
        attention = ops.softmax(logits, axis=-1)
        after = (moments[:, None] + np.arange(out_steps)[None]).reshape(-1)
        followed = ops.reshape(ops.take(features, after, axis=1), (-1, len(moments), out_steps * size))
        guesses = ops.reshape(ops.einsum("bam,bmx->bax", attention, followed), (-1, len(asked), out_steps, size))
        actual = ops.stack([features[:, j:j + out_steps] for j in asked[:-1]], axis=1)
        record = ops.mean(group_means(ops.square(actual - guesses[:, :-1]), self.groups), axis=1)
        return guesses[:, -1], record

    def compute_output_spec(self, features):
        return (keras.KerasTensor((features.shape[0], self.out_steps, features.shape[2]), features.dtype),
                keras.KerasTensor((features.shape[0], self.out_steps, max(self.groups) + 1), features.dtype))

    def get_config(self):
        return {**super().get_config(), "context": self.context, "out_steps": self.out_steps,
                "groups": self.groups, "sharpness": self.sharpness}


@keras.saving.register_keras_serializable(package="musicgen")
class LastStep(layers.Layer):
    """Comparable features (batch, in_steps, SIZE) -> [expert: the last step, repeated for out_steps; its track
    record (batch, out_steps, groups): how far each of the window's steps from BACKTEST_FROM on was from the
    step out_steps, out_steps - 1, ... before it]: continuity."""

    def __init__(self, out_steps, groups, **kwargs):
        super().__init__(**kwargs)
        self.out_steps, self.groups = int(out_steps), [int(group) for group in groups]

    def call(self, features):
        steps, out_steps = features.shape[1], self.out_steps
        asked = np.arange(BACKTEST_FROM, steps - out_steps + 1)
        actual = ops.stack([features[:, j:j + out_steps] for j in asked], axis=1)
        previous = ops.stack([features[:, j - 1:j] for j in asked], axis=1)  # (batch, asked, 1, SIZE)
        record = ops.mean(group_means(ops.square(actual - previous), self.groups), axis=1)
        return ops.repeat(features[:, -1:], out_steps, axis=1), record

    def compute_output_spec(self, features):
        return (keras.KerasTensor((features.shape[0], self.out_steps, features.shape[2]), features.dtype),
                keras.KerasTensor((features.shape[0], self.out_steps, max(self.groups) + 1), features.dtype))

    def get_config(self):
        return {**super().get_config(), "out_steps": self.out_steps, "groups": self.groups}


@keras.saving.register_keras_serializable(package="musicgen")
class ProductOfExperts(layers.Layer):
    """[body (batch, out_steps, experts * groups + SIZE), expert, track record, expert, track record, ...] (each
    expert (batch, out_steps, SIZE) in comparable units, each track record (batch, out_steps, groups)) -> the
    Gaussian (batch, out_steps, 2 * SIZE): [mean | spread] in the features' own units.

    Each expert is trusted as far as it guessed the window's own steps: its precision for a step and group of
    features is 1 / (its track record's mean squared error + floor), times exp(a learned bias per expert,
    step and group + the body's first outputs), both starting at 0. The mean is the precision-weighted mean of
    the experts plus the body's last SIZE outputs (a correction). An untrained model (body 0) is the experts
    weighed by their track records alone, which already ranks the real next steps above any one expert.
    """

    def __init__(self, groups, multipliers, floor=0.02, **kwargs):
        super().__init__(**kwargs)
        self.groups = [int(group) for group in groups]
        self.multipliers = [float(value) for value in multipliers]
        self.floor = float(floor)

    def build(self, shapes):
        out_steps, experts = shapes[1][1], (len(shapes) - 1) // 2
        self.log_precision = self.add_weight(shape=(out_steps, experts, max(self.groups) + 1), initializer="zeros",
                                             name="log_precision")

    def precisions(self, inputs):
        """(batch, out_steps, experts, SIZE): how far each expert is trusted on each predicted step and feature,
        in comparable units (their sum is the Gaussian's precision there)."""
        body, records = inputs[0], ops.stack(inputs[2::2], axis=2)
        out_steps, count, group_count = records.shape[1], records.shape[2], max(self.groups) + 1
        of_group = ops.convert_to_tensor(np.eye(group_count, dtype=np.float32)[self.groups])  # (SIZE, groups)
        log_precision = (-ops.log(records + self.floor) + self.log_precision
                         + ops.reshape(body[..., :count * group_count], (-1, out_steps, count, group_count)))
        return ops.exp(ops.einsum("bkeg,fg->bkef", ops.clip(log_precision, *LOG_PRECISION_LIMITS), of_group))

    def call(self, inputs):
        body, experts = inputs[0], ops.stack(inputs[1::2], axis=2)
        trust_numbers = experts.shape[2] * (max(self.groups) + 1)  # the body's first outputs; its last, the mean's
        precision = self.precisions(inputs)
        total = ops.sum(precision, axis=2)  # (batch, out_steps, SIZE)
        mean = ops.sum(precision * experts, axis=2) / total + body[..., trust_numbers:]
        # Back to the features' units: a comparable distance total * (m * x)^2 is 0.5 * (x / spread)^2.
        multipliers = ops.convert_to_tensor(self.multipliers, dtype=mean.dtype)
        return ops.concatenate([mean / multipliers, 1.0 / (multipliers * ops.sqrt(2.0 * total))], axis=-1)

    def compute_output_spec(self, inputs):
        expert = inputs[1]
        return keras.KerasTensor((expert.shape[0], expert.shape[1], 2 * expert.shape[2]), expert.dtype)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "multipliers": self.multipliers, "floor": self.floor}


def split_prediction(prediction):
    """(..., 2 * SIZE) model output -> mean (..., SIZE), spread (..., SIZE)."""
    size = prediction.shape[-1] // 2
    return prediction[..., :size], prediction[..., size:]


def log_likelihoods(candidates, prediction):
    """Each candidate's log-likelihood (constant dropped) under its window's Gaussian: candidates (batch, count,
    out_steps, SIZE), prediction (batch, out_steps, 2 * SIZE) -> (batch, count)."""
    mean, spread = split_prediction(prediction)
    return -0.5 * ops.sum(ops.square((candidates - mean[:, None]) / spread[:, None]), axis=(2, 3))


def batch_log_likelihoods(prediction, others):
    """(batch, batch): every window's Gaussian at every window's real next steps others (batch, out_steps, SIZE),
    without a (batch, batch, out_steps, SIZE) temporary."""
    mean, spread = split_prediction(prediction)
    precision = 1.0 / ops.square(spread)
    squares = (ops.einsum("bkf,ckf->bc", precision, ops.square(others))
               - 2.0 * ops.einsum("bkf,ckf->bc", precision * mean, others)
               + ops.sum(precision * ops.square(mean), axis=(1, 2))[:, None])
    return -0.5 * squares


@keras.saving.register_keras_serializable(package="musicgen")
class NextStepsContrast(keras.losses.Loss):
    """InfoNCE (van den Oord et al. 2018, as in CPC): the real next steps should be likelier under a window's
    Gaussian than other places. y_true (batch, count, out_steps, SIZE): the candidates' features, the real
    next steps first, then other places of the same song; the other windows' real next steps in the batch
    (other songs, mostly) count as further candidates. Cross-entropy of picking the real ones."""

    def __init__(self, name="next_steps_contrast", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, candidates, prediction):
        own = log_likelihoods(candidates, prediction)
        others = batch_log_likelihoods(prediction, candidates[:, 0])
        others = others - MASKED * ops.eye(ops.shape(others)[0], dtype=others.dtype)  # the real ones are in own
        logits = ops.concatenate([own, others], axis=1)
        return ops.logsumexp(logits, axis=1) - logits[:, 0]


@keras.saving.register_keras_serializable(package="musicgen")
def next_steps_top1(candidates, prediction):
    """1 where the real next steps are the likeliest of a window's own candidates, else 0."""
    own = log_likelihoods(candidates, prediction)
    return ops.cast(ops.argmax(own, axis=1) == 0, "float32")
