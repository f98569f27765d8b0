"""Training conveniences shared by autoencode.py, conv1d_creater.py and lstm_creater.py.

Flags, the tf.distribute strategy, and the Keras callbacks that give every training the same behaviour:
validation loss, early stopping, a checkpoint every epoch, --resume after an interruption, CSV and
TensorBoard logs, and a loss-curve picture.
"""
import atexit
import functools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import artifacts, paths

log = logging.getLogger("musicgen")

STRATEGIES = ("auto", "mirrored", "multiworker", "none")


def add_training_arguments(parser, epochs, batch_size, learning_rate, patience=5, epochs_note=""):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=epochs, help=f"maximum epochs (default {epochs}{epochs_note})")
    group.add_argument("--batch-size", type=int, default=batch_size,
                       help=f"global batch, split across devices (default {batch_size})")
    group.add_argument("--learning-rate", type=float, default=learning_rate,
                       help=f"Adam learning rate (default {learning_rate})")
    group.add_argument("--patience", type=int, default=patience,
                       help=f"stop after N epochs without progress (default {patience})")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted training")
    group.add_argument("--strategy", choices=STRATEGIES, default="auto",
                       help="auto: all GPUs if several; multiworker: see README")
    group.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute on GPUs (ignored on the CPU)")
    group.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                       help="XLA (auto: on for the dense autoencoder, one device)")
    group.add_argument("--random-seed", type=int, default=0, help="seed for weights and shuffling (default 0)")
    group.add_argument("--run-name", default=None,
                       help="its log folder's name (default: model and time)")
    return group


def check_training_arguments(args):
    from common.errors import PipelineError

    for name in ("epochs", "batch_size", "patience"):
        if getattr(args, name) < 1:
            raise PipelineError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.learning_rate > 0:
        raise PipelineError("--learning-rate must be positive")


@functools.cache
def make_strategy(name):
    """The tf.distribute strategy for --strategy; every model and optimizer is built inside its scope.

    mirrored: every local GPU, or every logical CPU device where there is no GPU (one, unless the CPU was
    split with tf.config.set_logical_device_configuration, as the tests do). multiworker: the cluster of
    TF_CONFIG; it must be created before TensorFlow initialises, which is why nothing before it in the
    scripts lists logical devices. One strategy per process: two would reuse each other's collective keys
    when two trainings run in one process.
    """
    import tensorflow as tf

    from common.errors import PipelineError

    if name == "multiworker":
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as error:
            raise PipelineError(f"--strategy multiworker could not start ({error}); check TF_CONFIG") from None
        return _reducing_nests(strategy)
    gpus = tf.config.list_physical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = None if gpus else [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()  # the default: one device, no replication


def _reducing_nests(strategy):
    """Make MultiWorkerMirroredStrategy.reduce take what Keras 3's fit() gives it (keras-team/keras#20585).

    Keras builds the model by reducing a whole (inputs, targets) batch in one call, which the strategy
    refuses ("Attempt to convert a value (PerReplica ...)"), and averages scalar metrics along an axis 0 they
    do not have ("Invalid reduction dimension 0", tensorflow/tensorflow#72388). Reducing each value of the
    nest on its own, and scalars across replicas only, is what both calls mean.
    """
    import tensorflow as tf

    reduce_one = strategy.reduce

    def reduce(reduce_op, value, axis=None):
        def reduce_part(part):
            local = part.values[0] if isinstance(part, tf.distribute.DistributedValues) else part
            scalar = getattr(local, "shape", None) is not None and local.shape.rank == 0
            return reduce_one(reduce_op, part, None if scalar else axis)

        return tf.nest.map_structure(reduce_part, value)

    strategy.reduce = reduce
    return strategy


def cluster_task():
    """(task type, index) of this process in TF_CONFIG's cluster, or None when TF_CONFIG names no task."""
    try:
        task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    except (ValueError, AttributeError):
        return None
    return (task.get("type"), int(task.get("index", 0))) if task.get("type") else None


def is_chief(strategy_name):
    """Whether this process keeps the artifacts: always, except on the other workers of a multi-worker run.

    Keras's convention: the chief is the task of type "chief", or worker 0 where the cluster has none.
    """
    task = cluster_task()
    if strategy_name != "multiworker" or task is None:
        return True
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    return task[0] == "chief" or (task == ("worker", 0) and "chief" not in cluster)


def set_precision(mixed):
    import keras
    import tensorflow as tf

    # Physical, not logical, devices: listing logical ones would initialise TensorFlow before the strategy.
    if mixed and not tf.config.list_physical_devices("GPU"):
        log.warning("--mixed-precision needs a GPU; training in float32 on the CPU")
        mixed = False
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")


def prepare_run(args, models_dir, model_name):
    """Seed everything, pick precision, and set up (or clear) the backup that --resume continues from."""
    import keras

    keras.utils.set_random_seed(args.random_seed)
    set_precision(args.mixed_precision)
    backup = paths.checkpoint_dir(models_dir, model_name)
    if not is_chief(args.strategy):
        # Every worker trains the same model, but only the chief's artifacts are kept: the others write theirs
        # into a temporary folder (workers sharing one --models-dir must not overwrite each other), all but
        # the per-epoch backup, which each keeps under its own name so --resume works on every worker.
        task_type, task_index = cluster_task()
        backup = paths.checkpoint_dir(models_dir, f"{model_name}-{task_type}{task_index}")
        args.models_dir = models_dir = Path(tempfile.mkdtemp(prefix=f"{model_name}-{task_type}{task_index}-"))
        atexit.register(shutil.rmtree, models_dir, ignore_errors=True)
        log.info("%s %d of a multi-worker run: the chief saves the model; this worker's copy goes to %s",
                 task_type, task_index, models_dir)
    if args.resume and not backup.exists():  # e.g. the interrupted run had not finished one epoch
        log.warning("--resume: no interrupted %s training to continue; starting from the beginning", model_name)
        args.resume = False
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
        _release_freed_memory_callback(),  # first, so that it runs before the others save copies of the weights
        resumable_backup(backup_dir),
        early_stopping(args.patience, backup_dir.with_name(f"{backup_dir.name}-best-weights.npz")),
        keras.callbacks.CSVLogger(str(run_log_dir / "history.csv"), append=args.resume),
        keras.callbacks.TensorBoard(log_dir=str(run_log_dir), write_graph=False),
        *([_epoch_line_callback()] if not args.quiet and fit_verbosity(args) == 0 else []),
        *extra,
    ]


def epoch_line(epoch, epochs, logs, seconds):
    """One line for a finished epoch (counted from 1): "epoch 3/30: loss 0.6233, val_loss 0.6240 (12.0 s)"."""
    figures = ", ".join(f"{name} {value:.4g}" for name, value in (logs or {}).items() if _is_number(value))
    return f"epoch {epoch}/{epochs}: {figures or 'done'} ({seconds:.1f} s)"


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _epoch_line_callback():
    """Logs one line per epoch: what training prints when its output goes to a file, not a terminal."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.monotonic() - getattr(self, "started", time.monotonic())
            log.info("%s", epoch_line(epoch + 1, self.params.get("epochs", "?"), logs, seconds))

    return EpochLine()


def early_stopping(patience, best_weights_path):
    """Keras's EarlyStopping on validation loss, restoring the best epoch, whose weights wait in a file.

    In memory they would be a full copy of the model (113 MB for the dense autoencoder), briefly two while
    a better epoch replaces the best: the largest thing a training holds besides the model and its optimizer.
    """
    import keras

    path = Path(best_weights_path)

    class EarlyStoppingWithBestOnDisk(keras.callbacks.EarlyStopping):
        @property
        def best_weights(self):  # Keras only asks whether there are some; on_train_end loads them
            return path if path.is_file() else None

        @best_weights.setter
        def best_weights(self, weights):
            if weights is None:
                path.unlink(missing_ok=True)
            else:
                park_weights(weights, path)

        def on_train_end(self, logs=None):
            if path.is_file():
                restore_parked_weights(self.model, path)

    return EarlyStoppingWithBestOnDisk(monitor="val_loss", patience=patience, restore_best_weights=True)


def park_weights(weights, path):
    """Keep a list of weight arrays in a file rather than in memory, until restore_parked_weights."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, *weights)


def restore_parked_weights(model, path):
    """Set model's weights from a file park_weights wrote, and remove the file."""
    import numpy as np

    with np.load(path, allow_pickle=False) as stored:
        model.set_weights([stored[f"arr_{i}"] for i in range(len(stored.files))])
    Path(path).unlink()


def drop_optimizer(model):
    """Let a trained model's optimizer and its state go (for inference and saving only from here on)."""
    import gc

    if getattr(model, "optimizer", None) is not None:
        # The compiled training and evaluation functions hold on to the optimizer's variables too.
        model.optimizer = model.train_function = model.test_function = None
        gc.collect()
        release_freed_memory()


def release_freed_memory():
    """Give memory that was freed back to the system (glibc keeps it for reuse otherwise); no-op elsewhere."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _release_freed_memory_callback():
    import keras

    class ReleaseFreedMemory(keras.callbacks.Callback):
        """At the end of each epoch and of training, before copies of the weights are saved: the batches of
        an epoch leave ~200 MB freed but kept by glibc (dense autoencoder), on top of which the peak would come."""

        def on_epoch_end(self, epoch, logs=None):
            release_freed_memory()

        def on_train_end(self, logs=None):
            release_freed_memory()

    return ReleaseFreedMemory()


def resumable_backup(backup_dir):
    """Keras's BackupAndRestore, keeping the previous epoch's backup too (a kill while the backup is written
    leaves that one to resume from), and saying in one line when --resume cannot use what it finds."""
    import keras

    from common.errors import PipelineError

    class ResumableBackup(keras.callbacks.BackupAndRestore):
        def on_train_begin(self, logs=None):
            try:
                super().on_train_begin(logs)
            except (OSError, json.JSONDecodeError, KeyError) as error:
                raise PipelineError(f"cannot resume: the backup in {backup_dir} is damaged "
                                    f"({artifacts.first_line(error)}); rerun without --resume to start over") from None
            except ValueError:  # Keras could not fit the saved weights into this model
                raise PipelineError(f"cannot resume: the backup in {backup_dir} holds a model of another shape; "
                                    f"resume with the interrupted run's flags, or rerun without --resume to start "
                                    f"over") from None

    return ResumableBackup(str(backup_dir), save_freq="epoch", double_checkpoint=True, delete_checkpoint=True)


def compile_options(args, xla_by_default=False):
    """Keyword arguments for model.compile shared by every training script (XLA, ...).

    Call it inside the strategy's scope. --jit-compile auto turns XLA on for a model whose script says it
    is faster (xla_by_default) on one device: Keras alone never uses XLA on a CPU, which leaves the dense
    autoencoder's training at ~85% of its XLA speed at batch 256 (bench/speed.py); it slows the score models'
    small recurrent and convolutional steps down several times, and Keras turns it off under tf.distribute.
    """
    import tensorflow as tf

    if args.jit_compile == "auto":
        one_device = tf.distribute.get_strategy().num_replicas_in_sync == 1
        return {"jit_compile": True if xla_by_default and one_device else "auto"}
    return {"jit_compile": args.jit_compile == "on"}


def fit_verbosity(args, stdout=None):
    """Keras's own progress bar on a terminal; 0 with --quiet or when stdout is a file or a pipe (a log, CI),
    where every frame of the bar would be kept and standard_callbacks logs one line per epoch instead."""
    stdout = stdout or sys.stdout
    if args.quiet or not getattr(stdout, "isatty", lambda: False)():
        return 0
    return "auto"


def best_validation_loss(history):
    losses = history.history.get("val_loss") or [float("nan")]
    return float(min(losses))


def save_arguments(args):
    """The resolved arguments as a JSON-friendly dict, recorded beside each model."""
    return json.loads(json.dumps(vars(args), default=str))
