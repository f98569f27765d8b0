"""Saving and loading artifacts so that nothing already made is ever lost and nothing stale is used silently.

Every artifact is written to a temporary file in its own folder and renamed into place (a kill at any moment
leaves the previous version intact). Datasets are folders of .npz shards (one per song) with an index.json
that records what they were made from; loaders check it and name the step to rerun when it does not match.
"""
import contextlib
import glob
import hashlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from common.errors import ArtifactError

_UMASK = os.umask(0)
os.umask(_UMASK)
FORMAT_VERSION = 1  # bump when the layout of a dataset or model record changes
INDEX_NAME = "index.json"

# Which script makes each artifact kind: error messages tell the user what to rerun.
MADE_BY = {
    "steps": "combine_encoded_test_data.py",
    "autoencoder": "autoencode.py",
    "scores": "create_encoded_data.py",
    "conv1d": "conv1d_creater.py",
    "lstm": "lstm_creater.py",
}


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers_of_killed_writers(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.", suffix=f".tmp{path.suffix}",
                                             dir=path.parent)
    os.close(descriptor)
    temporary = Path(temporary)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes files private; artifacts get the usual rights
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def remove_leftovers_of_killed_writers(path):
    """Delete the temporary files that writers of `path` killed mid-write (SIGKILL, power loss) left beside it.

    Temporary names carry the writer's process id; a file whose writer is no longer running is a leftover.
    """
    pattern = re.compile(rf"\.{re.escape(path.stem)}\.(\d+)\..+\.tmp{re.escape(path.suffix)}")
    for candidate in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}"):
        match = pattern.fullmatch(candidate.name)
        if match and not _process_is_running(int(match.group(1))):
            candidate.unlink(missing_ok=True)


def _process_is_running(pid):
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows: keep every file there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process, or not a real process id: keep the file
        return True
    return True


def write_npz(path, **arrays):
    """Save arrays (uncompressed: audio barely compresses and loading stays fast) atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
    return Path(path)


def read_npz(path, kind):
    """Load every array of an .npz without pickle; a damaged file raises ArtifactError naming the step."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: run {MADE_BY[kind]} first")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ArtifactError(f"{path} is damaged ({first_line(error)}): rerun {MADE_BY[kind]}") from None


def write_json(path, record):
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return Path(path)


def read_json(path, kind):
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: run {MADE_BY[kind]} first")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ArtifactError(f"{path} is damaged ({first_line(error)}): rerun {MADE_BY[kind]}") from None
    if not isinstance(record, dict):
        raise ArtifactError(f"{path} is damaged (not a JSON object): rerun {MADE_BY[kind]}")
    return record


def file_fingerprint(path):
    """sha256 of a file's bytes, shortened: enough to tell two versions of an artifact apart."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def combine_fingerprints(parts):
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def write_dataset_index(folder, index):
    """Write index.json last, after every shard is in place: a dataset without it is unfinished."""
    index = dict(index, format_version=FORMAT_VERSION)
    index["fingerprint"] = combine_fingerprints([entry["fingerprint"] for entry in index["songs"]])
    write_json(Path(folder) / INDEX_NAME, index)
    return index


def read_dataset_index(folder, kind, **expected):
    """Load and check a dataset's index: kind, format version and any expected metadata (e.g. latent_dim)."""
    index = read_json(Path(folder) / INDEX_NAME, kind)
    rerun = MADE_BY[kind]
    if index.get("kind") != kind:
        raise ArtifactError(f"{folder} holds a {index.get('kind')!r} dataset, not {kind!r}: rerun {rerun}")
    if index.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{folder} has format version {index.get('format_version')}, this code reads {FORMAT_VERSION}: rerun {rerun}"
        )
    for key, value in expected.items():
        if index.get(key) != value:
            raise ArtifactError(f"{folder} was made with {key}={index.get(key)!r}, expected {value!r}: rerun {rerun}")
    for entry in index.get("songs", []):
        shard = Path(folder) / entry["file"]
        if not shard.is_file():
            raise ArtifactError(f"{shard} is missing: rerun {rerun}")
        # Cheap (reads the zip directory at the end of the file): a truncated shard is named here, before a
        # step starts its work. Damage inside a shard is found by the zip checksum when the shard is read.
        if not zipfile.is_zipfile(shard):
            raise ArtifactError(f"{shard} is damaged (truncated or not an .npz): rerun {rerun}")
    return index


def shard_name(position):
    return f"song-{position:05d}.npz"


def first_line(error):
    """The first line of an exception's message (library messages can run to paragraphs), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_same(what, found, expected, rerun):
    """Raise ArtifactError when an upstream fingerprint recorded in an artifact no longer matches."""
    if found != expected:
        raise ArtifactError(f"{what} was made from a different earlier artifact ({found} != {expected}): rerun {rerun}")
