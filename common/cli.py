"""What every script shares on the command line: directories, verbosity, one-line errors."""
import argparse
import contextlib
import errno
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

from common import paths
from common.errors import PipelineError

log = logging.getLogger("musicgen")

# Operating-system errors that are the machine's state, not a bug: reported in one line like user mistakes.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


HELP_COLUMN = 26  # where option help starts; "--batch-size N" and "--level-range X" fit before it


class CompactHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help that fits one screen: the description as written, short value names (N, X, DIR, FILE, NAME) and
    each option's help beside it rather than under it."""

    def __init__(self, prog, max_help_position=HELP_COLUMN, width=None):
        super().__init__(prog, max_help_position=max_help_position, width=width)

    def _get_default_metavar_for_optional(self, action):
        return short_metavar(action)


def short_metavar(action):
    """The name of an option's value in --help: N for whole numbers, X for other numbers, else by its dest."""
    if action.type is int:
        return "N"
    if action.type is float:
        return "X"
    for ending, name in (("_dir", "DIR"), ("_file", "FILE"), ("song", "FILE"), ("out", "FILE"), ("name", "NAME")):
        if action.dest.endswith(ending):
            return name
    return action.dest.upper()


def make_parser(description):
    """An argparse parser with --data-dir, --models-dir, -q/--quiet and -v/--verbose already added.

    description is the script's docstring: what it does, what it reads and writes, and one example; --help
    prints it above the options and a usage line that does not list them all again.
    """
    parser = argparse.ArgumentParser(description=description, usage="%(prog)s [options]",
                                     formatter_class=CompactHelpFormatter)
    parser.add_argument("--data-dir", type=_absolute_path, default=paths.DEFAULT_DATA_DIR,
                        help="data folder (default: the repository's data/)")
    parser.add_argument("--models-dir", type=_absolute_path, default=paths.DEFAULT_MODELS_DIR,
                        help="models folder (default: the repository's models/)")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print only warnings, errors and the summary")
    noise.add_argument("-v", "--verbose", action="store_true", help="also debug lines and TensorFlow's own logs")
    return parser


def _absolute_path(text):
    return Path(text).expanduser().resolve()


class _CurrentStdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is now, so a replaced stdout (pytest capture, tqdm) keeps working."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def setup_logging(args, tensorflow=True):
    """Configure logging, and (for steps that use it) hide TensorFlow's start-up noise unless --verbose."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", handlers=[_CurrentStdoutHandler()], force=True)
    log.setLevel(level)
    if tensorflow and not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore", category=UserWarning, module="keras")
        _import_tensorflow_silently()
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _import_tensorflow_silently():
    """Import TensorFlow with stderr set aside: its C++ start-up lines (oneDNN, CUDA probing) ignore log levels."""
    if "tensorflow" in sys.modules:
        return
    with native_stderr_captured():  # what it says there is dropped
        import tensorflow as tf

        # Probes CUDA now, while its complaints go nowhere; physical devices only, so TensorFlow is not yet
        # initialised and a multi-worker strategy (or a split of the CPU) can still be set up.
        tf.config.list_physical_devices()


@contextlib.contextmanager
def native_stderr_captured():
    """Collect what C libraries (TensorFlow, mpg123, libvorbis) print straight to file descriptor 2, which
    Python's logging cannot silence. Yields a list that holds the captured lines afterwards."""
    lines = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect (a daemon): nothing to hide
        yield lines
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(line for line in capture.read().decode(errors="replace").splitlines() if line.strip())


def summary(text):
    """The closing lines of a script: printed even with --quiet."""
    print(text, flush=True)


@contextlib.contextmanager
def user_errors():
    """Turn the project's own errors into one line on stderr and exit status 1; Ctrl-C into status 130."""
    try:
        yield
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise
        # A full disk or a folder we may not write to; artifacts are written atomically, so earlier ones are intact.
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror}{where}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("interrupted: what was saved before is intact (a training continues with --resume)", file=sys.stderr)
        raise SystemExit(130) from None


def progress(iterable=None, total=None, desc=None, unit="it", quiet=False):
    """A tqdm progress bar (count, rate, time left) on stderr; silent with --quiet or when not a terminal in CI."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=quiet or None, dynamic_ncols=True, leave=False)
