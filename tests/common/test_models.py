"""common/models.py: encode and decode in batches give what one pass over the whole song gives."""
import numpy as np
import pytest

import autoencode
from common import audio, crossfade, models
from tests.conftest import synth_song


@pytest.mark.parametrize("lapped", [False, True], ids=["dense", "dense-lapped"])
@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_batched_encode_and_decode_match_one_pass_over_the_song(batch_size, lapped):
    """Lapped codecs are encoded and decoded without segments (codec.fold_steps, steps_from_folded):
    they must give what the saved model's layers give on segments, cross-faded as overlap_add does."""
    encoder, decoder = autoencode.build_dense(8, lapped=lapped)
    steps = audio.frame_steps(synth_song(2.5))  # 10 steps: batches of 4 end inside the song, 64 covers it
    whole_score = encoder.predict(audio.segments_from_steps(steps), verbose=0)
    whole_audio = crossfade.overlap_add(decoder.predict(whole_score, verbose=0), keep_energy=not lapped)

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


@pytest.mark.parametrize("piece_steps", [1, 3, 64])
def test_round_trip_pieces_add_up_to_the_round_trip_of_the_whole_song(piece_steps):
    from common import datasets

    encoder, decoder = autoencode.build_dense(8)
    steps = audio.frame_steps(synth_song(2.5))  # 10 steps
    whole = models.decode(decoder, models.encode(encoder, steps))
    stored = datasets.encode_steps_for_storage(steps, "int16")  # pieces are made from the stored (int16) steps
    expected = models.decode(decoder, models.encode(encoder, datasets.decode_stored_steps(stored)))

    pieces = list(models.round_trip_pieces(encoder, decoder, stored, piece_steps=piece_steps,
                                           to_float=datasets.decode_stored_steps))

    assert [(first, last) for first, last, _, _ in pieces] == [
        (first, min(first + piece_steps, 10)) for first in range(0, 10, piece_steps)]
    originals = np.concatenate([original for _, _, original, _ in pieces])
    np.testing.assert_array_equal(originals, audio.unframe_steps(datasets.decode_stored_steps(stored)))
    joined = np.concatenate([piece for _, _, _, piece in pieces])
    assert joined.shape == whole.shape
    # Each piece's edges are cross-faded with the real neighbours, as in one pass over the song.
    np.testing.assert_allclose(joined, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(joined - whole).max() < 1e-3  # int16 storage moves samples by at most 1/32768 before coding


def test_lapped_codecs_take_the_path_without_segments_also_when_loaded(tmp_path):
    from common import codec

    plain_encoder, plain_decoder = autoencode.build_dense(8)
    assert codec.after_lapped_analysis(plain_encoder) is None
    assert codec.before_lapped_synthesis(plain_decoder) == (None, False)
    encoder, decoder = autoencode.build_dense(8, lapped=True)
    for name, model in (("encoder", encoder), ("decoder", decoder)):
        models.save_model(model, tmp_path / f"{name}.keras")
    loaded_encoder = models.load_model(tmp_path, "encoder", "autoencoder")
    loaded_decoder = models.load_model(tmp_path, "decoder", "autoencoder")
    after_fold = codec.after_lapped_analysis(loaded_encoder)
    before_unfold, ends_with_unfold = codec.before_lapped_synthesis(loaded_decoder)
    assert [layer.name for layer in after_fold.layers[1:]] == ["score"] and after_fold.input_shape == (None, 22050)
    assert ends_with_unfold and before_unfold.output_shape == (None, 22050)
    steps = audio.frame_steps(synth_song(1.0))
    np.testing.assert_allclose(models.encode(loaded_encoder, steps), models.encode(encoder, steps), atol=1e-6)


def test_a_lapped_codec_saved_after_coding_holds_only_its_own_layers(tmp_path):
    """The sub-models encode / decode make for lapped codecs are not kept on the models, where Keras would
    save them too."""
    import io
    import zipfile

    import h5py

    encoder, decoder = autoencode.build_dense(8, lapped=True)
    steps = audio.frame_steps(synth_song(1.0))
    models.decode(decoder, models.encode(encoder, steps))
    for name, model in (("encoder", encoder), ("decoder", decoder)):
        models.save_model(model, tmp_path / f"{name}.keras")
        with zipfile.ZipFile(tmp_path / f"{name}.keras") as saved:
            weights = h5py.File(io.BytesIO(saved.read("model.weights.h5")), "r")
            assert sorted(weights) == ["layers", "vars"], sorted(weights)
