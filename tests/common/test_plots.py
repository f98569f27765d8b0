"""common/plots.py: what a picture shows of the sound."""
import numpy as np

from common import plots


def test_a_long_spectrogram_is_pooled_to_the_pictures_width_and_keeps_a_one_frame_attack():
    frames = np.full((6000, 64), -60.0)
    frames[4321, 10] = -5.0  # one 11.6-ms frame: an attack narrower than a pixel
    pooled = plots._pooled_in_time(frames)
    assert pooled.shape == (1500, 64)
    assert pooled[4321 // 4, 10] == -5.0 and np.sum(pooled > -60.0) == 1
    odd = plots._pooled_in_time(frames[:6001 - 2])  # not a whole number of groups: the last group is padded
    assert odd.shape == (1500, 64) and odd.max() == -5.0
    short = frames[:1000]
    assert plots._pooled_in_time(short) is short  # fewer frames than columns: as they are
