"""Step 2: train the autoencoder whose 512-number code for each 1/4-second step is the machine's own score.

Reads   data/steps/                        the step dataset of combine_encoded_test_data.py
Writes  models/autoencoder.keras, encoder.keras, decoder.keras   the model and its two halves
        models/autoencoder.json            resolved arguments, fingerprints, validation figures
        models/autoencoder_loss.png, logs/<run>/   loss curves, TensorBoard logs (trained architectures)

--arch sparse (default: nothing to train; each step's strongest spectral lines, band levels and loudness),
dense (one linear layer, lapped, started from PCA) or conv (needs a GPU and hours): see docs/codec.md.

Example:
    python autoencode.py                                   # the sparse code: seconds, no training
    python autoencode.py --arch dense --latent-dim 512 --epochs 30
    python autoencode.py --arch conv --resume              # after an interruption
"""
import argparse
import logging
import time
from pathlib import Path

import numpy as np

from common import audio, cli, datasets, paths, plots, training
from common.errors import PipelineError

log = logging.getLogger("musicgen")

ARCHITECTURES = ("sparse", "dense", "conv")
# Adam steps of 3e-4 are right for a network learning from scratch but tear a PCA start apart (its weights
# are ~0.006): fine-tuning dense from PCA needs steps ~30x smaller to improve on it at all.
DEFAULT_LEARNING_RATES = {"sparse": 3e-4, "dense": 1e-5, "conv": 3e-4}  # sparse: unused, it has no weights
# Batches of 256 keep the two cores' matrix units busy on the dense autoencoder's big matmuls (over half
# the machine's matmul peak, 2.5x the examples/s of 32: python -m bench.speed); conv's activations are too
# large for that, and the sparse code only evaluates.
DEFAULT_BATCH_SIZES = {"sparse": 32, "dense": 256, "conv": 32}
PCA_RANK_TOLERANCE = 1e-6  # of the largest variance: directions below it hold < -60 dB of the energy
# The lapped transform suits dense: its linear layers then code each step once, not its margins twice, a closer
# round trip (+0.9 dB SI-SDR) decoded with no cross-fade correction (encode + decode 2x faster), and its
# continuations kept every target of bench/continuation.py. Sparse lapped codes round-trip better too, but
# the score models' continuations of them measured further from real music (docs/codec.md).
DEFAULT_LAPPED = {"sparse": False, "dense": True, "conv": False}
CONV_PADDED_FRAMES = 13824  # SEGMENT_FRAMES rounded up to a multiple of the encoder's total stride (768)
CONV_STRIDES = (4, 4, 4, 4, 3)


def parse_args(argv):
    parser = cli.make_parser(__doc__)
    parser.add_argument("--arch", choices=ARCHITECTURES, default="sparse", help="sparse (default), dense or conv")
    parser.add_argument("--latent-dim", type=int, default=512, help="numbers per 1/4-second step (default 512)")
    parser.add_argument("--width", type=int, default=64, help="conv: channels of its layers (default 64)")
    parser.add_argument("--lapped", action=argparse.BooleanOptionalAction, default=None,
                        help="code steps through a lapped transform (default: " + ", ".join(
                            f"{arch} {'on' if lapped else 'off'}" for arch, lapped in DEFAULT_LAPPED.items()) + ")")
    parser.add_argument("--envelope-blocks", type=int, default=None,
                        help="sparse: loudness blocks a step, in each envelope band (default 24 in 4 bands for "
                             "512-number codes, 32 in 3, else 8 in one; 0: none)")
    parser.add_argument("--envelope-bands", type=int, choices=(1, 3, 4, 5), default=None,
                        help="sparse: envelope bands, split at 300 Hz, 1.5, 5 kHz (4; default for 512 numbers), "
                             "and 10 kHz (5: for soft music), 300 Hz, 3 kHz (3), or none (1)")
    parser.add_argument("--noise-groups", type=int, default=None,
                        help="sparse: frequency groups of the noise envelope (default 12 for 512-number codes; "
                             "0: none)")
    parser.add_argument("--noise-blocks", type=int, default=None,
                        help="sparse: time blocks of the noise envelope a step (default 4)")
    parser.add_argument("--init", choices=("pca", "random"), default="pca",
                        help="dense: start from PCA (default) or random weights")
    parser.add_argument("--pca-segments", type=int, default=3000,
                        help="segments sampled for the PCA start (110 kB each)")
    parser.add_argument("--loss", choices=("auto", "mse", "spectral"), default="auto",
                        help="auto: mse for dense, spectral for the others")
    group = training.add_training_arguments(parser, epochs=40, batch_size=None, learning_rate=None)
    for action in group._group_actions:  # the shared flags cannot know that their defaults depend on --arch
        if action.dest == "learning_rate":
            action.help = "Adam (default: " + ", ".join(
                f"{arch} {rate:g}" for arch, rate in DEFAULT_LEARNING_RATES.items() if arch != "sparse") + ")"
        if action.dest == "batch_size":
            action.help = f"global batch (default: dense {DEFAULT_BATCH_SIZES['dense']}, others " \
                          f"{DEFAULT_BATCH_SIZES['conv']})"
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="time budget; keeps the best epoch (default 0: none)")
    parser.add_argument("--preview-seconds", type=float, default=4.0,
                        help="TensorBoard audio per epoch, s (default 4)")
    args = parser.parse_args(argv)
    if args.learning_rate is None:
        args.learning_rate = DEFAULT_LEARNING_RATES[args.arch]
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH_SIZES[args.arch]
    if args.lapped is None:
        args.lapped = DEFAULT_LAPPED[args.arch]
    return args


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return run(args)


def build_dense(latent_dim, lapped=False):
    """The seed's autoencoder: flatten the step, one linear hidden layer (the score), linear output.

    lapped: the step is first folded by the lapped transform (codec.LappedAnalysis, no weights) and
    the decoder unfolds its output (LappedSynthesis), so neighbouring steps' parts add up to the song with no
    energy correction and the margins are not coded twice.
    """
    import keras
    from keras import layers

    from common.codec import LappedAnalysis, LappedSynthesis

    segment = keras.Input((audio.SEGMENT_FRAMES, audio.CHANNELS), name="segment")
    flat_input = LappedAnalysis(name="fold")(segment) if lapped else layers.Flatten()(segment)
    encoder = keras.Model(segment, layers.Dense(latent_dim, name="score")(flat_input), name="encoder")
    score = keras.Input((latent_dim,), name="score")
    flat = layers.Dense(flat_input.shape[-1], name="reconstruction")(score)
    output = (LappedSynthesis(name="unfold") if lapped
              else layers.Reshape((audio.SEGMENT_FRAMES, audio.CHANNELS)))(flat)
    return encoder, keras.Model(score, output, name="decoder")


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


def build_sparse(latent_dim, lapped=False, envelope_blocks=None, noise_groups=None, noise_blocks=None,
                 envelope_bands=None, transform=None):
    """The sparse spectral code of common/codec/: the largest coefficients of the segment's (trimmed) DCT or of
    a lapped transform (MDCT-like) + band levels + the noise envelope + the step's envelope, no weights.
    envelope_blocks, noise_groups, noise_blocks, envelope_bands: None for common.codec's defaults; transform:
    None for "lapped" if lapped else the default (codec.TRANSFORMS), or one of them (an older code's)."""
    import keras

    from common.codec import (
        BAND_KNEE_HZ,
        CUTOFF_DROP_DB,
        FULL_FILL_HZ,
        TRANSFORMS,
        SparseSpectrumDecoding,
        SparseSpectrumEncoding,
        code_layout,
        new_code_settings,
    )

    envelope_blocks, noise_groups, noise_blocks, fine_blocks, envelope_bands = new_code_settings(
        latent_dim, envelope_blocks, noise_groups, noise_blocks, envelope_bands)
    noise_blocks = noise_blocks if noise_groups else 0
    peaks, bands = code_layout(latent_dim, envelope_blocks, noise_groups, noise_blocks, fine_blocks, envelope_bands)
    transform = transform or ("lapped" if lapped else TRANSFORMS[0])
    # Codes with a noise envelope have the newer noise: a smooth spectrum, bands of equal width at the top, an
    # envelope of the whole sound whose part the peaks leave is filled, at the full level in the highs, at the
    # share the peaks leave over the step (a steady noise where the music holds).
    knee_hz = BAND_KNEE_HZ if noise_groups else 0.0
    noise_envelope, full_fill_hz, cutoff_drop_db = (("total", FULL_FILL_HZ, CUTOFF_DROP_DB) if noise_groups
                                                    else ("residual", (), 0.0))
    segment = keras.Input((audio.SEGMENT_FRAMES, audio.CHANNELS), name="segment")
    encoding = SparseSpectrumEncoding(peaks, bands, transform=transform, envelope_blocks=envelope_blocks,
                                      noise_groups=noise_groups, noise_blocks=noise_blocks, fine_blocks=fine_blocks,
                                      band_knee_hz=knee_hz, noise_envelope=noise_envelope,
                                      envelope_bands=envelope_bands, name="score")
    encoder = keras.Model(segment, encoding(segment), name="encoder")
    score = keras.Input((latent_dim,), name="score")
    decoding = SparseSpectrumDecoding(peaks, bands, transform=transform, envelope_blocks=envelope_blocks,
                                      noise_groups=noise_groups, noise_blocks=noise_blocks, fine_blocks=fine_blocks,
                                      smooth_noise=bool(noise_groups), band_knee_hz=knee_hz,
                                      noise_envelope=noise_envelope, full_fill_hz=full_fill_hz,
                                      cutoff_drop_db=cutoff_drop_db, noise_window="vorbis" if noise_groups else "sine",
                                      envelope_bands=envelope_bands, noise_share="step" if noise_groups else "block",
                                      name="reconstruction")
    decoder = keras.Model(score, decoding(score), name="decoder")
    return encoder, decoder


def sparse_record(decoder):
    """What the autoencoder's record says of a sparse code's format (None for other codes)."""
    from common.codec import sparse_format

    code_format = sparse_format(decoder)
    return {"sparse_transform": code_format and code_format.transform,
            "envelope_blocks": code_format and code_format.envelope_blocks,
            "noise_groups": code_format and code_format.noise_groups,
            "noise_blocks": code_format and code_format.noise_blocks,
            "noise_fine_blocks": code_format and code_format.fine_blocks,
            "envelope_bands": code_format and code_format.envelope_bands}


def build_architecture(arch, latent_dim, width=64, lapped=False, envelope_blocks=None, noise_groups=None,
                       noise_blocks=None, envelope_bands=None):
    """(encoder, decoder) of one architecture: (batch, SEGMENT_FRAMES, 2) -> (batch, latent_dim) -> back.
    width: the conv architecture's channels; lapped: sparse and dense through a lapped transform;
    envelope_blocks, noise_groups, noise_blocks, envelope_bands: the sparse code's (None: its defaults)."""
    if lapped and arch not in ("sparse", "dense"):
        raise PipelineError(f"--lapped is for the sparse and dense architectures, not {arch}")
    for flag, value in (("--envelope-blocks", envelope_blocks), ("--noise-groups", noise_groups),
                        ("--noise-blocks", noise_blocks), ("--envelope-bands", envelope_bands)):
        if value and arch != "sparse":
            raise PipelineError(f"{flag} is for the sparse architecture, not {arch}")
    if arch == "sparse":
        return build_sparse(latent_dim, lapped, envelope_blocks, noise_groups, noise_blocks, envelope_bands)
    if arch == "dense":
        return build_dense(latent_dim, lapped)
    return build_conv(latent_dim, width)


def build(args):
    import keras

    from common.models import LappedMSE, SpectralWaveformLoss

    encoder, decoder = build_architecture(args.arch, args.latent_dim, args.width, args.lapped, args.envelope_blocks,
                                          args.noise_groups, args.noise_blocks, args.envelope_bands)
    segment = keras.Input((audio.SEGMENT_FRAMES, audio.CHANNELS), name="segment")
    loss_name = args.loss if args.loss != "auto" else ("mse" if args.arch == "dense" else "spectral")
    loss = SpectralWaveformLoss() if loss_name == "spectral" else "mse"
    if args.arch == "dense" and args.lapped:
        # Its decoded parts are not segments: it trains on the folded steps, whose MSE is the song's.
        if loss_name != "mse":
            raise PipelineError("--arch dense --lapped (its default) trains with --loss mse; "
                                "add --no-lapped for --loss spectral")
        folded_reconstruction = decoder.get_layer("reconstruction")(encoder(segment))
        autoencoder = keras.Model(segment, folded_reconstruction, name="autoencoder")
        loss = LappedMSE()
    else:
        autoencoder = keras.Model(segment, decoder(encoder(segment)), name="autoencoder")
    metrics = [] if isinstance(loss, LappedMSE) else ["mse"]  # (its loss is the MSE)
    autoencoder.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss=loss, metrics=metrics,
                        **training.compile_options(args, xla_by_default=args.arch == "dense"))
    return autoencoder, encoder, decoder


def sample_segments(folder, index, split, count, seed=0):
    """Up to count segments cut at random offsets from a split's songs, flattened: (n, SEGMENT_FRAMES * 2).

    Random offsets rather than the step grid: a PCA of grid-aligned segments learns where step boundaries
    fall and reconstructs less detail there (a dip at every boundary); shifted segments teach it to treat
    every position alike, which also generalises a little better (+0.1 dB SI-SDR on held-out music).
    """
    rng = np.random.default_rng(seed)
    songs = datasets.songs_in_split(index, split)
    lengths = np.array([song["num_steps"] for song in songs], np.float64)
    per_song = rng.multinomial(min(count, int(lengths.sum())), lengths / lengths.sum())
    sample = np.empty((per_song.sum(), audio.SEGMENT_FRAMES * audio.CHANNELS), np.float32)
    filled = 0
    for song, how_many in zip(songs, per_song):
        if how_many == 0:
            continue
        # The song as stored (int16: a quarter of a padded float32 copy, which put 0.3 GB on step 2's peak),
        # its segments converted one at a time.
        frames = datasets.load_stored_song_steps(folder, song).reshape(-1, audio.CHANNELS)
        padded_length = len(frames) + 2 * audio.SEGMENT_MARGIN
        for start in rng.integers(0, padded_length - audio.SEGMENT_FRAMES + 1, how_many):
            sample[filled] = segment_with_silent_margins(frames, start - audio.SEGMENT_MARGIN).reshape(-1)
            filled += 1
    return sample


def segment_with_silent_margins(frames, first):
    """(SEGMENT_FRAMES, 2) float32 of stored frames [first, first + SEGMENT_FRAMES), silent outside the song:
    padded like segments_from_steps, so the first and last steps are seen with their silent margins."""
    segment = np.zeros((audio.SEGMENT_FRAMES, audio.CHANNELS), np.float32)
    lo, hi = max(first, 0), min(first + audio.SEGMENT_FRAMES, len(frames))
    segment[lo - first:hi - first] = datasets.decode_stored_steps(frames[lo:hi])
    return segment


def fold_segments(flat_segments, per_batch=512):
    """(N, SEGMENT_FRAMES * 2) segments -> (N, 2 * STEP_FRAMES) folded steps of the lapped transform
    (codec.LappedAnalysis), a batch at a time into one array: neither the sample nor its folded copy
    is held twice (a list of batches, then their concatenation, put 0.25 GB more on step 2's peak)."""
    from common.codec import LappedAnalysis

    fold = LappedAnalysis()
    folded = np.empty((len(flat_segments), audio.CHANNELS * audio.STEP_FRAMES), np.float32)
    for first in range(0, len(flat_segments), per_batch):
        batch = flat_segments[first:first + per_batch].reshape(-1, audio.SEGMENT_FRAMES, audio.CHANNELS)
        folded[first:first + per_batch] = np.asarray(fold(batch))
    return folded


def gram_matrix(samples, columns_per_chunk=2048):
    """samples @ samples.T of (N, D) float32 data, summed in float64 a slice of columns at a time.

    A float32 Gram matrix is off by ~1e-7 of its largest eigenvalue, which tilts the weaker principal
    directions by ~1e-4; float64 sums of the whole sample would double the biggest thing in memory.
    """
    gram = np.zeros((len(samples), len(samples)))
    for start in range(0, samples.shape[1], columns_per_chunk):
        chunk = samples[:, start:start + columns_per_chunk].astype(np.float64)
        gram += chunk @ chunk.T
    return gram


def fit_pca(flat_segments, components):
    """Mean (D,) and the top principal directions (D, k) of (N, D) data, via the N x N Gram matrix (N << D).

    The data is centred in place. Fewer than `components` directions come back when the data spans fewer: N
    centred samples span at most N - 1, and a direction whose variance is below PCA_RANK_TOLERANCE of the largest
    is float32 rounding, which dividing by its tiny singular value would blow up into loud noise.
    """
    mean = flat_segments.mean(axis=0)
    centred = flat_segments
    centred -= mean  # in place: a second copy of the sample would be the biggest thing in memory
    eigenvalues, eigenvectors = np.linalg.eigh(gram_matrix(centred))
    order = np.argsort(eigenvalues)[::-1][: min(components, len(centred) - 1)]
    order = order[eigenvalues[order] > PCA_RANK_TOLERANCE * max(eigenvalues.max(), 0.0)]
    singular = np.sqrt(eigenvalues[order])
    basis = (centred.T @ eigenvectors[:, order].astype(np.float32)) / singular.astype(np.float32)
    return mean, basis  # basis columns are orthonormal


def initialise_from_pca(encoder, decoder, mean, basis):
    """Set the dense encoder/decoder to project onto the PCA basis; unused latent units keep random weights."""
    rank = basis.shape[1]
    encoder_kernel, encoder_bias = encoder.get_layer("score").get_weights()
    decoder_kernel, _ = decoder.get_layer("reconstruction").get_weights()
    encoder_kernel[:, :rank] = basis
    encoder_bias[:rank] = -mean @ basis
    decoder_kernel[:rank] = basis.T
    decoder_kernel[rank:] = 0.0  # random directions must not add noise to the PCA reconstruction
    encoder.get_layer("score").set_weights([encoder_kernel, encoder_bias])
    decoder.get_layer("reconstruction").set_weights([decoder_kernel, mean])


def make_preview_callback(preview_steps, run_log_dir, encoder, decoder):
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
            reconstruction = decode(decoder, encode(encoder, preview_steps))  # (they share the model's weights)
            self.log_audio("reconstruction", np.clip(reconstruction, -1, 1), epoch + 1)

    return AudioPreview()


def make_keep_start_callback(val_data, start_weights_path):
    """A callback that puts the starting weights back at the end if no epoch beat their validation loss.

    Early stopping only chooses among trained epochs; a fitted start (PCA) can be better than all of them.
    The starting weights wait in a file: in memory they would be a full copy of the model for the whole
    training (113 MB for the dense autoencoder), on top of the optimizer's two.
    """
    import keras

    class KeepStartUnlessBeaten(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            training.park_weights(self.model.get_weights(), start_weights_path)
            self.start_loss = float(self.model.evaluate(val_data, verbose=0, return_dict=True)["loss"])
            self.best_loss, self.kept_start = float("inf"), False

        def on_epoch_end(self, epoch, logs=None):
            self.best_loss = min(self.best_loss, float((logs or {}).get("val_loss", float("inf"))))

        def on_train_end(self, logs=None):
            if self.best_loss >= self.start_loss:
                training.restore_parked_weights(self.model, start_weights_path)
                self.kept_start = True
                log.info("no epoch beat the starting weights (validation loss %.6g): kept them", self.start_loss)
            else:
                Path(start_weights_path).unlink(missing_ok=True)

    return KeepStartUnlessBeaten()


def make_time_limit_callback(max_minutes):
    """A callback that stops training when one more epoch (as long as the last) would end past max_minutes."""
    import keras

    class TimeLimit(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = self.epoch_started = time.monotonic()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            now = time.monotonic()
            if max_minutes and (now - self.started) + (now - self.epoch_started) > 60 * max_minutes:
                log.info("--max-minutes %g: another epoch would not fit; stopping after epoch %d", max_minutes,
                         epoch + 1)
                self.model.stop_training = True

    return TimeLimit()


def train(args, models, train_data, val_data, preview_steps, backup_dir, run_log_dir, fitted_start):
    """Fit with the standard callbacks; returns (history dict, best validation loss, epochs run, start kept).
    models: (autoencoder, encoder, decoder)."""
    autoencoder, encoder, decoder = models
    extra = [make_time_limit_callback(args.max_minutes)]
    if len(preview_steps):
        extra.append(make_preview_callback(preview_steps, run_log_dir, encoder, decoder))
    start_weights = backup_dir.with_name(f"{backup_dir.name}-start-weights.npz")
    keep_start = make_keep_start_callback(val_data, start_weights) if fitted_start else None
    callbacks = training.standard_callbacks(args, backup_dir, run_log_dir, extra + ([keep_start] if keep_start else []))
    history = autoencoder.fit(train_data, validation_data=val_data, epochs=args.epochs, callbacks=callbacks,
                              verbose=training.fit_verbosity(args))
    best = training.best_validation_loss(history)
    if keep_start is not None and keep_start.kept_start:
        best = keep_start.start_loss
    return history.history, best, len(history.history.get("loss", [])), bool(keep_start and keep_start.kept_start)


def run(args):
    training.check_training_arguments(args)
    if args.latent_dim < (3 if args.arch == "sparse" else 1):
        raise PipelineError(f"--latent-dim must be at least {3 if args.arch == 'sparse' else 1} for --arch {args.arch}")
    if args.envelope_blocks is not None and not 0 <= args.envelope_blocks <= args.latent_dim - 3:
        raise PipelineError(f"--envelope-blocks must be 0 to --latent-dim - 3 ({args.latent_dim - 3}), "
                            f"not {args.envelope_blocks}")
    if args.arch == "sparse":
        from common.codec import code_layout, new_code_settings

        blocks, groups, noise_blocks, fine_blocks, bands = new_code_settings(
            args.latent_dim, args.envelope_blocks, args.noise_groups, args.noise_blocks, args.envelope_bands)
        if groups < 0 or noise_blocks < 1 or code_layout(args.latent_dim, blocks, groups, noise_blocks,
                                                         fine_blocks, bands)[0] < 1:
            raise PipelineError(f"--noise-groups {groups} x --noise-blocks {noise_blocks} leave no room for peaks in "
                                f"a code of {args.latent_dim} numbers with an envelope of {bands} x {blocks} "
                                f"(groups >= 0, blocks >= 1)")
    if args.max_minutes < 0:
        raise PipelineError("--max-minutes must be 0 (no limit) or more")
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
    fitted_start = args.arch == "dense" and args.init == "pca" and not args.resume
    if fitted_start:
        sample = sample_segments(folder, index, "train", args.pca_segments, seed=args.random_seed)
        if args.lapped:  # the PCA of the folded steps, the space its dense layers work in
            sample = fold_segments(sample)
        initialise_from_pca(encoder, decoder, *fit_pca(sample, args.latent_dim))
        log.info("initialised from the PCA of %d training segments", len(sample))
        del sample
    log.info("%s autoencoder: %s parameters, %d replicas", args.arch, f"{autoencoder.count_params():,}",
             strategy.num_replicas_in_sync)

    # Train; the sparse code has no weights, so it is ready as built.
    if autoencoder.trainable_weights:
        history, best_loss, epochs_run, kept_start = train(args, (autoencoder, encoder, decoder), train_data,
                                                           val_data, preview_steps, backup_dir, run_log_dir,
                                                           fitted_start)
    else:
        log.info("the %s code has nothing to train: --epochs is not used", args.arch)
        history, epochs_run, kept_start = {}, 0, False
        best_loss = float(autoencoder.evaluate(val_data, verbose=0, return_dict=True)["loss"])
        run_log_dir.mkdir(parents=True, exist_ok=True)

    # Adam's two slots per weight are not needed once trained (--resume keeps its own copy in the backup);
    # letting them go before validating and saving keeps those off the top of step 2's peak memory.
    training.drop_optimizer(autoencoder)

    # Save: figures and picture first, then the models and at once the record that ties them together, so
    # that a kill leaves as short a window as possible between new models and their record.
    figures = validation_figures(encoder, decoder, folder, index, val_split)
    training.release_freed_memory()  # what validating freed (~110 MB, lapped dense) would sit under Keras's saving
    plot_path = None
    if history:
        plot_path = plots.loss_curves(history, paths.loss_plot_path(args.models_dir, "autoencoder"),
                                      title=f"{args.arch} autoencoder")
    for name, model in (("autoencoder", autoencoder), ("encoder", encoder), ("decoder", decoder)):
        save_model(model, paths.model_path(args.models_dir, name))
    write_record(args.models_dir, "autoencoder", {
        "kind": "autoencoder", "arch": args.arch, "latent_dim": args.latent_dim,
        "lapped": args.lapped, **sparse_record(decoder),
        "segment_frames": audio.SEGMENT_FRAMES,
        "fingerprint": autoencoder_fingerprint(args.models_dir),
        "steps_fingerprint": index["fingerprint"], "epochs_run": epochs_run, "kept_start": kept_start,
        "best_val_loss": best_loss, "validation": figures,
        "args": training.save_arguments(args), "tensorflow": tf.__version__,
    })
    artifacts.write_json(run_log_dir / "args.json", training.save_arguments(args))

    # Report.
    trained = (f"best validation loss {best_loss:.5f} after {epochs_run} epochs"
               + (" (none beat the PCA start, which was kept)" if kept_start else "") if epochs_run
               else f"nothing to train (validation loss {best_loss:.5f})")
    logs = (f"  loss curves: {plot_path}\n  TensorBoard: tensorboard --logdir {run_log_dir.parent}\n"
            if plot_path else "")
    cli.summary(
        f"autoencoder ({args.arch}, latent {args.latent_dim}): {paths.model_path(args.models_dir, 'autoencoder')}\n"
        f"  {trained}; validation SNR {figures['snr_db']:.2f} dB, SI-SDR {figures['si_sdr_db']:.2f} dB\n"
        f"{logs}  next: python autoencode_test.py, then python create_encoded_data.py"
    )
    return figures


def validation_figures(encoder, decoder, folder, index, split, max_steps=2400):
    """SNR and SI-SDR of the decoded score against the original, over (at most 10 minutes of) validation songs."""
    from common import metrics
    from common.models import round_trip_pieces

    # Added up piece by piece: memory stays at the stored song and one piece of it (this runs on top of
    # everything training holds, so it would otherwise set step 2's peak). Pieces of 64 steps rather than 256
    # took 60 MB off that peak (lapped dense, 2 hours of music) in the same time.
    sums, total = 0.0, 0
    for song in datasets.songs_in_split(index, split):
        steps = datasets.load_stored_song_steps(folder, song)[: max_steps - total]
        pieces = round_trip_pieces(encoder, decoder, steps, piece_steps=64, to_float=datasets.decode_stored_steps)
        for _, _, original, decoded in pieces:
            sums = sums + metrics.fidelity_sums(original, decoded)
        total += len(steps)
        if total >= max_steps:
            break
    return metrics.fidelity_from_sums(sums)


if __name__ == "__main__":
    main()
