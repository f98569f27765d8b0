"""Training conveniences shared by autoencode.py, conv1d_creater.py and lstm_creater.py.

Flags, the tf.distribute strategy, and the Keras callbacks that give every training the same behaviour:
validation loss, early stopping, a checkpoint every epoch, --resume after an interruption, CSV and
TensorBoard logs, and a loss-curve picture.
"""
import json
import logging
import shutil
import time

from common import paths

log = logging.getLogger("musicgen")

STRATEGIES = ("auto", "mirrored", "multiworker", "none")


def add_training_arguments(parser, epochs, batch_size, learning_rate, patience=5):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=epochs, help=f"maximum epochs (default {epochs})")
    group.add_argument("--batch-size", type=int, default=batch_size,
                       help=f"global batch size, split across devices (default {batch_size})")
    group.add_argument("--learning-rate", type=float, default=learning_rate,
                       help=f"Adam learning rate (default {learning_rate})")
    group.add_argument("--patience", type=int, default=patience,
                       help=f"stop after this many epochs without a better validation loss (default {patience})")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted training from its last completed epoch")
    group.add_argument("--strategy", choices=STRATEGIES, default="auto",
                       help="auto: MirroredStrategy over several GPUs, else the default device; "
                            "multiworker: MultiWorkerMirroredStrategy configured by TF_CONFIG")
    group.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute with float32 weights (GPU only; ignored with a warning on CPU)")
    group.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                       help="XLA-compile the training step (auto: Keras decides)")
    group.add_argument("--random-seed", type=int, default=0, help="seed for weights and shuffling (default 0)")
    group.add_argument("--run-name", default=None,
                       help="name of this run's folder under models/logs/ (default: model name and time)")
    return group


def check_training_arguments(args):
    from common.errors import PipelineError

    for name in ("epochs", "batch_size", "patience"):
        if getattr(args, name) < 1:
            raise PipelineError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.learning_rate > 0:
        raise PipelineError("--learning-rate must be positive")


def make_strategy(name):
    """The tf.distribute strategy for --strategy; every model and optimizer is built inside its scope."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()  # the default: one device, no replication


def set_precision(mixed):
    import keras
    import tensorflow as tf

    if mixed and not tf.config.list_logical_devices("GPU"):
        log.warning("--mixed-precision needs a GPU; training in float32 on the CPU")
        mixed = False
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")


def prepare_run(args, models_dir, model_name):
    """Seed everything, pick precision, and set up (or clear) the backup that --resume continues from."""
    import keras

    keras.utils.set_random_seed(args.random_seed)
    set_precision(args.mixed_precision)
    backup = paths.checkpoint_dir(models_dir, model_name)
    if backup.exists() and not args.resume:
        log.info("an interrupted %s training was found; starting over (use --resume to continue it)", model_name)
        shutil.rmtree(backup, ignore_errors=True)
    run_name = args.run_name or f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return backup, paths.log_dir(models_dir, run_name)


def standard_callbacks(args, backup_dir, run_log_dir, extra=()):
    """Early stopping on validation loss, per-epoch backup for --resume, CSV and TensorBoard logs."""
    import keras

    run_log_dir.mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.BackupAndRestore(str(backup_dir), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True),
        keras.callbacks.CSVLogger(str(run_log_dir / "history.csv"), append=args.resume),
        keras.callbacks.TensorBoard(log_dir=str(run_log_dir), write_graph=False),
        *extra,
    ]


def compile_options(args):
    """Keyword arguments for model.compile shared by every training script (XLA, ...)."""
    return {"jit_compile": {"auto": "auto", "on": True, "off": False}[args.jit_compile]}


def fit_verbosity(args):
    """Keras's own progress bar unless --quiet."""
    return 0 if args.quiet else "auto"


def best_validation_loss(history):
    losses = history.history.get("val_loss") or [float("nan")]
    return float(min(losses))


def save_arguments(args):
    """The resolved arguments as a JSON-friendly dict, recorded beside each model."""
    return json.loads(json.dumps(vars(args), default=str))
