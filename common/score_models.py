"""What the two score-model scripts (steps 5 and 6) share: loading windows, the residual wrapper, baselines,
training, saving. Each script supplies only its architecture's body.

A score model reads --in-steps steps of a score and predicts the next --out-steps. Around each body:
  - latents are normalised per dimension (statistics of the training scores, saved inside the model),
  - the body's last layer starts at zero, so an untrained model predicts the mean step (on waveform-like
    scores neighbouring steps are nearly unrelated, so the mean beats "repeat the last step" by far),
  - Gaussian noise on the inputs during training makes the model robust to its own imperfect predictions
    when it is fed them back during generation.
It is judged against two baselines on the same validation windows: repeat the last step, and the mean step.
"""
import logging

import numpy as np

from common import artifacts, cli, datasets, paths, plots, training
from common.errors import PipelineError

log = logging.getLogger("musicgen")


def make_parser(description, name):
    parser = cli.make_parser(description)
    parser.add_argument("--input-noise", type=float, default=0.1,
                        help="std of Gaussian noise added to normalised inputs while training (default 0.1)")
    parser.add_argument("--max-windows", type=int, default=None,
                        help="use at most this many training windows per epoch (default: all)")
    training.add_training_arguments(parser, epochs=60, batch_size=64, learning_rate=1e-3, patience=8)
    return parser


def check_args(args):
    training.check_training_arguments(args)
    if args.input_noise < 0:
        raise PipelineError("--input-noise must be >= 0")


def load_windows(args):
    """The checked score dataset and its window starts per split, with the autoencoder it must match."""
    from common.models import read_record

    folder = paths.scores_dir(args.data_dir)
    index = artifacts.read_dataset_index(folder, "scores")
    autoencoder = read_record(args.models_dir, "autoencoder", "autoencoder")
    artifacts.check_same("the score dataset", index["autoencoder_fingerprint"], autoencoder["fingerprint"],
                         "create_encoded_data.py")
    window = index["in_steps"] + index["out_steps"]
    splits = {}
    for split in ("train", "validation"):
        scores, starts, lengths = datasets.concatenated_scores(folder, index, split)
        splits[split] = (scores, datasets.window_starts(starts, lengths, window))
    if len(splits["train"][1]) == 0:
        raise PipelineError("the score dataset has no training windows: rerun create_encoded_data.py with longer songs")
    if len(splits["validation"][1]) == 0:
        log.warning("no validation windows (validation songs too short or absent): validating on training windows")
        splits["validation"] = splits["train"]
    return index, splits


def wrap_body(body, in_steps, out_steps, latent_dim, mean, variance, input_noise, name):
    """inputs (in_steps, latent) -> normalise -> body -> de-normalise -> (out_steps, latent)."""
    import keras
    from keras import layers

    inputs = keras.Input((in_steps, latent_dim), name="score_window")
    normalised = layers.Normalization(mean=mean, variance=variance, name="normalise")(inputs)
    noisy = layers.GaussianNoise(input_noise, name="training_noise")(normalised) if input_noise > 0 else normalised
    predicted = body(noisy)  # (out_steps, latent_dim) in normalised units
    outputs = layers.Normalization(mean=mean, variance=variance, invert=True, name="denormalise")(predicted)
    return keras.Model(inputs, outputs, name=name)


def baselines(train_scores, scores, starts, in_steps, out_steps, batch=4096):
    """Validation MSE of repeat-last-step and of the training mean step, over the given windows."""
    mean_step = train_scores.mean(axis=0)
    totals = {"repeat_last_step": 0.0, "mean_step": 0.0}
    for first in range(0, len(starts), batch):
        inputs, targets = datasets.window_arrays(scores, starts[first:first + batch], in_steps, out_steps)
        totals["repeat_last_step"] += float(np.sum((targets - inputs[:, -1:]) ** 2))
        totals["mean_step"] += float(np.sum((targets - mean_step) ** 2))
    count = len(starts) * out_steps * scores.shape[1]
    return {name: total / count for name, total in totals.items()}


def prediction_residuals(model, scores, starts, in_steps, out_steps, batch=1024):
    """Validation MSE of the model and the per-dimension std of its errors (used to sample with --temperature)."""
    squared_sum, count = np.zeros(scores.shape[1]), 0
    for first in range(0, len(starts), batch):
        inputs, targets = datasets.window_arrays(scores, starts[first:first + batch], in_steps, out_steps)
        errors = targets - model.predict(inputs, verbose=0, batch_size=256)
        squared_sum += np.sum(errors.astype(np.float64) ** 2, axis=(0, 1))
        count += errors.shape[0] * errors.shape[1]
    per_dimension = squared_sum / count
    return float(per_dimension.mean()), np.sqrt(per_dimension)


def train(args, name, build_body):
    """Load the windows, build the model around build_body(in_steps, out_steps, latent_dim), train, save, report."""
    check_args(args)
    from common.models import save_model, write_record

    # Load.
    index, splits = load_windows(args)
    in_steps, out_steps, latent_dim = index["in_steps"], index["out_steps"], index["latent_dim"]
    train_scores, train_starts = splits["train"]
    val_scores, val_starts = splits["validation"]
    if args.max_windows:
        train_starts = np.random.default_rng(args.random_seed).permutation(train_starts)[: args.max_windows]
    backup_dir, run_log_dir = training.prepare_run(args, args.models_dir, name)
    strategy = training.make_strategy(args.strategy)
    train_data = datasets.window_dataset(train_scores, train_starts, in_steps, out_steps, args.batch_size,
                                         seed=args.random_seed)
    val_data = datasets.window_dataset(val_scores, val_starts, in_steps, out_steps, args.batch_size, shuffle=False)

    # Build inside the strategy's scope.
    import keras

    mean, variance = train_scores.mean(axis=0), train_scores.var(axis=0) + 1e-6
    with strategy.scope():
        model = wrap_body(build_body(in_steps, out_steps, latent_dim), in_steps, out_steps, latent_dim, mean,
                          variance, args.input_noise, name)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=1.0), loss="mse",
                      **training.compile_options(args))
    log.info("%s score model: %s parameters; %d training windows, %d validation windows", name,
             f"{model.count_params():,}", len(train_starts), len(val_starts))

    # Train.
    history = model.fit(train_data, validation_data=val_data, epochs=args.epochs,
                        callbacks=training.standard_callbacks(args, backup_dir, run_log_dir),
                        verbose=training.fit_verbosity(args))

    # Save and measure against the baselines on the same validation windows.
    save_model(model, paths.model_path(args.models_dir, name))
    val_mse, residual_std = prediction_residuals(model, val_scores, val_starts, in_steps, out_steps)
    reference = baselines(train_scores, val_scores, val_starts, in_steps, out_steps)
    figures = {"val_mse": val_mse, **{f"{key}_mse": value for key, value in reference.items()},
               "improvement_over_repeat": 1 - val_mse / reference["repeat_last_step"]}
    write_record(args.models_dir, name, {
        "kind": name, "in_steps": in_steps, "out_steps": out_steps, "latent_dim": latent_dim,
        "scores_fingerprint": index["fingerprint"], "autoencoder_fingerprint": index["autoencoder_fingerprint"],
        "model_fingerprint": artifacts.file_fingerprint(paths.model_path(args.models_dir, name)),
        "residual_std": residual_std.tolist(), "validation": figures, "epochs_run": len(history.history["loss"]),
        "args": training.save_arguments(args),
    })
    plot_path = plots.loss_curves(history.history, paths.loss_plot_path(args.models_dir, name), f"{name} score model")
    cli.summary(
        f"{name} score model: {paths.model_path(args.models_dir, name)}\n"
        f"  validation MSE of the next {out_steps} steps: {name} {val_mse:.5f} | repeat last step "
        f"{reference['repeat_last_step']:.5f} | mean step {reference['mean_step']:.5f} "
        f"({100 * figures['improvement_over_repeat']:+.1f}% vs repeat last step)\n"
        f"  loss curves: {plot_path}\n"
        f"  next: python music_generator.py --model {name} --seed-file SONG"
    )
    return figures
