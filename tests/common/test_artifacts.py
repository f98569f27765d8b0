"""common/artifacts.py and common/datasets.py: atomic writes, safe loading, indexes that name the step to rerun."""
import os
import subprocess
import sys

import numpy as np
import pytest

from common import artifacts, datasets
from common.errors import ArtifactError


def test_npz_round_trip_without_pickle(tmp_path):
    arrays = {"steps": np.arange(12, dtype=np.int16).reshape(2, 3, 2), "song": np.array("naïve song.wav")}
    artifacts.write_npz(tmp_path / "shard.npz", **arrays)
    loaded = artifacts.read_npz(tmp_path / "shard.npz", "steps")
    assert np.array_equal(loaded["steps"], arrays["steps"]) and str(loaded["song"]) == "naïve song.wav"
    assert [p.name for p in tmp_path.iterdir()] == ["shard.npz"]  # no temporary left behind


def test_pickled_or_damaged_npz_is_refused(tmp_path):
    np.savez(tmp_path / "pickled.npz", objects=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ArtifactError, match="rerun combine_encoded_test_data.py"):
        artifacts.read_npz(tmp_path / "pickled.npz", "steps")
    artifacts.write_npz(tmp_path / "cut.npz", steps=np.zeros((100, 100)))
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="damaged"):
        artifacts.read_npz(tmp_path / "cut.npz", "steps")
    with pytest.raises(ArtifactError, match="missing: run create_encoded_data.py"):
        artifacts.read_npz(tmp_path / "absent.npz", "scores")


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path):
    artifacts.write_json(tmp_path / "record.json", {"version": 1})
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(tmp_path / "record.json") as temporary:
            temporary.write_text('{"version": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert artifacts.read_json(tmp_path / "record.json", "autoencoder") == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_dataset_index_checks_kind_version_and_metadata(tmp_path):
    shard = tmp_path / "run-1" / "song-00000.npz"
    artifacts.write_npz(shard, score=np.zeros((4, 8), np.float32))
    song = {"song": "a.wav", "file": "run-1/song-00000.npz", "split": "train", "num_steps": 4,
            "fingerprint": artifacts.file_fingerprint(shard)}
    index = artifacts.write_dataset_index(tmp_path, {"kind": "scores", "latent_dim": 8, "songs": [song]})
    assert artifacts.read_dataset_index(tmp_path, "scores", latent_dim=8)["fingerprint"] == index["fingerprint"]
    with pytest.raises(ArtifactError, match="latent_dim=8, expected 16: rerun create_encoded_data.py"):
        artifacts.read_dataset_index(tmp_path, "scores", latent_dim=16)
    with pytest.raises(ArtifactError, match="not 'steps'"):
        artifacts.read_dataset_index(tmp_path, "steps")
    shard.unlink()
    with pytest.raises(ArtifactError, match="missing: rerun create_encoded_data.py"):
        artifacts.read_dataset_index(tmp_path, "scores")


def test_validation_songs_are_whole_songs_chosen_stably():
    names = [f"song{i}.wav" for i in range(10)]
    held_out = datasets.validation_songs(names, 0.2)
    assert len(held_out) == 2 and held_out <= set(names)
    assert datasets.validation_songs(list(reversed(names)), 0.2) == held_out  # order does not matter
    assert datasets.validation_songs(names, 0.2) == held_out  # deterministic
    assert datasets.validation_songs(["only.wav"], 0.2) == set()


def test_window_starts_never_cross_songs():
    starts = datasets.window_starts(np.array([0, 10]), [10, 7], window_steps=6)
    assert starts.tolist() == [0, 1, 2, 3, 4, 10, 11]
    scores = np.arange(17, dtype=np.float32)[:, None]
    inputs, targets = datasets.window_arrays(scores, starts, 4, 2)
    assert inputs[-1, :, 0].tolist() == [11, 12, 13, 14] and targets[-1, :, 0].tolist() == [15, 16]


def test_a_write_removes_what_killed_writers_left_and_nothing_else(tmp_path):
    """A SIGKILL mid-write leaves the hidden temporary file; the next write of that artifact deletes it."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    killed = tmp_path / f".song.{dead_pid}.x1y2.tmp.npz"
    running = tmp_path / f".song.{os.getpid()}.a1b2.tmp.npz"  # a writer still at work (this process)
    other = tmp_path / f".other.{dead_pid}.x1y2.tmp.npz"  # another artifact's leftover: not this write's business
    for leftover in (killed, running, other):
        leftover.write_bytes(b"half an npz")
    artifacts.write_npz(tmp_path / "song.npz", steps=np.zeros(3))
    assert not killed.exists() and running.exists() and other.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([running.name, other.name, "song.npz"])
