"""The two datasets: step audio (step 1) and scores (step 4), as sharded .npz folders read through tf.data.

Layout of a dataset folder:
    index.json             what the dataset is and was made from; written last, replaced in one rename
    <run>/song-00000.npz   one shard per song; each new run writes a new <run> folder, so an interrupted run
                           never touches the shards the current index.json points to
Nothing here holds a whole corpus in memory: shards are read one song at a time and streamed.
"""
import concurrent.futures
import hashlib
import logging
import os
import shutil
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from common import artifacts, audio, paths
from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_MARGIN, STEP_FRAMES
from common.errors import PipelineError

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
    return decode_stored_steps(load_stored_song_steps(folder, song))


def load_stored_song_steps(folder, song):
    """(num_steps, STEP_FRAMES, 2) steps of one song as stored (int16 or float): half the memory of float32."""
    arrays = artifacts.read_npz(Path(folder) / song["file"], "steps")
    if "steps" not in arrays or arrays["steps"].shape[1:] != (STEP_FRAMES, CHANNELS):
        raise artifacts.ArtifactError(f"{folder}/{song['file']} does not hold steps: "
                                      "rerun combine_encoded_test_data.py")
    return arrays["steps"]


def song_excerpt(data_dir, song_file, offset_seconds, num_steps=None):
    """(steps, name): num_steps steps (all that are left if None) of song_file from offset_seconds on.

    Without a song_file, the first validation song of the step dataset (the first song if none is held
    out), so that round trips and continuations default to music the models never trained on.
    """
    if offset_seconds < 0:
        raise PipelineError(f"--offset must be 0 or more seconds, not {offset_seconds:g}")
    if song_file is not None:
        steps, name = audio.frame_steps(audio.load_audio(song_file)), Path(song_file).stem
    else:
        folder = paths.steps_dir(data_dir)
        index = steps_index(folder)
        held_out = songs_in_split(index, "validation")
        song = (held_out or songs_in_split(index, "train"))[0]
        steps, name = load_song_steps(folder, song), Path(song["song"]).stem
        logging.getLogger("musicgen").info("using %s song %s", "validation" if held_out else "training", song["song"])
    first = int(round(offset_seconds / audio.STEP_SECONDS))
    return steps[first:None if num_steps is None else first + num_steps], name


def load_song_score(folder, song):
    """(num_steps, latent_dim) float32 score of one song of a score dataset."""
    arrays = artifacts.read_npz(Path(folder) / song["file"], "scores")
    if "score" not in arrays:
        raise artifacts.ArtifactError(f"{folder}/{song['file']} holds no score: rerun create_encoded_data.py")
    return arrays["score"].astype(np.float32)


def score_index(folder, autoencoder_fingerprint=None):
    """The checked index of a score dataset whose step features are of this version (and, if given, whose
    scores the autoencoder of that fingerprint made)."""
    from common import step_features

    index = artifacts.read_dataset_index(folder, "scores", step_features=step_features.VERSION)
    if autoencoder_fingerprint is not None:
        artifacts.check_same("the score dataset", index["autoencoder_fingerprint"], autoencoder_fingerprint,
                             "create_encoded_data.py")
    return index


def load_song_heard(folder, song):
    """(score (num_steps, latent), features (num_steps, step_features.SIZE), seams (num_steps, 2, SEAM_BANDS),
    beats (num_steps, 3)) of one song of a score dataset, float32; beats (step_features.song_beats) None where
    step 4 did not store them (an older dataset: its steps are then never read onto a seed's beat)."""
    from common import step_features

    arrays = artifacts.read_npz(Path(folder) / song["file"], "scores")
    score, heard, seams, beats = arrays.get("score"), arrays.get("features"), arrays.get("seams"), arrays.get("beats")
    if (score is None or heard is None or seams is None or heard.shape != (len(score), step_features.SIZE)
            or seams.shape != (len(score), 2, step_features.SEAM_BANDS)):
        raise artifacts.ArtifactError(f"{folder}/{song['file']} holds no score with step features: rerun "
                                      "create_encoded_data.py")
    if not (np.isfinite(score).all() and np.isfinite(heard).all() and np.isfinite(seams).all()):
        # A NaN in one step would reach every join cost and the decoded continuation.
        raise artifacts.ArtifactError(f"{folder}/{song['file']} holds non-finite values: rerun "
                                      "create_encoded_data.py")
    if beats is not None and (beats.shape != (len(score), 3) or not np.isfinite(beats).all()):
        raise artifacts.ArtifactError(f"{folder}/{song['file']} holds beats that do not fit its steps: rerun "
                                      "create_encoded_data.py")
    return (score.astype(np.float32), heard.astype(np.float32), seams.astype(np.float32),
            None if beats is None else beats.astype(np.float32))


class SongsHeard(NamedTuple):
    """Songs of a score dataset end to end: scores (N, latent), features (N, SIZE), seams (N, 2, SEAM_BANDS),
    sources (N,) the number of each step's song in the index, and each song's first step and length; beats (N, 3)
    each step's local beat (step_features.song_beats; None: a dataset made before step 4 stored them)."""
    scores: np.ndarray
    features: np.ndarray
    seams: np.ndarray
    sources: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    beats: Optional[np.ndarray] = None


def songs_heard(folder, index, split="all", leave_out=None):
    """SongsHeard of one split ("train", "validation" or "all") of a checked score dataset; leave_out: a song
    name (file name without its extension) whose steps stay out, e.g. a seed's own song."""
    parts, sources, beats = [], [], []
    for number, song in enumerate(index["songs"]):
        if (split != "all" and song["split"] != split) or (leave_out is not None
                                                             and Path(song["song"]).stem == leave_out):
            continue
        *heard, song_beats = load_song_heard(folder, song)
        parts.append(heard)
        sources.append(np.full(len(heard[0]), number))
        beats.append(song_beats)
    if not parts:
        return None
    lengths = np.array([len(part[0]) for part in parts])
    return SongsHeard(*(np.concatenate(arrays) for arrays in zip(*parts)), np.concatenate(sources),
                      np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths,
                      None if any(song is None for song in beats) else np.concatenate(beats))


def song_steps_heard(folder, autoencoder_fingerprint, leave_out=None):
    """Every song of a score dataset as the generator's pool of real steps (SongsHeard), checked against the
    autoencoder. leave_out: a song name whose steps stay out, e.g. the seed's own song, whose real next steps
    would otherwise be on offer."""
    pool = songs_heard(folder, score_index(folder, autoencoder_fingerprint), leave_out=leave_out)
    if pool is None:
        raise PipelineError(f"{folder} has no song besides the seed's own to take steps from: add songs to "
                            "data/input and rerun the steps from combine_encoded_test_data.py")
    return pool


def segment_dataset(folder, index, split, batch_size, shuffle=True, seed=0, cache_limit_mb=128,
                    shuffle_buffer=1024, interleave_songs=8):
    """tf.data of (segment, segment) float32 batches for autoencoder training, streamed step by step.

    Samples are read straight from the shards by TensorFlow (no Python in the loop, so no GIL held while
    training) in their stored type; each step is joined to the margins of its neighbours as it streams by,
    and converted to float32 only once batched. Memory does not grow with the corpus: it is bounded by the
    shuffle buffer (55 kB per int16 segment: 56 MB), interleave_songs read buffers, and the whole split held
    after the first epoch when its stored segments take at most cache_limit_mb. Songs are shuffled, then
    interleave_songs of them are read at once into the shuffle buffer. Every shard is checked end to end
    (its zip checksum) before streaming starts.
    """
    import tensorflow as tf

    songs = songs_in_split(index, split)
    if not songs:
        return None
    layouts = stored_steps_layouts(folder, songs)
    dtypes = {layout.dtype for layout in layouts}
    if len(dtypes) > 1:
        raise artifacts.ArtifactError(f"{folder} mixes sample types {sorted(map(str, dtypes))}: "
                                      f"rerun combine_encoded_test_data.py")
    dtype = dtypes.pop()
    num_segments = sum(layout.num_steps for layout in layouts)
    cache = num_segments * SEGMENT_FRAMES * CHANNELS * dtype.itemsize <= cache_limit_mb * 2**20

    songs_data = tf.data.Dataset.from_tensor_slices((
        [str(layout.path) for layout in layouts],
        np.array([layout.offset for layout in layouts], np.int64),
        np.array([layout.trailing_bytes for layout in layouts], np.int64),
    ))
    if shuffle and not cache:  # a cached dataset is shuffled below, across all its segments
        songs_data = songs_data.shuffle(len(layouts), seed=seed, reshuffle_each_iteration=True)
    # Sequential interleaving: still ~10k segments/s on one core, with half the buffers of a parallel one.
    dataset = songs_data.interleave(lambda path, offset, trailing: _streamed_segments(path, offset, trailing, dtype),
                                    cycle_length=min(interleave_songs, len(layouts)))
    if cache:
        dataset = dataset.cache()
    if shuffle:
        buffer = num_segments if cache else min(num_segments, shuffle_buffer)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    def to_float(batch):  # as decode_stored_steps does, once per batch
        batch = tf.cast(batch, tf.float32)
        if dtype == np.int16:
            batch = batch / INT16_SCALE
        return batch, batch

    dataset = dataset.batch(batch_size).map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-num_segments // batch_size)))
    return with_data_sharding(dataset).prefetch(tf.data.AUTOTUNE)


class StoredSteps(NamedTuple):
    """Where a step shard keeps its samples: bytes [offset, size - trailing_bytes) of the file."""
    path: Path
    offset: int
    trailing_bytes: int
    num_steps: int
    dtype: np.dtype


def stored_steps_layout(path, name="steps"):
    """Check a step shard end to end (its zip CRC-32) and find its samples in the file.

    np.savez stores arrays uncompressed, so the samples are one contiguous run of bytes that tf.data can read
    directly; a damaged or foreign shard raises ArtifactError naming the step to rerun.
    """
    path = Path(path)
    rerun = artifacts.MADE_BY["steps"]
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
            member = archive.getinfo(f"{name}.npy")
            raw.seek(member.header_offset)
            local_header = raw.read(30)
            name_length, extra_length = struct.unpack("<HH", local_header[26:30])
            member_start = member.header_offset + len(local_header) + name_length + extra_length
            raw.seek(member_start)
            version = np.lib.format.read_magic(raw)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            with _NPY_HEADER_LOCK:
                shape, fortran_order, dtype = read_header(raw)
            header_bytes = raw.tell() - member_start
            if _crc32(raw, member_start, member.file_size) != member.CRC:
                raise zipfile.BadZipFile(f"Bad CRC-32 for file {member.filename!r}")  # zipfile's own words
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, struct.error) as error:
        raise artifacts.ArtifactError(f"{path} is damaged ({artifacts.first_line(error)}): rerun {rerun}") from None
    data_bytes = (shape[0] if shape else 0) * STEP_FRAMES * CHANNELS * dtype.itemsize
    if (member.compress_type != zipfile.ZIP_STORED or fortran_order or len(shape) != 3
            or tuple(shape[1:]) != (STEP_FRAMES, CHANNELS) or dtype.name not in STORAGE_DTYPES
            or dtype.byteorder == ">" or header_bytes + data_bytes != member.file_size):
        raise artifacts.ArtifactError(f"{path} does not hold steps of this project: rerun {rerun}")
    offset = member_start + header_bytes
    return StoredSteps(path, offset, path.stat().st_size - offset - data_bytes, shape[0], np.dtype(dtype.name))


# numpy parses .npy headers with ast.literal_eval, which CPython 3.11 cannot run in two threads at once: it
# raised "SystemError: AST constructor recursion depth mismatch" once in a CI run (python/cpython#106905).
_NPY_HEADER_LOCK = threading.Lock()


def stored_steps_layouts(folder, songs):
    """stored_steps_layout of every song, checked on all cores (zlib releases the GIL while it sums)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(stored_steps_layout, [Path(folder) / song["file"] for song in songs]))


def _crc32(handle, start, length, chunk=1 << 22):
    """CRC-32 of length bytes of an open file from start, read in chunks (memory stays at one chunk)."""
    handle.seek(start)
    buffer, crc = bytearray(chunk), 0
    while length > 0:
        count = handle.readinto(memoryview(buffer)[:min(chunk, length)])
        if count == 0:
            raise EOFError("the file ends inside its samples")
        crc = zlib.crc32(memoryview(buffer)[:count], crc)
        length -= count
    return crc


def _streamed_segments(path, offset, trailing_bytes, dtype):
    """One song's segments, (SEGMENT_FRAMES, CHANNELS) in the stored type, read step by step from its shard.

    Each step is emitted once its successor arrives, joined to the last SEGMENT_MARGIN frames of the step
    before and the first SEGMENT_MARGIN frames of the step after; the song is framed by silence, exactly as
    audio.segments_from_steps does.
    """
    import tensorflow as tf

    tf_dtype = tf.as_dtype(dtype)
    record_bytes = STEP_FRAMES * CHANNELS * dtype.itemsize
    steps = tf.data.FixedLengthRecordDataset(path, record_bytes, header_bytes=offset, footer_bytes=trailing_bytes,
                                             buffer_size=1 << 20)
    steps = steps.map(lambda record: tf.reshape(tf.io.decode_raw(record, tf_dtype), [STEP_FRAMES, CHANNELS]))
    silence = tf.zeros([STEP_FRAMES, CHANNELS], tf_dtype)
    steps = steps.concatenate(tf.data.Dataset.from_tensors(silence))

    def with_neighbours(state, following):
        before, current = state  # the step before the current one, and the current one
        segment = tf.concat([before[-SEGMENT_MARGIN:], current, following[:SEGMENT_MARGIN]], axis=0)
        return (current, following), segment

    # The first output joins the leading silence to its neighbours: it is no step of the song.
    return steps.scan((silence, silence), with_neighbours).skip(1)


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


def with_data_sharding(dataset):
    """Multi-worker training splits batches between workers (our shards are not one file per worker)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
