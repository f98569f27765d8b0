"""Step 2: train the autoencoder whose 512-number code for each 1/4-second step is the machine's own score.

Reads   data/steps/                        the step dataset of combine_encoded_test_data.py
Writes  models/autoencoder.keras           the whole model (segment -> code -> segment)
        models/encoder.keras, decoder.keras its two halves, used by every later step
        models/autoencoder.json            resolved arguments, fingerprints, validation figures
        models/autoencoder_loss.png        training and validation loss curves
        models/logs/<run>/                 TensorBoard scalars and audio of the reconstruction per epoch

Architectures (--arch):
  dense  the seed's design: one linear hidden layer of --latent-dim units over the whole step
  conv   strided Conv1D encoder and transposed-Conv1D decoder, trained on a multi-resolution STFT + waveform loss
Each step is encoded together with a 31 ms margin of its neighbours and decoded segments are cross-faded,
so a decoded score has no click at step boundaries.

Example:
    python autoencode.py --arch dense --latent-dim 512 --epochs 30
    python autoencode.py --resume      # after an interruption
"""
import logging

import numpy as np

from common import audio, cli, datasets, paths, plots, training
from common.errors import PipelineError

log = logging.getLogger("musicgen")

ARCHITECTURES = ("dense", "conv")
CONV_PADDED_FRAMES = 13824  # SEGMENT_FRAMES rounded up to a multiple of the encoder's total stride (768)
CONV_STRIDES = (4, 4, 4, 4, 3)


def parse_args(argv):
    parser = cli.make_parser(__doc__)
    parser.add_argument("--arch", choices=ARCHITECTURES, default="dense", help="autoencoder architecture")
    parser.add_argument("--latent-dim", type=int, default=512, help="numbers per 1/4-second step of the score")
    parser.add_argument("--width", type=int, default=64, help="channels of the conv architecture's layers")
    parser.add_argument("--init", choices=("pca", "random"), default="pca",
                        help="dense only: start from the PCA solution of a sample of training steps (the optimum a "
                             "linear autoencoder converges to) instead of random weights (default pca)")
    parser.add_argument("--pca-segments", type=int, default=3000,
                        help="training steps sampled for --init pca (memory: about 110 kB each)")
    parser.add_argument("--loss", choices=("auto", "mse", "spectral"), default="auto",
                        help="auto: mse for dense (it is linear, like PCA), spectral for conv")
    training.add_training_arguments(parser, epochs=40, batch_size=32, learning_rate=3e-4)
    parser.add_argument("--preview-seconds", type=float, default=4.0,
                        help="seconds of a validation song logged to TensorBoard as audio each epoch (0: none)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return run(args)


def build_dense(latent_dim):
    """The seed's autoencoder: flatten the step, one linear hidden layer (the score), linear output."""
    import keras
    from keras import layers

    segment = keras.Input((audio.SEGMENT_FRAMES, audio.CHANNELS), name="segment")
    code = layers.Dense(latent_dim, name="score")(layers.Flatten()(segment))
    encoder = keras.Model(segment, code, name="encoder")
    score = keras.Input((latent_dim,), name="score")
    flat = layers.Dense(audio.SEGMENT_FRAMES * audio.CHANNELS, name="reconstruction")(score)
    decoder = keras.Model(score, layers.Reshape((audio.SEGMENT_FRAMES, audio.CHANNELS))(flat), name="decoder")
    return encoder, decoder


def build_conv(latent_dim, width):
    """Strided Conv1D down to 18 positions x 4*width channels, a Dense to the score, and the mirror image."""
    import keras
    from keras import layers

    padding = CONV_PADDED_FRAMES - audio.SEGMENT_FRAMES
    positions = CONV_PADDED_FRAMES // int(np.prod(CONV_STRIDES))  # 18
    channels = [width, width, 2 * width, 2 * width, 4 * width]
    segment = keras.Input((audio.SEGMENT_FRAMES, audio.CHANNELS), name="segment")
    x = layers.ZeroPadding1D((0, padding))(segment)
    for stride, filters in zip(CONV_STRIDES, channels):
        x = layers.Conv1D(filters, 2 * stride, strides=stride, padding="same", activation="gelu")(x)
    code = layers.Dense(latent_dim, name="score")(layers.Flatten()(x))
    encoder = keras.Model(segment, code, name="encoder")

    score = keras.Input((latent_dim,), name="score")
    x = layers.Dense(positions * channels[-1], activation="gelu")(score)
    x = layers.Reshape((positions, channels[-1]))(x)
    for stride, filters in zip(CONV_STRIDES[::-1], channels[::-1][1:] + [width]):
        x = layers.Conv1DTranspose(filters, 2 * stride, strides=stride, padding="same", activation="gelu")(x)
    x = layers.Conv1D(audio.CHANNELS, 7, padding="same", name="waveform")(x)
    decoder = keras.Model(score, layers.Cropping1D((0, padding))(x), name="decoder")
    return encoder, decoder


def build(args):
    import keras

    from common.models import SpectralWaveformLoss

    encoder, decoder = build_dense(args.latent_dim) if args.arch == "dense" else build_conv(args.latent_dim, args.width)
    segment = keras.Input((audio.SEGMENT_FRAMES, audio.CHANNELS), name="segment")
    autoencoder = keras.Model(segment, decoder(encoder(segment)), name="autoencoder")
    loss_name = args.loss if args.loss != "auto" else ("mse" if args.arch == "dense" else "spectral")
    loss = SpectralWaveformLoss() if loss_name == "spectral" else "mse"
    autoencoder.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss=loss, metrics=["mse"],
                        **training.compile_options(args))
    return autoencoder, encoder, decoder


def sample_segments(folder, index, split, count):
    """Up to count segments spread evenly over a split's songs, flattened: (count, SEGMENT_FRAMES * 2)."""
    songs = datasets.songs_in_split(index, split)
    total = sum(song["num_steps"] for song in songs)
    keep_every = max(1, total // count)
    chosen = [audio.segments_from_steps(datasets.load_song_steps(folder, song))[::keep_every] for song in songs]
    return np.concatenate(chosen)[:count].reshape(-1, audio.SEGMENT_FRAMES * audio.CHANNELS)


def fit_pca(flat_segments, components):
    """Mean (D,) and the top principal directions (D, k) of (N, D) data, via the N x N Gram matrix (N << D)."""
    mean = flat_segments.mean(axis=0)
    centred = flat_segments - mean
    eigenvalues, eigenvectors = np.linalg.eigh((centred @ centred.T).astype(np.float64))
    order = np.argsort(eigenvalues)[::-1][: min(components, len(centred))]
    singular = np.sqrt(np.maximum(eigenvalues[order], 1e-12))
    basis = (centred.T @ eigenvectors[:, order].astype(np.float32)) / singular.astype(np.float32)
    return mean, basis  # basis columns are orthonormal


def initialise_from_pca(encoder, decoder, mean, basis):
    """Set the dense encoder/decoder to project onto the PCA basis; unused latent units keep random weights."""
    rank = basis.shape[1]
    encoder_kernel, encoder_bias = encoder.get_layer("score").get_weights()
    decoder_kernel, decoder_bias = decoder.get_layer("reconstruction").get_weights()
    encoder_kernel[:, :rank] = basis
    encoder_bias[:rank] = -mean @ basis
    decoder_kernel[:rank] = basis.T
    decoder_kernel[rank:] = 0.0  # random directions must not add noise to the PCA reconstruction
    encoder.get_layer("score").set_weights([encoder_kernel, encoder_bias])
    decoder.get_layer("reconstruction").set_weights([decoder_kernel, mean])


def make_preview_callback(preview_steps, run_log_dir):
    """A callback that writes the original (once) and the current reconstruction to TensorBoard as audio."""
    import keras
    import tensorflow as tf

    from common.models import decode, encode

    class AudioPreview(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.writer = tf.summary.create_file_writer(str(run_log_dir / "audio"))

        def log_audio(self, name, samples, epoch):
            with self.writer.as_default():
                tf.summary.audio(name, samples[None], audio.SAMPLE_RATE, step=epoch, max_outputs=1)

        def on_train_begin(self, logs=None):
            self.log_audio("original", audio.unframe_steps(preview_steps), 0)

        def on_epoch_end(self, epoch, logs=None):
            encoder, decoder = self.model.layers[1], self.model.layers[2]
            reconstruction = decode(decoder, encode(encoder, preview_steps))
            self.log_audio("reconstruction", np.clip(reconstruction, -1, 1), epoch + 1)

    return AudioPreview()


def run(args):
    training.check_training_arguments(args)
    if args.latent_dim < 1:
        raise PipelineError("--latent-dim must be at least 1")
    import tensorflow as tf

    from common import artifacts
    from common.models import autoencoder_fingerprint, save_model, write_record

    # Load: the step dataset, streamed song by song.
    folder = paths.steps_dir(args.data_dir)
    index = datasets.steps_index(folder)
    backup_dir, run_log_dir = training.prepare_run(args, args.models_dir, "autoencoder")
    strategy = training.make_strategy(args.strategy)
    train_data = datasets.segment_dataset(folder, index, "train", args.batch_size, seed=args.random_seed)
    val_split = "validation" if datasets.songs_in_split(index, "validation") else "train"
    if val_split == "train":
        log.warning("no validation songs (only one usable song?): validating on the training songs")
    val_data = datasets.segment_dataset(folder, index, val_split, args.batch_size, shuffle=False)
    first_val_song = datasets.songs_in_split(index, val_split)[0]
    preview_steps = datasets.load_song_steps(folder, first_val_song)[: int(args.preview_seconds / audio.STEP_SECONDS)]

    # Build inside the strategy's scope so variables are mirrored across devices.
    with strategy.scope():
        autoencoder, encoder, decoder = build(args)
    if args.arch == "dense" and args.init == "pca" and not args.resume:
        sample = sample_segments(folder, index, "train", args.pca_segments)
        initialise_from_pca(encoder, decoder, *fit_pca(sample, args.latent_dim))
        log.info("initialised from the PCA of %d training steps", len(sample))
    log.info("%s autoencoder: %s parameters, %d replicas", args.arch, f"{autoencoder.count_params():,}",
             strategy.num_replicas_in_sync)

    # Train.
    extra = [make_preview_callback(preview_steps, run_log_dir)] if len(preview_steps) else []
    history = autoencoder.fit(train_data, validation_data=val_data, epochs=args.epochs,
                              callbacks=training.standard_callbacks(args, backup_dir, run_log_dir, extra),
                              verbose=training.fit_verbosity(args))

    # Save: halves first, then the record that ties them together.
    for name, model in (("autoencoder", autoencoder), ("encoder", encoder), ("decoder", decoder)):
        save_model(model, paths.model_path(args.models_dir, name))
    plot_path = plots.loss_curves(history.history, paths.loss_plot_path(args.models_dir, "autoencoder"),
                                  title=f"{args.arch} autoencoder")
    figures = validation_figures(encoder, decoder, folder, index, val_split)
    write_record(args.models_dir, "autoencoder", {
        "kind": "autoencoder", "arch": args.arch, "latent_dim": args.latent_dim,
        "segment_frames": audio.SEGMENT_FRAMES, "fingerprint": autoencoder_fingerprint(args.models_dir),
        "steps_fingerprint": index["fingerprint"], "epochs_run": len(history.history["loss"]),
        "best_val_loss": training.best_validation_loss(history), "validation": figures,
        "args": training.save_arguments(args), "tensorflow": tf.__version__,
    })
    artifacts.write_json(run_log_dir / "args.json", training.save_arguments(args))

    # Report.
    cli.summary(
        f"autoencoder ({args.arch}, latent {args.latent_dim}): {paths.model_path(args.models_dir, 'autoencoder')}\n"
        f"  best validation loss {training.best_validation_loss(history):.5f} after "
        f"{len(history.history['loss'])} epochs; validation SNR {figures['snr_db']:.2f} dB, "
        f"SI-SDR {figures['si_sdr_db']:.2f} dB\n"
        f"  loss curves: {plot_path}\n  TensorBoard: tensorboard --logdir {run_log_dir.parent}\n"
        f"  next: python autoencode_test.py, then python create_encoded_data.py"
    )
    return figures


def validation_figures(encoder, decoder, folder, index, split, max_steps=2400):
    """SNR and SI-SDR of the decoded score against the original, over (at most 10 minutes of) validation songs."""
    from common import metrics
    from common.models import decode, encode

    originals, decoded, total = [], [], 0
    for song in datasets.songs_in_split(index, split):
        steps = datasets.load_song_steps(folder, song)[: max_steps - total]
        originals.append(audio.unframe_steps(steps))
        decoded.append(decode(decoder, encode(encoder, steps)))
        total += len(steps)
        if total >= max_steps:
            break
    original, reconstruction = np.concatenate(originals), np.concatenate(decoded)
    return {"snr_db": metrics.snr_db(original, reconstruction), "si_sdr_db": metrics.si_sdr_db(original, reconstruction)}


if __name__ == "__main__":
    main()
