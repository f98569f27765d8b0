"""Saving and loading Keras models and their JSON records, and the custom pieces saved models need.

Models are loaded in Keras safe mode (a downloaded .keras file cannot run arbitrary code) and without their
training configuration; every model has a JSON record beside it with the resolved arguments, what it was
trained on (fingerprints) and its headline figures.
"""
import json
import re
import zipfile
from pathlib import Path

import keras
import numpy as np

# common.codec registers the custom layers saved autoencoders need, so safe-mode loading finds them.
from common import artifacts, codec, paths  # noqa: F401
from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_FRAMES, STEP_FRAMES
from common.errors import ArtifactError


@keras.saving.register_keras_serializable(package="musicgen")
class SpectralWaveformLoss(keras.losses.Loss):
    """Multi-resolution STFT magnitude loss (spectral convergence + log magnitude) plus a waveform term.

    Ears hear magnitudes on a log scale at several time/frequency resolutions; the waveform term, the
    batch's noise-to-signal ratio in bels (-SNR / 10 dB), keeps the phase honest so SI-SDR does not suffer.
    Ratios are taken over the whole batch and magnitudes are floored about 90 dB below a full-scale sine,
    so a silent segment (song starts, fades) cannot dominate the loss with a division by almost zero.
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
        # Floors: an RMS of 1e-4 (-80 dBFS) for the waveform, 1e-5 * size per STFT bin (a full-scale sine peaks
        # at size / 4 in a Hann-windowed STFT, so that is about -88 dB).
        signal_energy = tf.reduce_sum(tf.square(true)) + 1e-8 * tf.cast(tf.size(true), true.dtype)
        loss = self.waveform_weight * _log10(tf.reduce_sum(tf.square(true - pred)) / signal_energy + 1e-4)
        for size in self.fft_sizes:
            floor = 1e-5 * size
            true_mag = tf.abs(tf.signal.stft(true, size, size // 4, pad_end=True))
            pred_mag = tf.abs(tf.signal.stft(pred, size, size // 4, pad_end=True))
            bins = tf.cast(tf.size(true_mag), true_mag.dtype)
            convergence = tf.norm(true_mag - pred_mag) / tf.sqrt(tf.reduce_sum(tf.square(true_mag)) + bins * floor ** 2)
            log_distance = tf.reduce_mean(tf.abs(tf.math.log(true_mag + floor) - tf.math.log(pred_mag + floor)))
            loss += (convergence + log_distance) / len(self.fft_sizes)
        return tf.fill([tf.shape(y_true)[0]], loss)  # one figure for the batch, given to each of its segments

    def get_config(self):
        return {**super().get_config(), "fft_sizes": list(self.fft_sizes), "waveform_weight": self.waveform_weight}


@keras.saving.register_keras_serializable(package="musicgen")
class LappedMSE(keras.losses.Loss):
    """MSE between the lapped transform's folded step of the input segment (y_true) and a folded
    reconstruction (y_pred): how a dense autoencoder with --lapped trains, since its decoded parts are not
    segments (codec.LappedSynthesis). The transform is orthonormal, so this is the song's MSE."""

    def __init__(self, name="lapped_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        import tensorflow as tf

        folded = codec.LappedAnalysis()(y_true)
        return tf.reduce_mean(tf.square(folded - y_pred), axis=-1)


def _log10(x):
    import tensorflow as tf

    return tf.math.log(x) / tf.math.log(tf.constant(10.0, x.dtype))


def save_model(model, path):
    """Save a .keras file atomically: a kill mid-save leaves the previous model loadable.

    The optimizer's state is left out: saved models are only loaded for inference (--resume has its own
    backup), and Adam's two slots per weight would triple the file and the memory Keras takes to write it.
    """
    if getattr(model, "compiled", False) or getattr(model, "optimizer", None) is not None:
        model = keras.Model(model.input, model.output, name=model.name)  # the same layers, not compiled
    with artifacts.atomic_path(path) as temporary:
        model.save(temporary)
    return Path(path)


def load_model(models_dir, name, kind):
    """Load models/<name>.keras in safe mode; missing, damaged or replaced files name the script to rerun.

    A model whose JSON record holds the fingerprint of the file it saved (the score models) must still be that
    file: one copied over it later is refused rather than silently used with the wrong record.
    """
    path = paths.model_path(models_dir, name)
    rerun = artifacts.MADE_BY[kind]
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: run {rerun} first")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" for a truncated archive
        raise ArtifactError(f"{path} is damaged (truncated or not a .keras archive): rerun {rerun}")
    recorded = _recorded_model_fingerprint(models_dir, name)
    if recorded is not None and artifacts.file_fingerprint(path) != recorded:
        raise ArtifactError(f"{path} is not the model {paths.model_record_path(models_dir, name).name} describes "
                            f"(replaced since?): rerun {rerun}")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, zipfile.BadZipFile) as error:
        raise ArtifactError(f"{path} is damaged or not a model of this project ({_first_sentence(error)}): "
                            f"rerun {rerun}") from None


def _recorded_model_fingerprint(models_dir, name):
    """models/<name>.json's "model_fingerprint", or None where there is none (read_record checks the rest)."""
    try:
        record = json.loads(paths.model_record_path(models_dir, name).read_text())
    except (OSError, ValueError):
        return None
    return record.get("model_fingerprint") if isinstance(record, dict) else None


def _first_sentence(error):
    """Keras explains refusals in paragraphs; the first sentence says what went wrong."""
    return re.split(r"(?<=[.!?])\s", artifacts.first_line(error), maxsplit=1)[0]


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


def encode(encoder, steps, batch_size=256):
    """(num_steps, STEP_FRAMES, 2) -> score (num_steps, latent_dim).

    Segments are cut batch by batch, so memory stays at one batch of segments beyond the input.
    """
    from common.audio import segments_from_steps

    steps = np.asarray(steps, np.float32)
    after_fold = codec.after_lapped_analysis(encoder)
    traced = len(steps) > batch_size  # one batch (a seed): a trace would cost more than it saves
    scores = []
    for first, last, before, after in _batches(len(steps), batch_size):
        if after_fold is not None:  # a lapped encoder: the steps are folded as they are, no segments cut
            folded = codec.fold_steps(steps[before:after], first == 0, last == len(steps))
            scores.append(inference(after_fold, folded, traced=traced))
            continue
        segments = segments_from_steps(steps[before:after])  # each step of the batch with both its neighbours
        scores.append(inference(encoder, segments[first - before:last - before], traced=traced))
    return np.concatenate(scores) if scores else np.zeros((0, encoder.output_shape[-1]), np.float32)


def decode(decoder, score, batch_size=256):
    """score (num_steps, latent_dim) -> audio (num_steps * STEP_FRAMES, 2), cross-faded at step boundaries.

    Decoded batch by batch, each batch with the neighbouring step on either side so that its cross-fades are
    the same as decoding the whole score at once: memory stays at the output plus two batches of segments. A
    batch's cross-fades and envelope (NumPy) run in a thread of their own while the decoder's graph makes the
    next batch's segments, so both cores stay busy (120 s of music: decode 0.97-1.0 -> 0.88-0.93 s).
    """
    import concurrent.futures

    from common.codec import decoded_segments_are_lapped
    from common.crossfade import overlap_add

    keep_energy = not decoded_segments_are_lapped(decoder)
    before_unfold, ends_with_unfold = codec.before_lapped_synthesis(decoder)
    code_format = codec.sparse_format(decoder)
    score = np.asarray(score, np.float32)
    traced = len(score) > batch_size  # one batch (a continuation on the beat, ~42 steps): eager is faster
    output = np.empty((len(score) * STEP_FRAMES, CHANNELS), np.float32)

    def finish(segments, first, last, before, after):
        joined = overlap_add(segments, keep_energy)  # before..after-1
        if code_format is not None and code_format.envelope_blocks:
            # Its gain curve in steps first..last-1 reaches half a block into each neighbour, whose blocks
            # there are cross-faded with both of their neighbours here: the same as the whole score's.
            joined = codec.impose_envelope(joined, score[before:after], code_format)
        output[first * STEP_FRAMES:last * STEP_FRAMES] = joined[(first - before) * STEP_FRAMES:
                                                                (last - before) * STEP_FRAMES]

    with concurrent.futures.ThreadPoolExecutor(1) as finisher:
        pending = None  # the batch being finished: one at a time, so memory stays at two batches
        for first, last, before, after in _batches(len(score), batch_size):
            if ends_with_unfold:  # a lapped decoder: its folded output overlaps straight into the song
                folded = (score[before:after] if before_unfold is None
                          else tensor_inference(before_unfold, score[before:after], traced=traced))
                joined = codec.steps_from_folded(folded, first == 0, last == len(score))
                output[first * STEP_FRAMES:last * STEP_FRAMES] = joined.reshape(-1, CHANNELS)
                continue
            segments = inference(decoder, score[before:after], traced=traced)
            if pending is not None:
                pending.result()
            pending = finisher.submit(finish, segments, first, last, before, after)
        if pending is not None:
            pending.result()
    return output


def round_trip_pieces(encoder, decoder, steps, piece_steps=256, to_float=None):
    """Yield (first, last, original, decoded) piece by piece: the float32 audio of steps [first, last), and
    that part of decode(decoder, encode(encoder, steps)).

    Each piece is encoded with two steps of context on either side and decoded with one, so the pieces are
    those of the whole song's round trip; memory stays at one piece, not a second copy of the song.
    to_float turns a slice of steps into float32 (e.g. datasets.decode_stored_steps for int16 steps).
    """
    count = len(steps)
    for first in range(0, count, piece_steps):
        last = min(first + piece_steps, count)
        before, after = max(first - 2, 0), min(last + 2, count)
        piece = steps[before:after] if to_float is None else to_float(steps[before:after])
        score = encode(encoder, piece)
        # Scores of steps whose both neighbours were in the piece are exact: first - 1 .. last.
        exact_from, exact_to = max(first - 1, 0), min(last + 1, count)
        joined = decode(decoder, score[exact_from - before:exact_to - before])
        original = piece[first - before:last - before].reshape(-1, CHANNELS)
        yield first, last, original, joined[(first - exact_from) * STEP_FRAMES:(last - exact_from) * STEP_FRAMES]


def _batches(count, batch_size):
    """(first, last, before, after) per batch: the batch is [first, last), widened by one neighbour each side."""
    for first in range(0, count, batch_size):
        last = min(first + batch_size, count)
        yield first, last, max(first - 1, 0), min(last + 1, count)


def inference(model, inputs, jit_compile=False, traced=True):
    """model(inputs) as float32 numpy, without Keras's predict() set-up, which costs more than a short song's
    whole encoding (or one step of a continuation). inputs: an array, or a dict of them (score models).

    One traced function per model (kept on the model), traced once for any batch size: retracing for a second
    batch size cost the generator 0.2 s (a song's last batch is shorter). jit_compile: compile it with XLA,
    for a model called many times on inputs of one shape (the generator's score model: XLA fuses the LSTM's
    per-step ops, 17 -> 8 ms a window on 2 CPU cores, for ~0.2 s of compiling once). traced=False: run eagerly,
    for a model called once (the sparse decoder on 42 steps: 0.05-0.13 s eagerly, 0.18-0.28 s traced the first
    time and 0.04 s after).
    """
    return np.asarray(tensor_inference(model, inputs, jit_compile, traced), np.float32)


def tensor_inference(model, inputs, jit_compile=False, traced=True):
    """inference() without the copy to numpy: for outputs that go on into TensorFlow."""
    import tensorflow as tf

    if not traced:
        return model(tf.nest.map_structure(tf.convert_to_tensor, inputs), training=False)
    # In the instance's own __dict__: set as an attribute, Keras would wrap the dict in a structure it tracks.
    calls = model.__dict__.setdefault("_musicgen_inference", {})
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    if jit_compile not in calls:
        any_batch = tf.nest.map_structure(lambda tensor: tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype), inputs)
        calls[jit_compile] = tf.function(lambda batch: model(batch, training=False), input_signature=[any_batch],
                                         jit_compile=jit_compile)
    return calls[jit_compile](inputs)
