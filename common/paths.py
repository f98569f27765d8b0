"""One place decides where every artifact lives. Scripts take directories, never file names."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_MODELS_DIR = REPO_ROOT / "models"


def input_dir(data_dir):
    """Songs the user dropped in: any format soundfile reads."""
    return Path(data_dir) / "input"


def steps_dir(data_dir):
    """Step 1's dataset: one .npz shard per song plus index.json."""
    return Path(data_dir) / "steps"


def scores_dir(data_dir):
    """Step 4's dataset: each song's score (one latent vector per step) plus index.json."""
    return Path(data_dir) / "scores"


def output_dir(data_dir):
    """WAVs and pictures made for people to listen to and look at."""
    return Path(data_dir) / "output"


def model_path(models_dir, name):
    """A saved Keras model: autoencoder, encoder, decoder, conv1d, lstm."""
    return Path(models_dir) / f"{name}.keras"


def model_record_path(models_dir, name):
    """JSON beside each trained model: resolved arguments, fingerprints, headline figures."""
    return Path(models_dir) / f"{name}.json"


def loss_plot_path(models_dir, name):
    """Training and validation loss curves of a model, as a PNG beside it."""
    return Path(models_dir) / f"{name}_loss.png"


def checkpoint_dir(models_dir, name):
    """Keras BackupAndRestore state, so an interrupted training resumes with --resume."""
    return Path(models_dir) / "checkpoints" / name


def log_dir(models_dir, run_name):
    """TensorBoard logs and the CSV of losses for one training run."""
    return Path(models_dir) / "logs" / run_name
