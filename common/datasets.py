"""The two datasets: step audio (step 1) and scores (step 4), as sharded .npz folders read through tf.data.

Layout of a dataset folder:
    index.json             what the dataset is and was made from; written last, replaced in one rename
    <run>/song-00000.npz   one shard per song; each new run writes a new <run> folder, so an interrupted run
                           never touches the shards the current index.json points to
Nothing here holds a whole corpus in memory: shards are read one song at a time and streamed.
"""
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np

from common import artifacts
from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_FRAMES, STEP_FRAMES, segments_from_steps

STORAGE_DTYPES = ("int16", "float16", "float32")  # int16 halves the disk and memory of float32 at 96 dB SNR
INT16_SCALE = 32767.0


def validation_songs(names, fraction):
    """Hold out whole songs, chosen by a hash of the name: stable when songs are added or reordered."""
    if len(names) < 2 or fraction <= 0:
        return set()
    count = min(len(names) - 1, max(1, round(len(names) * fraction)))
    by_hash = sorted(names, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
    return set(by_hash[:count])


def new_run_folder(folder):
    """A fresh sub-folder for the shards of one run of a step."""
    run = time.strftime("run-%Y%m%d-%H%M%S-") + hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:6]
    (Path(folder) / run).mkdir(parents=True)
    return run


def prune_old_runs(folder, keep_run):
    """Remove shards of earlier runs, once the new index.json points at keep_run."""
    for child in Path(folder).iterdir():
        if child.is_dir() and child.name.startswith("run-") and child.name != keep_run:
            shutil.rmtree(child, ignore_errors=True)


def discard_run(folder, run):
    """Remove the shards of a run that failed; the previous dataset stays as it was."""
    shutil.rmtree(Path(folder) / run, ignore_errors=True)


def encode_steps_for_storage(steps, dtype):
    if dtype == "int16":
        return np.round(np.clip(steps, -1.0, 1.0) * INT16_SCALE).astype(np.int16)
    return steps.astype(dtype)


def decode_stored_steps(stored):
    if stored.dtype == np.int16:
        return stored.astype(np.float32) / INT16_SCALE
    return stored.astype(np.float32)


def steps_index(folder):
    """The checked index of a step dataset."""
    return artifacts.read_dataset_index(folder, "steps", sample_rate=SAMPLE_RATE, step_frames=STEP_FRAMES,
                                        channels=CHANNELS)


def songs_in_split(index, split):
    """Index entries of one split ("train" or "validation"); "all" for every song."""
    return [song for song in index["songs"] if split == "all" or song["split"] == split]


def load_song_steps(folder, song):
    """(num_steps, STEP_FRAMES, 2) float32 of one song of a step dataset."""
    arrays = artifacts.read_npz(Path(folder) / song["file"], "steps")
    if "steps" not in arrays or arrays["steps"].shape[1:] != (STEP_FRAMES, CHANNELS):
        raise artifacts.ArtifactError(f"{folder}/{song['file']} does not hold steps: rerun combine_encoded_test_data.py")
    return decode_stored_steps(arrays["steps"])


def load_song_score(folder, song):
    """(num_steps, latent_dim) float32 score of one song of a score dataset."""
    arrays = artifacts.read_npz(Path(folder) / song["file"], "scores")
    if "score" not in arrays:
        raise artifacts.ArtifactError(f"{folder}/{song['file']} holds no score: rerun create_encoded_data.py")
    return arrays["score"].astype(np.float32)


def segment_dataset(folder, index, split, batch_size, shuffle=True, seed=0, cache_limit_mb=1024,
                    shuffle_buffer=2048):
    """tf.data of (segment, segment) batches for autoencoder training, streamed song by song.

    Small datasets are cached in memory after the first epoch; larger ones are re-read from the shards
    each epoch so memory stays bounded by the shuffle buffer.
    """
    import tensorflow as tf

    songs = songs_in_split(index, split)
    if not songs:
        return None
    files = [str(Path(folder) / song["file"]) for song in songs]
    num_segments = sum(song["num_steps"] for song in songs)
    segment_megabytes = SEGMENT_FRAMES * CHANNELS * 4 / 2**20
    cache = num_segments * segment_megabytes <= cache_limit_mb

    def read_segments(path):
        song = {"file": Path(path.decode()).relative_to(folder).as_posix()}
        return segments_from_steps(load_song_steps(folder, song))

    def song_segments(path):
        segments = tf.numpy_function(read_segments, [path], tf.float32, stateful=False)
        segments.set_shape([None, SEGMENT_FRAMES, CHANNELS])
        return tf.data.Dataset.from_tensor_slices(segments)

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle and not cache:  # a cached dataset is shuffled below, across all its segments
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(song_segments, cycle_length=min(4, len(files)), num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=True)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        buffer = num_segments if cache else min(num_segments, shuffle_buffer)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda batch: (batch, batch))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-num_segments // batch_size)))
    return _with_data_sharding(dataset).prefetch(tf.data.AUTOTUNE)


def concatenated_scores(folder, index, split):
    """All scores of a split as one (total_steps, latent) array, and the start offset of every song."""
    songs = songs_in_split(index, split)
    scores = [load_song_score(folder, song) for song in songs]
    starts = np.cumsum([0] + [len(score) for score in scores])[:-1]
    latent_dim = index["latent_dim"]
    joined = np.concatenate(scores) if scores else np.zeros((0, latent_dim), np.float32)
    return joined, starts, [len(score) for score in scores]


def window_starts(song_starts, song_lengths, window_steps, stride=1):
    """Start positions of every window of window_steps that stays inside one song."""
    starts = [np.arange(start, start + length - window_steps + 1, stride)
              for start, length in zip(song_starts, song_lengths) if length >= window_steps]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


def window_arrays(scores, starts, in_steps, out_steps):
    """NumPy (inputs, targets) for the given window starts: (n, in_steps, latent), (n, out_steps, latent)."""
    offsets = starts[:, None] + np.arange(in_steps + out_steps)[None, :]
    windows = scores[offsets]
    return windows[:, :in_steps], windows[:, in_steps:]


def window_dataset(scores, starts, in_steps, out_steps, batch_size, shuffle=True, seed=0):
    """tf.data of (40-step input, next 5 steps) batches cut on the fly from one in-memory score array.

    Only the window start positions are shuffled and batched; windows are gathered per batch, so the
    45x duplication of storing every window never materialises.
    """
    import tensorflow as tf

    scores_tensor = tf.constant(scores)
    window_offsets = tf.range(in_steps + out_steps, dtype=tf.int64)

    def gather(batch_starts):
        windows = tf.gather(scores_tensor, batch_starts[:, None] + window_offsets[None, :])
        return windows[:, :in_steps], windows[:, in_steps:]

    dataset = tf.data.Dataset.from_tensor_slices(starts)
    if shuffle:
        dataset = dataset.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return _with_data_sharding(dataset).prefetch(tf.data.AUTOTUNE)


def _with_data_sharding(dataset):
    """Multi-worker training splits batches between workers (our shards are not one file per worker)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
