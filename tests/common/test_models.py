"""common/models.py: encode and decode in batches give what one pass over the whole song gives."""
import numpy as np
import pytest

import autoencode
from common import audio, models
from tests.conftest import synth_song


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_batched_encode_and_decode_match_one_pass_over_the_song(batch_size):
    encoder, decoder = autoencode.build_dense(8)
    steps = audio.frame_steps(synth_song(2.5))  # 10 steps: batches of 4 end inside the song, 64 covers it
    whole_score = encoder.predict(audio.segments_from_steps(steps), verbose=0)
    whole_audio = audio.overlap_add(decoder.predict(whole_score, verbose=0))

    score = models.encode(encoder, steps, batch_size=batch_size)
    decoded = models.decode(decoder, score, batch_size=batch_size)

    assert score.shape == (10, 8) and score.dtype == np.float32
    np.testing.assert_allclose(score, whole_score, rtol=1e-4, atol=1e-5)  # float32 sums in another order
    assert decoded.shape == (10 * audio.STEP_FRAMES, audio.CHANNELS)
    # Every cross-fade, including those between two batches, is the one of the whole song.
    np.testing.assert_allclose(decoded, whole_audio, rtol=1e-4, atol=1e-5)


def test_an_empty_song_encodes_to_an_empty_score():
    encoder, decoder = autoencode.build_dense(8)
    score = models.encode(encoder, np.zeros((0, audio.STEP_FRAMES, audio.CHANNELS), np.float32))
    assert score.shape == (0, 8)
    assert models.decode(decoder, score).shape == (0, audio.CHANNELS)
