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
    """[window, reference] (batch, steps, latent) -> (window in reference units, reference scale (batch, 1, latent)).

    scale = sqrt(mean over the reference's steps of (x - training mean)^2 + SCALE_FLOOR * training variance).
    """

    def __init__(self, mean, variance, floor=SCALE_FLOOR, **kwargs):
        super().__init__(**kwargs)
        self.mean_values, self.variance_values, self.floor = list(map(float, mean)), list(map(float, variance)), floor

    def call(self, inputs):
        window, reference = inputs
        mean = ops.convert_to_tensor(self.mean_values, dtype=window.dtype)
        floor = self.floor * ops.convert_to_tensor(self.variance_values, dtype=window.dtype)
        scale = ops.sqrt(ops.mean(ops.square(reference - mean), axis=1, keepdims=True) + floor)
        return (window - mean) / scale, scale

    def compute_output_spec(self, inputs):
        window, _ = inputs
        return (keras.KerasTensor(window.shape, window.dtype),
                keras.KerasTensor((window.shape[0], 1, window.shape[2]), window.dtype))

    def get_config(self):
        return {**super().get_config(), "mean": self.mean_values, "variance": self.variance_values,
                "floor": self.floor}


@keras.saving.register_keras_serializable(package="musicgen")
class GaussianReadout(layers.Layer):
    """[body output (batch, out_steps, 2 * latent), scale, bridge (batch, out_steps, latent)] -> [mean | std].

    The body's first half plus the bridge is the mean, its second half the log std, all in reference units;
    the output (batch, out_steps, 2 * latent) is in score units.
    """

    def __init__(self, mean, **kwargs):
        super().__init__(**kwargs)
        self.mean_values = list(map(float, mean))

    def call(self, inputs):
        body, scale, bridge = inputs
        latent = len(self.mean_values)
        offset = ops.convert_to_tensor(self.mean_values, dtype=body.dtype)
        mean = offset + scale * (body[..., :latent] + bridge)
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
    """Negative log-likelihood of the targets under the predicted Gaussian (constant dropped), per window."""
    mean, spread = split_prediction(prediction)
    return ops.mean(0.5 * ops.square((targets - mean) / spread) + ops.log(spread), axis=(-2, -1))


@keras.saving.register_keras_serializable(package="musicgen")
def mean_mse(targets, prediction):
    """MSE of the predicted mean: the figure compared with the baselines."""
    mean, _ = split_prediction(prediction)
    return ops.mean(ops.square(targets - mean), axis=(-2, -1))
