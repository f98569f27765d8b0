"""What the two score-model scripts (steps 5 and 6) share: the probabilistic wrapper around each body, its
custom layers and loss, loading windows, baselines, training, saving. Each script supplies only its body.

A score model reads --in-steps steps of a score and predicts a Gaussian over the next --out-steps: a mean and
a standard deviation for every step and score dimension. Around each body:
  - the window is normalised per dimension by the mean and std of a *reference* window (reversible
    instance normalisation, "RevIN", Kim et al. 2022), and the prediction is mapped back with them.
    Training uses the window itself; generating uses the seed's 10 s, so the model decides what comes next
    and the seed decides its level and timbre, and a long continuation cannot drift away from either;
  - the body's last layer starts at zero, so an untrained model predicts the reference's mean step with the
    reference's own spread; a learned weight per dimension moves that centre towards the training mean
    step where that is the better guess (on waveform-like scores neighbouring steps are nearly unrelated,
    so the mean step beats "repeat the last step" by far);
  - a linear "bridge" from the last input step to the first predicted one (also starting at zero): each
    step is encoded with a 31 ms margin of its neighbours, so consecutive steps share 62.5 ms of audio, the
    one thing on a waveform-like score that is predictable from one step to the next;
  - it is trained on the Gaussian negative log-likelihood, so it learns how much of each step it cannot
    predict, instead of shrinking every prediction to the average step as MSE does; each window's term is
    weighted by its predicted variance ** --nll-beta (beta-NLL), so the mean is learned from every window,
    not mostly from those the model is already sure of (score_layers.BetaGaussianNLL); the generator
    chooses among real steps by their likelihood under that Gaussian;
  - Gaussian noise on the normalised inputs while training makes it robust to its own imperfect output.
Its mean is judged against two baselines on the same validation windows: repeat the last step, and the
mean step; its predicted spread by how calibrated it is.
"""
import logging

import numpy as np

from common import artifacts, cli, datasets, paths, plots, training
from common.errors import PipelineError

log = logging.getLogger("musicgen")

WINDOW_INPUT, REFERENCE_INPUT = "score_window", "reference_window"
NLL_BETA = 0.5  # see score_layers.BetaGaussianNLL and docs/continuation.md


def make_parser(description, name):
    parser = cli.make_parser(description)
    parser.add_argument("--input-noise", type=float, default=0.1,
                        help="training noise on normalised inputs (default 0.1)")
    parser.add_argument("--dropout", type=float, default=0.3,
                        help="dropout before the last layer (default 0.3)")
    parser.add_argument("--nll-beta", type=float, default=NLL_BETA,
                        help=f"beta-NLL power; 0 is the plain NLL (default {NLL_BETA:g})")
    parser.add_argument("--max-windows", type=int, default=None,
                        help="at most N training windows per epoch (default: all)")
    training.add_training_arguments(parser, epochs=60, batch_size=64, learning_rate=1e-3, patience=8)
    return parser


def check_args(args):
    training.check_training_arguments(args)
    if args.input_noise < 0:
        raise PipelineError("--input-noise must be >= 0")
    if not 0 <= args.dropout < 1:
        raise PipelineError("--dropout must be in [0, 1)")
    if not 0 <= args.nll_beta <= 1:
        raise PipelineError(f"--nll-beta must be 0 to 1, not {args.nll_beta:g}")


def load_windows(args):
    """The checked score dataset, its window starts per split, and the record of the autoencoder it must match."""
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
    return index, splits, autoencoder


def wrap_body(body, in_steps, out_steps, latent_dim, mean, variance, input_noise, name):
    """[window, reference] -> normalise by the reference -> body -> Gaussian (out_steps, 2 * latent) [mean | std].

    body maps (in_steps, latent) normalised steps to (out_steps, 2 * latent): mean and log std, reference units.
    """
    import keras
    from keras import layers

    from common.score_layers import ContextNormalisation, GaussianReadout

    window = keras.Input((in_steps, latent_dim), name=WINDOW_INPUT)
    reference = keras.Input((None, latent_dim), name=REFERENCE_INPUT)
    normalised, centre, scale = ContextNormalisation(variance, name="normalise_by_reference")([window, reference])
    noisy = layers.GaussianNoise(input_noise, name="training_noise")(normalised) if input_noise > 0 else normalised
    last_step = layers.Cropping1D((in_steps - 1, 0), name="last_step")(noisy)  # (1, latent)
    bridge = layers.Dense(latent_dim, kernel_initializer="zeros", use_bias=False, name="bridge")(last_step)
    bridge = layers.ZeroPadding1D((0, out_steps - 1), name="first_step_only")(bridge)  # (out_steps, latent)
    outputs = GaussianReadout(mean, name="gaussian")([body(noisy), centre, scale, bridge])
    return keras.Model({WINDOW_INPUT: window, REFERENCE_INPUT: reference}, outputs, name=name)


def model_inputs(windows, references=None):
    """The dict a score model is called with; the reference defaults to the window itself (as in training)."""
    return {WINDOW_INPUT: windows, REFERENCE_INPUT: windows if references is None else references}


def is_recurrent(model):
    """Whether the score model runs an LSTM over its window: compiled with XLA, its per-step ops fuse (17 -> 8 ms
    a window on 2 CPU cores, for ~0.2 s of compiling), where conv1d's few big ops lose more to compiling
    (60 s of continuation: 0.36 -> 0.68 s) than they gain."""
    import keras

    return any(isinstance(layer, keras.layers.RNN) for layer in model.layers)


def training_dataset(scores, starts, in_steps, out_steps, batch_size, shuffle=True, seed=0):
    """tf.data of ({window, reference = the same window}, next steps) batches."""
    data = datasets.window_dataset(scores, starts, in_steps, out_steps, batch_size, shuffle=shuffle, seed=seed)
    return data.map(lambda inputs, targets: (model_inputs(inputs), targets))


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


def predictions(model, scores, starts, in_steps, out_steps, batch=1024):
    """(targets, mean, spread) of the model's Gaussian for the windows at starts, batch by batch."""
    from common.score_layers import split_prediction

    for first in range(0, len(starts), batch):
        inputs, targets = datasets.window_arrays(scores, starts[first:first + batch], in_steps, out_steps)
        yield (targets, *split_prediction(model.predict(model_inputs(inputs), verbose=0, batch_size=256)))


def validation_figures(model, scores, starts, in_steps, out_steps, batch=1024):
    """MSE of the model's mean, per-dimension std of its errors, and how calibrated its predicted std is.

    calibration: mean of ((target - mean) / predicted std)^2, 1.0 when the predicted spread is right.
    """
    squared_sum, count, standardised_sum = np.zeros(scores.shape[1]), 0, 0.0
    for targets, mean, spread in predictions(model, scores, starts, in_steps, out_steps, batch):
        errors = (targets - mean).astype(np.float64)
        squared_sum += np.sum(errors ** 2, axis=(0, 1))
        standardised_sum += float(np.sum((errors / spread) ** 2))
        count += errors.shape[0] * errors.shape[1]
    per_dimension = squared_sum / count
    return {"val_mse": float(per_dimension.mean()),
            "calibration": standardised_sum / (count * scores.shape[1])}, np.sqrt(per_dimension)


def train(args, name, build_body):
    """Load the windows, build the model around build_body(in_steps, out_steps, latent_dim), train, save, report.

    build_body returns a function (in_steps, latent) -> (out_steps, 2 * latent), its last layer zero-initialised.
    """
    check_args(args)
    from common.models import save_model, write_record

    # Load.
    index, splits, _ = load_windows(args)
    in_steps, out_steps, latent_dim = index["in_steps"], index["out_steps"], index["latent_dim"]
    train_scores, train_starts = splits["train"]
    val_scores, val_starts = splits["validation"]
    if args.max_windows:
        train_starts = np.random.default_rng(args.random_seed).permutation(train_starts)[: args.max_windows]
    backup_dir, run_log_dir = training.prepare_run(args, args.models_dir, name)
    strategy = training.make_strategy(args.strategy)
    train_data = training_dataset(train_scores, train_starts, in_steps, out_steps, args.batch_size,
                                  seed=args.random_seed)
    val_data = training_dataset(val_scores, val_starts, in_steps, out_steps, args.batch_size, shuffle=False)

    # Build inside the strategy's scope.
    import keras

    from common.score_layers import BetaGaussianNLL, mean_mse

    mean, variance = train_scores.mean(axis=0), train_scores.var(axis=0) + 1e-6
    with strategy.scope():
        model = wrap_body(build_body(in_steps, out_steps, latent_dim), in_steps, out_steps, latent_dim, mean,
                          variance, args.input_noise, name)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=1.0),
                      loss=BetaGaussianNLL(args.nll_beta), metrics=[mean_mse], **training.compile_options(args))
    log.info("%s score model: %s parameters; %d training windows, %d validation windows", name,
             f"{model.count_params():,}", len(train_starts), len(val_starts))

    # Train.
    history = model.fit(train_data, validation_data=val_data, epochs=args.epochs,
                        callbacks=training.standard_callbacks(args, backup_dir, run_log_dir),
                        verbose=training.fit_verbosity(args))

    # Measure against the baselines on the same validation windows, then save the model and at once its record.
    model_figures, residual_std = validation_figures(model, val_scores, val_starts, in_steps, out_steps)
    reference = baselines(train_scores, val_scores, val_starts, in_steps, out_steps)
    val_mse = model_figures["val_mse"]
    figures = {**model_figures, **{f"{key}_mse": value for key, value in reference.items()},
               "improvement_over_repeat": 1 - val_mse / reference["repeat_last_step"],
               "improvement_over_mean": 1 - val_mse / reference["mean_step"]}
    save_model(model, paths.model_path(args.models_dir, name))
    write_record(args.models_dir, name, {
        "kind": name, "in_steps": in_steps, "out_steps": out_steps, "latent_dim": latent_dim,
        "output": "gaussian", "scores_fingerprint": index["fingerprint"],
        "autoencoder_fingerprint": index["autoencoder_fingerprint"],
        "model_fingerprint": artifacts.file_fingerprint(paths.model_path(args.models_dir, name)),
        "residual_std": residual_std.tolist(),
        "validation": figures, "epochs_run": len(history.history["loss"]),
        "args": training.save_arguments(args),
    })
    plot_path = plots.loss_curves(history.history, paths.loss_plot_path(args.models_dir, name),
                                  f"{name} score model (Gaussian negative log-likelihood, beta {args.nll_beta:g})")
    cli.summary(
        f"{name} score model: {paths.model_path(args.models_dir, name)}\n"
        f"  validation MSE of the next {out_steps} steps: {name} {val_mse:.5f} | repeat last step "
        f"{reference['repeat_last_step']:.5f} | mean step {reference['mean_step']:.5f} "
        f"({100 * figures['improvement_over_repeat']:+.1f}% vs repeat last step, "
        f"{100 * figures['improvement_over_mean']:+.1f}% vs mean step)\n"
        f"  predicted spread calibration {figures['calibration']:.2f} (1.00 = errors as large as predicted)\n"
        f"  loss curves: {plot_path}\n"
        f"  next: python music_generator.py --model {name} --seed-file SONG"
    )
    return figures
