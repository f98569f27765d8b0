"""What a step sounds like (common/step_features.py) and how real steps are joined (common/step_choice.py)."""
import numpy as np
import pytest

from common import step_features
from common.audio import SAMPLE_RATE, STEP_FRAMES
from common.step_choice import StepChoice

TIME = np.arange(STEP_FRAMES) / SAMPLE_RATE


def tone_step(midi_notes, amplitude=0.3):
    """One stereo step of harmonic tones (3 partials each) at the given MIDI notes."""
    mono = sum(amplitude / (k + 1) * np.sin(2 * np.pi * 440 * 2 ** ((note - 69) / 12) * (k + 1) * TIME)
               for note in midi_notes for k in range(3))
    return np.stack([mono, mono], axis=1).astype(np.float32)


def test_chroma_names_the_notes_played():
    a_minor, c_major = step_features.step_features(np.stack([tone_step([57, 60, 64]), tone_step([48, 52, 55])]))
    chroma = slice(step_features.MEL_BANDS, step_features.MEL_BANDS + 12)
    # Pitch classes from C = 0: A minor is A, C, E (9, 0, 4); C major is C, E, G (0, 4, 7). The second
    # partial is an octave; the third adds each note's fifth (a ninth of the power), for A minor G and B.
    assert a_minor[chroma][[9, 0, 4]].sum() > 0.9 and c_major[chroma][[0, 4, 7]].sum() > 0.9
    assert 0.01 < a_minor[chroma][[7, 11]].min() < 0.05
    assert a_minor[chroma][[1, 2, 3, 5, 6, 8, 10]].max() < 0.005


def test_envelope_finds_where_in_the_step_a_hit_lands_and_loudness_is_the_steps_rms():
    step = np.zeros((STEP_FRAMES, 2), np.float32)
    block = STEP_FRAMES // step_features.ENVELOPE_BLOCKS
    step[3 * block:3 * block + 200] = 0.5  # a short hit in block 3
    features = step_features.step_features(step[None])[0]
    envelope = features[-1 - step_features.ENVELOPE_BLOCKS:-1]
    assert np.argmax(envelope) == 3 and envelope[3] - np.delete(envelope, 3).max() > 40
    # RMS of 200 frames of 0.5 in 11025: 20 log10(0.5 sqrt(200 / 11025)) = -23.4 dB.
    assert features[-1] == pytest.approx(20 * np.log10(0.5 * np.sqrt(200 / STEP_FRAMES)), abs=0.05)
    assert features.shape == (step_features.SIZE,)


def seed_and_two_songs(length=30, latent=4):
    """A seed of `length` steps (source 2, pool indices 0..length-1), then two songs (sources 0 and 1) that each
    play the seed's sounds twice over, slightly altered: pool index i sounds like the seed's step i % length."""
    rng = np.random.default_rng(0)
    sounds = rng.standard_normal((length, step_features.SIZE)).astype(np.float32)
    features = np.concatenate([sounds] + [np.tile(sounds, (2, 1)) + 0.01 * rng.standard_normal(
        (2 * length, step_features.SIZE)).astype(np.float32) for _ in range(2)])
    scores = rng.standard_normal((len(features), latent)).astype(np.float32)
    sources = np.repeat([2, 0, 1], [length, 2 * length, 2 * length])
    return scores, features, sources


def test_runs_of_one_song_stop_at_max_run_and_each_join_goes_where_the_music_sounds_the_same():
    scores, features, sources = seed_and_two_songs()
    chooser = StepChoice(scores, features, sources, history=range(30), rng=np.random.default_rng(1),
                         temperature=0, max_run=3)
    uninformative = np.zeros((5, scores.shape[1]), np.float32), np.full((5, scores.shape[1]), 1e3, np.float32)
    asked = []
    picks = [chooser.choose(lambda: asked.append(1) or uninformative) for _ in range(40)]
    steps = np.array([29] + picks)
    # Each new step sounds like the natural next step of what was played (the seed's step after it), whether
    # it is the next step of the same song or a join.
    assert np.array_equal(steps[1:] % 30, (steps[:-1] + 1) % 30)
    # No run of one song is longer than 3 steps; the seed's own run ends at once.
    runs = np.split(steps, np.flatnonzero(np.diff(steps) != 1) + 1)
    assert len(runs[0]) == 1 and max(len(run) for run in runs) <= 3 and chooser.longest_run <= 3
    assert chooser.joins == len(runs) - 1 >= 40 // 3
    assert len(asked) == chooser.joins  # the score model is asked only where a step is a join
    assert len(set(sources[picks])) >= 2  # the seed and both songs are there to join


def test_the_score_models_likeliest_continuation_wins_at_temperature_0():
    scores, features, sources = seed_and_two_songs()
    spread = np.full((5, scores.shape[1]), 0.1, np.float32)
    # After the seed, four places follow on as well as any (pool 30 and 60 in song 0, 90 and 120 in song 1);
    # the model's 5-step prediction is exactly song 1's steps from 120 on, then song 0's from 60 on.
    for likeliest in (120, 60):
        chooser = StepChoice(scores, features, sources, history=range(30), rng=np.random.default_rng(0),
                             temperature=0)
        assert chooser.choose(lambda: (scores[likeliest:likeliest + 5], spread)) == likeliest and chooser.joins == 1


def test_joins_stay_close_to_the_seed():
    # Song 0 sounds like the seed (source 2); song 1's steps are far from it, and follow on just as well.
    rng = np.random.default_rng(0)
    seed = rng.standard_normal((6, step_features.SIZE)).astype(np.float32)
    near = np.tile(seed, (5, 1)) + 0.1 * rng.standard_normal((30, step_features.SIZE)).astype(np.float32)
    features = np.concatenate([seed, near, near + 3.0])
    scores = np.zeros((len(features), 4), np.float32)
    sources = np.repeat([2, 0, 1], [6, 30, 30])
    chooser = StepChoice(scores, features, sources, history=range(6), rng=np.random.default_rng(0))
    picks = [chooser.choose(lambda: (scores[:5], np.ones((5, 4), np.float32))) for _ in range(60)]
    assert np.mean(sources[picks] == 1) < 0.05


def test_the_same_random_generator_gives_the_same_choices():
    scores, features, sources = seed_and_two_songs()

    def choices(seed):
        chooser = StepChoice(scores, features, sources, history=range(30), rng=np.random.default_rng(seed))
        return [chooser.choose(lambda: (scores[5:10], np.ones((5, scores.shape[1]), np.float32))) for _ in range(30)]

    assert choices(3) == choices(3) != choices(4)


def click_steps(num_steps, period_seconds, offset_seconds=0.0):
    """Stereo steps of silence with a 10 ms click every period_seconds."""
    song = np.zeros((num_steps * STEP_FRAMES, 2), np.float32)
    for start in np.arange(offset_seconds, num_steps * 0.25, period_seconds):
        first = int(start * SAMPLE_RATE)
        song[first:first + 441] = 0.5
    return song.reshape(num_steps, STEP_FRAMES, 2)


def test_beat_period_finds_the_clicks_period_in_blocks():
    blocks, strength = step_features.beat_period(step_features.step_features(click_steps(40, 0.5)))
    assert blocks == 16 and strength > 0.8  # 0.5 s = 16 blocks of 31.25 ms
    blocks, _ = step_features.beat_period(step_features.step_features(click_steps(40, 0.75)))
    assert blocks == 24
    assert step_features.beat_period(np.zeros((40, step_features.SIZE)))[0] is None  # nothing rises


def test_joins_within_the_seed_keep_its_beat():
    # A seed with a click every 0.75 s (every 3rd step); a join from step u to j keeps the beat only if
    # j - (u + 1) is a multiple of 3. Compared over one step, the two silent steps between clicks sound the
    # same, so the sound of the joins alone cannot tell the on-beat one from the off-beat one.
    seed = step_features.step_features(click_steps(40, 0.75, offset_seconds=0.1))
    scores = np.zeros((40, 4), np.float32)
    chooser = StepChoice(scores, seed, np.zeros(40, int), history=range(40), rng=np.random.default_rng(0),
                         temperature=0, max_run=2, context=1)
    picks = [chooser.choose(lambda: (np.zeros((5, 4), np.float32), np.ones((5, 4), np.float32))) for _ in range(30)]
    steps = np.array([39] + picks)
    jumps = steps[1:] - (steps[:-1] + 1)
    assert chooser.joins >= 10 and np.all(jumps % 3 == 0), jumps
