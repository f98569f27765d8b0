"""What the two score-model scripts (steps 5 and 6) share: the model around each body, loading windows,
training, measuring, saving. Each script supplies only its body.

A score model reads --in-steps steps of a score, with what each step sounds like (common/step_features.py),
and predicts a Gaussian over what each of the next --out-steps steps will sound like: a mean and a spread per
step and feature (log-mel, chroma, envelope, level). Around each body:
  - experts guess the next steps from the window alone (common/score_layers.py): what followed the moments
    of the window that sound like its last second (look-back: repetition, the strongest cue of what comes
    next in a song), its last step (continuity) and its mean step (the song's sound);
  - the body reads the window (each step's features, centred on the window's mean, and a few numbers of its
    normalised score) and decides, per window, step and group of features, how far to trust each expert,
    and corrects the mean; its last layer starts at zero, so an untrained model is the look-back alone;
  - it is trained contrastively (InfoNCE, as in CPC): the window's real next steps should be likelier under
    its Gaussian than --distractors other places of the same song at least 2 s away and the other windows'
    real next steps in the batch. A Gaussian fitted by likelihood to the score (the models before) averages
    the futures it cannot tell apart and ranked the real next second below "repeat the last step";
  - Gaussian noise on its inputs while training, dropout before the body's last layer.
It is judged by the "what comes next" test (common/ranking.py): from each window of the validation songs,
rank the real next steps against 24 other places of the same song, beside four simple scorers.
"""
import argparse
import logging

import numpy as np

from common import (
    artifacts,
    cli,
    datasets,
    paths,
    plots,
    ranking,
    step_features,
    training,
)
from common.errors import PipelineError

log = logging.getLogger("musicgen")

SCORE_INPUT, FEATURE_INPUT = "score_window", "feature_window"
OUTPUT = "next_steps_gaussian"  # the record's "output": what the model predicts
LOOK_BACK_CONTEXT = 4  # steps of context the look-back expert matches (4: the last second)
EXPERTS = 2  # look-back and last step
SCORE_NUMBERS = 16  # the normalised score enters the body through this many learned numbers per step
DISTRACTORS = 16  # other places of the same song each training window's real next steps are told from
VALIDATION_STRIDE = 4  # steps between the windows of the validation ranking


def make_parser(description, name):
    parser = cli.make_parser(description)
    parser.add_argument("--input-noise", type=float, default=0.1,
                        help="training noise on the body's inputs (default 0.1)")
    parser.add_argument("--dropout", type=float, default=0.3,
                        help="dropout before the body's last layer (default 0.3)")
    parser.add_argument("--distractors", type=int, default=DISTRACTORS,
                        help=f"same-song places per training window (default {DISTRACTORS})")
    parser.add_argument("--max-windows", type=int, default=None,
                        help="at most N training windows per epoch (default: all)")
    training.add_training_arguments(parser, epochs=30, batch_size=64, learning_rate=1e-3, patience=4,
                                    epochs_note="; 0: save it untrained")
    return parser


def check_args(args):
    # --epochs 0 saves the untrained model: what a model of this shape knows before it has heard any music.
    training.check_training_arguments(argparse.Namespace(**{**vars(args), "epochs": max(args.epochs, 1)}))
    if args.input_noise < 0:
        raise PipelineError("--input-noise must be >= 0")
    if not 0 <= args.dropout < 1:
        raise PipelineError("--dropout must be in [0, 1)")
    if args.distractors < 1:
        raise PipelineError("--distractors must be at least 1")


def load_songs(args):
    """The checked score dataset, its training and validation songs (datasets.SongsHeard) and the record of the
    autoencoder it must match."""
    from common.models import read_record

    folder = paths.scores_dir(args.data_dir)
    autoencoder = read_record(args.models_dir, "autoencoder", "autoencoder")
    index = datasets.score_index(folder, autoencoder["fingerprint"])
    splits = {split: datasets.songs_heard(folder, index, split) for split in ("train", "validation")}
    window = index["in_steps"] + index["out_steps"]
    if splits["train"] is None or not np.any(splits["train"].lengths >= window):
        raise PipelineError("the score dataset has no training windows: rerun create_encoded_data.py with longer songs")
    if splits["validation"] is None or not np.any(splits["validation"].lengths >= window):
        log.warning("no validation windows (validation songs too short or absent): validating on training windows")
        splits["validation"] = splits["train"]
    return index, splits, autoencoder


def model_inputs(scores, features):
    """The dict a score model is called with: windows of the score (n, in_steps, latent) and of their step
    features (n, in_steps, SIZE)."""
    return {SCORE_INPUT: scores, FEATURE_INPUT: features}


def wrap_body(body, in_steps, out_steps, latent_dim, multipliers, variance, input_noise, name):
    """[score window, feature window] -> experts, body -> Gaussian (out_steps, 2 * SIZE) [mean | spread].

    body: a function (in_steps, channels) -> (out_steps, body_outputs()), its last layer zero-initialised.
    multipliers (SIZE,): step_features.comparable_multipliers of the training corpus; variance (latent,): the
    corpus variance of each score number (the floor of the window's own normalisation).
    """
    import keras
    from keras import layers

    from common.score_layers import (ComparableFeatures, ContextNormalisation, LastStep, LookBack, ProductOfExperts,
                                     WindowMean)

    groups = step_features.group_of_each_feature()
    score = keras.Input((in_steps, latent_dim), name=SCORE_INPUT)
    features = keras.Input((in_steps, step_features.SIZE), name=FEATURE_INPUT)
    comparable = ComparableFeatures(multipliers, name="comparable")(features)
    look_back = LookBack(LOOK_BACK_CONTEXT, out_steps, groups, name="look_back")(comparable)
    last_step = LastStep(out_steps, groups, name="last_step")(comparable)
    # The body hears each step against the window's mean, and the score through a few learned numbers per step.
    centred = layers.Subtract(name="centred")([comparable, WindowMean(name="window_mean")(comparable)])
    normalised, _, _ = ContextNormalisation(variance, name="normalise_score")([score, score])
    score_numbers = layers.Dense(SCORE_NUMBERS, name="score_numbers")(normalised)
    heard = layers.Concatenate(name="body_input")([centred, score_numbers])
    if input_noise > 0:
        heard = layers.GaussianNoise(input_noise, name="training_noise")(heard)
    gaussian = ProductOfExperts(groups, multipliers, name="gaussian")([body(heard), *look_back, *last_step])
    return keras.Model({SCORE_INPUT: score, FEATURE_INPUT: features}, gaussian, name=name)


def body_outputs():
    """Numbers per predicted step a body gives: a precision change per expert and group, and a mean correction."""
    return EXPERTS * len(step_features.GROUPS) + step_features.SIZE


def contrastive_dataset(songs, in_steps, out_steps, distractors, batch_size, shuffle=True, seed=0,
                        max_windows=None):
    """tf.data of (inputs, candidates) batches: every window of songs (datasets.SongsHeard) with its real next
    steps' features first and `distractors` other places of the same song (at least ranking.MIN_GAP_STEPS from
    them), drawn anew every epoch when shuffling (the same every time otherwise)."""
    import tensorflow as tf

    window_starts = datasets.window_starts(songs.starts, songs.lengths, in_steps + out_steps)
    if max_windows:
        window_starts = np.random.default_rng(seed).permutation(window_starts)[:max_windows]
    song_of_window = np.searchsorted(songs.starts, window_starts, side="right") - 1
    places = songs.lengths - out_steps + 1  # where an out_steps-step place of each song can start
    scores, features = tf.constant(songs.scores), tf.constant(songs.features)
    song_first, song_places = tf.constant(songs.starts, tf.int64), tf.constant(places, tf.int64)
    window_offsets, next_offsets = tf.range(in_steps, dtype=tf.int64), tf.range(out_steps, dtype=tf.int64)
    generator = tf.random.Generator.from_seed(seed)
    gap = ranking.MIN_GAP_STEPS

    def gather(starts, song):
        first, count = tf.gather(song_first, song), tf.gather(song_places, song)
        real = starts + in_steps - first  # where the real next steps start, within their song
        low, high = tf.maximum(real - gap + 1, 0), tf.minimum(real + gap - 1, count - 1)
        banned = high - low + 1
        if shuffle:
            draws = generator.uniform(tf.stack([tf.size(starts), distractors]))
        else:  # fixed distractors: one draw per window start, the same every epoch
            draws = tf.random.stateless_uniform(tf.stack([tf.size(starts), distractors]), seed=[seed, 0])
        place = tf.cast(draws * tf.cast(count - banned, tf.float32)[:, None], tf.int64)
        place = tf.where(place >= low[:, None], place + banned[:, None], place)
        candidates = first[:, None] + tf.concat([real[:, None], place], axis=1)  # (batch, 1 + distractors)
        window = starts[:, None] + window_offsets[None]
        inputs = model_inputs(tf.gather(scores, window), tf.gather(features, window))
        return inputs, tf.gather(features, candidates[:, :, None] + next_offsets[None, None])

    data = tf.data.Dataset.from_tensor_slices((window_starts, song_of_window.astype(np.int64)))
    if shuffle:
        data = data.shuffle(len(window_starts), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size, drop_remainder=shuffle and len(window_starts) >= batch_size).map(gather)
    return datasets.with_data_sharding(data).prefetch(tf.data.AUTOTUNE)


def predictions(model, scores, features, batch=512):
    """The model's Gaussian (n, out_steps, 2 * SIZE) for windows of scores and features, batch by batch."""
    from common.models import inference

    return np.concatenate([inference(model, model_inputs(scores[first:first + batch], features[first:first + batch]))
                           for first in range(0, len(scores), batch)])


def model_figures(model):
    """The ranking scorer of a score model: its Gaussian's log-likelihood of each candidate."""
    from common.score_layers import log_likelihoods

    def figures(queries):
        prediction = predictions(model, queries.windows, queries.window_features)
        return np.asarray(log_likelihoods(queries.candidate_features, prediction))

    return figures


def validation_ranking(model, songs, in_steps, out_steps, scale, variance):
    """{scorer: ranking.summary} of the model and the simple scorers on the same-song test of songs."""
    queries = ranking.same_song_queries(songs, in_steps, out_steps, scale, variance, VALIDATION_STRIDE)
    if queries is None:
        return {}
    scorers = {"model": model_figures(model), **ranking.BASELINES}
    return {name: ranking.summary(ranking.ranks(scorer(queries))) for name, scorer in scorers.items()}


def train(args, name, build_body):
    """Load the songs, build the model around build_body(in_steps, out_steps, outputs), train, measure, save,
    report. build_body returns a function (in_steps, channels) -> (out_steps, outputs), its last layer
    zero-initialised."""
    check_args(args)
    from common.models import save_model, write_record

    # Load.
    index, splits, _ = load_songs(args)
    in_steps, out_steps, latent_dim = index["in_steps"], index["out_steps"], index["latent_dim"]
    train_songs, val_songs = splits["train"], splits["validation"]
    backup_dir, run_log_dir = training.prepare_run(args, args.models_dir, name)
    strategy = training.make_strategy(args.strategy)
    train_data = contrastive_dataset(train_songs, in_steps, out_steps, args.distractors, args.batch_size,
                                     seed=args.random_seed, max_windows=args.max_windows)
    val_data = contrastive_dataset(val_songs, in_steps, out_steps, args.distractors, args.batch_size, shuffle=False,
                                   seed=args.random_seed)

    # Build inside the strategy's scope.
    import keras

    from common.score_layers import NextStepsContrast, next_steps_top1

    scale = np.std(train_songs.features, axis=0)
    variance = train_songs.scores.var(axis=0) + 1e-6
    with strategy.scope():
        model = wrap_body(build_body(in_steps, out_steps, body_outputs()), in_steps, out_steps, latent_dim,
                          step_features.comparable_multipliers(scale), variance, args.input_noise, name)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=1.0), loss=NextStepsContrast(),
                      metrics=[next_steps_top1], **training.compile_options(args))
    windows = len(datasets.window_starts(train_songs.starts, train_songs.lengths, in_steps + out_steps))
    log.info("%s score model: %s parameters; %d training windows, %d validation songs", name,
             f"{model.count_params():,}", min(windows, args.max_windows or windows), len(val_songs.lengths))

    # Train.
    history = model.fit(train_data, validation_data=val_data, epochs=args.epochs,
                        callbacks=training.standard_callbacks(args, backup_dir, run_log_dir),
                        verbose=training.fit_verbosity(args)) if args.epochs else keras.callbacks.History()
    history.history.setdefault("loss", [])

    # Measure on the validation songs beside the simple scorers, then save the model and at once its record.
    figures = validation_ranking(model, val_songs, in_steps, out_steps, scale, variance)
    save_model(model, paths.model_path(args.models_dir, name))
    write_record(args.models_dir, name, {
        "kind": name, "in_steps": in_steps, "out_steps": out_steps, "latent_dim": latent_dim,
        "output": OUTPUT, "step_features": step_features.VERSION, "scores_fingerprint": index["fingerprint"],
        "autoencoder_fingerprint": index["autoencoder_fingerprint"],
        "model_fingerprint": artifacts.file_fingerprint(paths.model_path(args.models_dir, name)),
        "validation_ranking": figures, "epochs_run": len(history.history["loss"]),
        "args": training.save_arguments(args),
    })
    plot_path = plots.loss_curves(history.history, paths.loss_plot_path(args.models_dir, name),
                                  f"{name} score model (contrastive loss: the real next steps against others)")
    cli.summary(
        f"{name} score model: {paths.model_path(args.models_dir, name)}\n"
        f"  {ranking_line(figures, name, out_steps)}\n"
        f"  loss curves: {plot_path}\n"
        f"  next: python music_generator.py --model {name} --seed-file SONG"
    )
    return figures


def ranking_line(figures, name, out_steps):
    """One line: how often the model and each simple scorer rank the real next steps first."""
    if not figures:
        return "no validation song is long enough to rank its next steps"
    chance = 1 / (ranking.DISTRACTORS + 1)
    others = " | ".join(f"{scorer} {result['top1']:.2f}" for scorer, result in figures.items() if scorer != "model")
    return (f"the real next {out_steps * 0.25:g} s ranked first among {ranking.DISTRACTORS + 1} places of the same "
            f"validation song (top-1, chance {chance:.2f}; {figures['model']['queries']} windows): {name} "
            f"{figures['model']['top1']:.2f} | {others}")
