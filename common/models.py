"""Saving and loading Keras models and their JSON records, and the custom pieces saved models need.

Models are loaded in Keras safe mode (a downloaded .keras file cannot run arbitrary code) and without their
training configuration; every model has a JSON record beside it with the resolved arguments, what it was
trained on (fingerprints) and its headline figures.
"""
import zipfile
from pathlib import Path

import keras
import numpy as np

from common import artifacts, paths
from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_FRAMES, STEP_FRAMES
from common.errors import ArtifactError


@keras.saving.register_keras_serializable(package="musicgen")
class SpectralWaveformLoss(keras.losses.Loss):
    """Multi-resolution STFT magnitude loss (linear + log) plus an L1 waveform term.

    Ears hear magnitudes on a log scale at several time/frequency resolutions; the waveform term keeps the
    phase honest so SI-SDR does not suffer.
    """

    def __init__(self, fft_sizes=(2048, 512, 128), waveform_weight=1.0, name="spectral_waveform", **kwargs):
        super().__init__(name=name, **kwargs)
        self.fft_sizes = tuple(fft_sizes)
        self.waveform_weight = waveform_weight

    def call(self, y_true, y_pred):
        import tensorflow as tf

        # (batch, frames, channels) -> (batch * channels, frames) for tf.signal.stft
        true = tf.reshape(tf.transpose(y_true, [0, 2, 1]), [-1, tf.shape(y_true)[1]])
        pred = tf.reshape(tf.transpose(y_pred, [0, 2, 1]), [-1, tf.shape(y_pred)[1]])
        loss = self.waveform_weight * tf.reduce_mean(tf.abs(true - pred), axis=-1)
        for size in self.fft_sizes:
            true_mag = tf.abs(tf.signal.stft(true, size, size // 4, pad_end=True)) + 1e-5
            pred_mag = tf.abs(tf.signal.stft(pred, size, size // 4, pad_end=True)) + 1e-5
            convergence = tf.norm(true_mag - pred_mag, axis=[-2, -1]) / tf.norm(true_mag, axis=[-2, -1])
            log_distance = tf.reduce_mean(tf.abs(tf.math.log(true_mag) - tf.math.log(pred_mag)), axis=[-2, -1])
            loss += (convergence + log_distance) / len(self.fft_sizes)
        return tf.reduce_mean(tf.reshape(loss, [tf.shape(y_true)[0], -1]), axis=-1)

    def get_config(self):
        return {**super().get_config(), "fft_sizes": list(self.fft_sizes), "waveform_weight": self.waveform_weight}


def save_model(model, path):
    """Save a .keras file atomically: a kill mid-save leaves the previous model loadable."""
    with artifacts.atomic_path(path) as temporary:
        model.save(temporary)
    return Path(path)


def load_model(models_dir, name, kind):
    """Load models/<name>.keras in safe mode; missing or damaged files name the script to rerun."""
    path = paths.model_path(models_dir, name)
    rerun = artifacts.MADE_BY[kind]
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: run {rerun} first")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArtifactError(f"{path} is damaged or not a model of this project ({first_line}): rerun {rerun}") from None


def write_record(models_dir, name, record):
    """models/<name>.json: kind, format version, fingerprint of the saved model file(s), args, figures."""
    record = dict(record, format_version=artifacts.FORMAT_VERSION, sample_rate=SAMPLE_RATE, step_frames=STEP_FRAMES,
                  channels=CHANNELS)
    return artifacts.write_json(paths.model_record_path(models_dir, name), record)


def read_record(models_dir, name, kind):
    """Load and check a model record; a record from another format version names the script to rerun."""
    record = artifacts.read_json(paths.model_record_path(models_dir, name), kind)
    rerun = artifacts.MADE_BY[kind]
    if record.get("format_version") != artifacts.FORMAT_VERSION or record.get("kind") != kind:
        raise ArtifactError(f"{paths.model_record_path(models_dir, name)} is from another version: rerun {rerun}")
    if record.get("sample_rate") != SAMPLE_RATE or record.get("step_frames") != STEP_FRAMES:
        raise ArtifactError(f"{name} was trained on another step length or sample rate: rerun {rerun}")
    return record


def autoencoder_fingerprint(models_dir):
    """One fingerprint for the encoder and decoder files: what a score was made with."""
    return artifacts.combine_fingerprints(
        [artifacts.file_fingerprint(paths.model_path(models_dir, name)) for name in ("encoder", "decoder")]
    )


def load_codec(models_dir):
    """Encoder, decoder and record of the current autoencoder, checked to belong together."""
    record = read_record(models_dir, "autoencoder", "autoencoder")
    encoder = load_model(models_dir, "encoder", "autoencoder")
    decoder = load_model(models_dir, "decoder", "autoencoder")
    if autoencoder_fingerprint(models_dir) != record.get("fingerprint"):
        raise ArtifactError("encoder.keras / decoder.keras do not match autoencoder.json: rerun autoencode.py")
    if tuple(encoder.input_shape[1:]) != (SEGMENT_FRAMES, CHANNELS):
        raise ArtifactError("the encoder was made for another step length: rerun autoencode.py")
    return encoder, decoder, record


def encode(encoder, steps, batch_size=64):
    """(num_steps, STEP_FRAMES, 2) -> score (num_steps, latent_dim)."""
    from common.audio import segments_from_steps

    return np.asarray(encoder.predict(segments_from_steps(steps), batch_size=batch_size, verbose=0), np.float32)


def decode(decoder, score, batch_size=64):
    """score (num_steps, latent_dim) -> audio (num_steps * STEP_FRAMES, 2), cross-faded at step boundaries."""
    from common.audio import overlap_add

    segments = np.asarray(decoder.predict(np.asarray(score, np.float32), batch_size=batch_size, verbose=0))
    return overlap_add(segments)
