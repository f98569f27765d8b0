"""The custom pieces saved score models need to load: reference normalisation, the Gaussian read-out, the loss.

Imported by common/score_models.py (training) and music_generator.py (before loading a score model), never at
script start-up, so --help stays fast and TensorFlow's start-up lines stay hidden (see common/cli.py).
"""
import keras
from keras import layers, ops

SCALE_FLOOR = 0.01  # times the training variance: keeps a silent reference from dividing by zero (-20 dB floor)
LOG_SPREAD_LIMITS = (-4.0, 2.0)  # predicted std in reference units stays within [0.018, 7.4]


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
class GaussianReadout(layers.Layer):
    """[body (batch, out_steps, 2 * latent), centre, scale, bridge (batch, out_steps, latent)] -> [mean | std].

    In reference units the body's first half plus the bridge is the mean and its second half the log std;
    the output (batch, out_steps, 2 * latent) is in score units. A learned weight per dimension (starting
    at 0) moves the centre towards the training mean: on waveform-like dimensions the song's own 10 s mean
    is a noisier guess than the corpus mean, on level-like ones it is the better one.
    """

    def __init__(self, mean, **kwargs):
        super().__init__(**kwargs)
        self.mean_values = list(map(float, mean))
        self.towards_training_mean = self.add_weight(shape=(len(self.mean_values),), initializer="zeros",
                                                     name="towards_training_mean")

    def call(self, inputs):
        body, centre, scale, bridge = inputs
        latent = len(self.mean_values)
        training_mean = ops.convert_to_tensor(self.mean_values, dtype=body.dtype)
        centre = centre + self.towards_training_mean * (training_mean - centre)
        mean = centre + scale * (body[..., :latent] + bridge)
        spread = scale * ops.exp(ops.clip(body[..., latent:], *LOG_SPREAD_LIMITS))
        return ops.concatenate([mean, spread], axis=-1)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, inputs[0].dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean_values}


def split_prediction(prediction):
    """(..., 2 * latent) model output -> mean (..., latent), std (..., latent)."""
    latent = prediction.shape[-1] // 2
    return prediction[..., :latent], prediction[..., latent:]


@keras.saving.register_keras_serializable(package="musicgen")
def gaussian_nll(targets, prediction):
    """Negative log-likelihood of the targets under the predicted Gaussian (constant dropped), per window (the
    loss of score models trained before BetaGaussianNLL, which is the same with --nll-beta 0)."""
    return ops.mean(_nll_terms(targets, prediction), axis=(-2, -1))


def _nll_terms(targets, prediction):
    """Each number's Gaussian negative log-likelihood (constant dropped), (batch, out_steps, latent)."""
    mean, spread = split_prediction(prediction)
    return 0.5 * ops.square((targets - mean) / spread) + ops.log(spread)


@keras.saving.register_keras_serializable(package="musicgen")
class BetaGaussianNLL(keras.losses.Loss):
    """The Gaussian negative log-likelihood with each number's term weighted by its predicted variance to the
    power beta, the weight held constant in the gradient ("beta-NLL", Seitzer et al. 2022), per window.

    Under the plain NLL (beta 0) a number's pull on the mean is its error over its predicted variance, so the
    model learns its mean mostly where it already predicts a small spread, and shrinks the spread there
    further: on held-out real music the lstm's validation NLL was best after one epoch and then rose
    (-0.69, -0.38, +0.02) while its mean's error still fell. Beta 1 gives every window's mean the pull of
    MSE; each number's spread is still fitted by the NLL (the weight has no gradient, so its optimum stays
    |error|). The weight is divided by its mean over the batch and steps, number by number: the numbers of a
    score have different units (a peak's position, its value, a log level), and only how much each window
    is trusted relative to the others should change, not how much each number counts.
    """

    def __init__(self, beta=0.5, name="beta_gaussian_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.beta = float(beta)

    def call(self, targets, prediction):
        terms = _nll_terms(targets, prediction)
        if self.beta:
            weight = ops.stop_gradient(split_prediction(prediction)[1] ** (2 * self.beta))
            terms = terms * weight / ops.mean(weight, axis=(0, 1), keepdims=True)
        return ops.mean(terms, axis=(-2, -1))

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package="musicgen")
def mean_mse(targets, prediction):
    """MSE of the predicted mean: the figure compared with the baselines."""
    mean, _ = split_prediction(prediction)
    return ops.mean(ops.square(targets - mean), axis=(-2, -1))
