"""Pictures for people: loss curves, waveforms, spectrograms and the machine's score. matplotlib, no screen."""
import matplotlib

matplotlib.use("Agg")  # no display needed: every picture goes to a PNG file
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common import artifacts  # noqa: E402
from common.audio import SAMPLE_RATE, STEP_SECONDS  # noqa: E402
from common.metrics import log_mel_frames  # noqa: E402


def _save(figure, path):
    with artifacts.atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
    return path


def loss_curves(history, path, title):
    """Training and validation loss per epoch, log scale when it spans more than a decade."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if history.get(key):
            axis.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", label=label)
    values = [v for key in ("loss", "val_loss") for v in history.get(key, []) if v > 0]
    if values and max(values) / min(values) > 10:
        axis.set_yscale("log")
    axis.set(title=f"{title}: loss per epoch", xlabel="epoch", ylabel="loss")
    if axis.get_legend_handles_labels()[0]:  # an untrained model (--epochs 0) has no curve to label
        axis.legend()
    axis.grid(alpha=0.3)
    return _save(figure, path)


IMAGE_COLUMNS = 1500  # about the pixels across a picture at dpi 110: more frames are max-pooled down to these


def _pooled_in_time(frames, columns=IMAGE_COLUMNS):
    """(times, mels) -> (at most about columns, mels): the loudest of each group of frames, so that an attack
    shorter than a pixel still shows (matplotlib's own antialiasing of 6000 frames cost 0.15 s a picture)."""
    group = int(np.ceil(len(frames) / columns))
    if group <= 1:
        return frames
    padded = np.pad(frames, ((0, -len(frames) % group), (0, 0)), mode="edge")
    return padded.reshape(-1, group, frames.shape[1]).max(axis=1)


def _mel_image(axis, samples, title, boundary_seconds=None):
    frames = _pooled_in_time(log_mel_frames(samples))  # (times, mels)
    seconds = len(samples) / SAMPLE_RATE
    image = axis.imshow(frames.T, origin="lower", aspect="auto", cmap="magma", extent=[0, seconds, 0, frames.shape[1]],
                        vmin=frames.max() - 80, vmax=frames.max(), interpolation="nearest")
    if boundary_seconds is not None:
        axis.axvline(boundary_seconds, color="cyan", linewidth=2, linestyle="--", label="continuation starts")
        axis.legend(loc="upper right")
    axis.set(title=title, xlabel="time (s)", ylabel="mel band (20 Hz - 22 kHz)")
    return image


def round_trip(original, reconstruction, path, title):
    """Original vs round trip: waveforms (left channel) and log-mel spectrograms."""
    figure, axes = plt.subplots(2, 2, figsize=(13, 7), sharex=True)
    time = np.arange(len(original)) / SAMPLE_RATE
    for column, (samples, name) in enumerate(((original, "original"), (reconstruction, "round trip"))):
        axes[0, column].plot(time, samples[:, 0], linewidth=0.3)
        axes[0, column].set(title=f"{name}: waveform (left)", ylabel="amplitude", ylim=(-1.05, 1.05))
        image = _mel_image(axes[1, column], samples, f"{name}: log-mel spectrogram")
        figure.colorbar(image, ax=axes[1, column], label="dB")
    figure.suptitle(title)
    return _save(figure, path)


def continuation(samples, seed_seconds, path, title):
    """Seed | continuation log-mel spectrogram with the boundary marked."""
    figure, axis = plt.subplots(figsize=(13, 4))
    image = _mel_image(axis, samples, title, boundary_seconds=seed_seconds)
    figure.colorbar(image, ax=axis, label="dB")
    return _save(figure, path)


def score(score_matrix, path, title):
    """The machine's sheet music: latent dimension x step, one column per 1/4 second."""
    figure, axis = plt.subplots(figsize=(13, 5))
    limit = np.percentile(np.abs(score_matrix), 99) or 1.0
    image = axis.imshow(score_matrix.T, origin="lower", aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit,
                        extent=[0, len(score_matrix) * STEP_SECONDS, 0, score_matrix.shape[1]], interpolation="nearest")
    axis.set(title=title, xlabel="time (s), one column per 1/4-second step", ylabel="score dimension")
    figure.colorbar(image, ax=axis, label="value")
    return _save(figure, path)


def spectrogram_pair(first, second, names, path, title):
    """Two excerpts' log-mel spectrograms one above the other, on the same time axis (e.g. a continuation and
    the real music it stands for)."""
    figure, axes = plt.subplots(2, 1, figsize=(13, 7), sharex=True)
    for axis, samples, name in zip(axes, (first, second), names):
        figure.colorbar(_mel_image(axis, samples, name), ax=axis, label="dB")
    figure.suptitle(title)
    return _save(figure, path)
