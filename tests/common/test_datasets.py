"""common/datasets.py: the streamed segment dataset gives exactly the segments of audio.segments_from_steps."""
import numpy as np
import pytest

import combine_encoded_test_data
from common import artifacts, audio, datasets, paths
from tests.conftest import write_song


@pytest.fixture(scope="module", params=datasets.STORAGE_DTYPES)
def steps_folder(request, tmp_path_factory):
    """A step dataset of three short songs (one held out), stored as int16, float16 or float32."""
    data = tmp_path_factory.mktemp(request.param)
    for number, seconds in enumerate((3.0, 4.5, 2.0)):
        write_song(data / "input" / f"song {number}.wav", seconds=seconds, seed=number)
    combine_encoded_test_data.main(["--data-dir", str(data), "--storage", request.param, "-q"])
    return paths.steps_dir(data)


def expected_segments(folder, index, split):
    songs = datasets.songs_in_split(index, split)
    return np.concatenate([audio.segments_from_steps(datasets.load_song_steps(folder, song)) for song in songs])


@pytest.mark.parametrize("split", ["train", "validation"])
def test_streamed_segments_are_those_of_segments_from_steps(steps_folder, split):
    index = datasets.steps_index(steps_folder)
    # One song at a time, in index order, so the stream can be compared segment by segment.
    dataset = datasets.segment_dataset(steps_folder, index, split, batch_size=5, shuffle=False, interleave_songs=1,
                                       cache_limit_mb=0)
    batches = [(inputs.numpy(), targets.numpy()) for inputs, targets in dataset]
    inputs = np.concatenate([batch[0] for batch in batches])
    assert np.array_equal(inputs, expected_segments(steps_folder, index, split))  # bit for bit, margins included
    assert all(np.array_equal(a, b) for a, b in batches) and len(batches) == len(dataset)
    assert inputs.dtype == np.float32


def test_shuffled_and_cached_epochs_hold_every_segment_once_in_a_new_order(steps_folder):
    index = datasets.steps_index(steps_folder)
    expected = expected_segments(steps_folder, index, "train")
    for cache_limit_mb in (0, 64):  # streamed from the shards every epoch, and held in memory after the first
        dataset = datasets.segment_dataset(steps_folder, index, "train", batch_size=4, seed=3,
                                           cache_limit_mb=cache_limit_mb, interleave_songs=2)
        epochs = [np.concatenate([inputs.numpy() for inputs, _ in dataset]) for _ in range(2)]
        for epoch in epochs:
            order = np.lexsort(epoch.reshape(len(epoch), -1)[:, ::997].T)
            reference = np.lexsort(expected.reshape(len(expected), -1)[:, ::997].T)
            assert np.array_equal(epoch[order], expected[reference])
        assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[0], expected)


def test_a_shard_damaged_in_the_middle_is_refused_before_streaming(steps_folder, tmp_path):
    index = datasets.steps_index(steps_folder)
    shard = steps_folder / datasets.songs_in_split(index, "train")[0]["file"]
    original = shard.read_bytes()
    try:
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x40
        shard.write_bytes(bytes(damaged))
        with pytest.raises(artifacts.ArtifactError, match=r"is damaged \(Bad CRC-32 for file 'steps.npy'\): rerun "
                                                          r"combine_encoded_test_data.py"):
            datasets.segment_dataset(steps_folder, index, "train", batch_size=4)
    finally:
        shard.write_bytes(original)
