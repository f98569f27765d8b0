"""bench/music_features.py on synthetic signals made here: each figure must tell apart what it claims to."""
import numpy as np
import pytest

from bench import music_features as mf

RATE = mf.SAMPLE_RATE
NOTES = {"C": 0, "C#": 1, "D": 2, "E": 4, "F": 5, "F#": 6, "G": 7, "A": 9, "A#": 10, "B": 11}


def stereo(mono):
    return np.stack([mono, mono], axis=1).astype(np.float32)


def harmonic_chord(pitch_classes, seconds, partials=4):
    """Tones of the given pitch classes (MIDI octave 4), each with a few decaying harmonics."""
    time = np.arange(int(seconds * RATE)) / RATE
    mono = np.zeros_like(time)
    for pitch in pitch_classes:
        frequency = 440.0 * 2 ** ((60 + pitch - 69) / 12)
        mono += sum(np.sin(2 * np.pi * frequency * k * time) / k ** 2 for k in range(1, partials + 1))
    return stereo(0.3 * mono / np.abs(mono).max())


def noise(seconds, seed=0, level=0.3):
    return stereo(level * np.random.default_rng(seed).standard_normal(int(seconds * RATE)))


def clicks(seconds, period, shift=0.0):
    mono = np.zeros(int(seconds * RATE))
    mono[np.arange(int((shift + 0.1) * RATE), len(mono), int(period * RATE))] = 0.9
    return stereo(mono)


def major(root):
    return [(NOTES[root] + interval) % 12 for interval in (0, 4, 7)]


def test_a_chord_of_harmonic_tones_is_far_more_tonal_than_white_noise():
    chord, hiss = mf.tonalness(harmonic_chord(major("C"), 4)), mf.tonalness(noise(4))
    assert hiss < 0.02  # all twelve pitch classes alike
    assert chord > 0.15  # three pitch classes (at most 1 - log 3 / log 12 = 0.56) blurred by partials


def test_chords_changing_every_second_have_far_more_chroma_flux_than_a_held_chord():
    sequence = np.concatenate([harmonic_chord(major(root), 1.0) for root in "C F# D A# E F".split()])
    held = harmonic_chord(major("C"), 6.0)
    assert mf.chroma_flux(held) < 0.02
    assert mf.chroma_flux(sequence) > 0.2


def test_a_click_every_half_second_has_a_pulse_near_1_and_noise_far_lower():
    assert mf.pulse(clicks(12, 0.5)) > 0.9
    assert mf.pulse(noise(12)) < 0.3


def test_key_agreement_is_1_for_the_same_chord_and_lower_for_a_tritone_away():
    c_major = harmonic_chord(major("C"), 3)
    assert mf.key_agreement(c_major, c_major) == pytest.approx(1.0, abs=1e-6)
    assert mf.key_agreement(c_major, harmonic_chord(major("F#"), 3)) < 0.6


def test_the_classifier_cannot_tell_one_distribution_from_itself_and_always_tells_different_ones():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(4), 40)
    same = mf.classifier_accuracy(rng.standard_normal((160, 8)), groups, rng.standard_normal((160, 8)), groups)
    shifted = rng.standard_normal((160, 8)) + 3.0
    different = mf.classifier_accuracy(rng.standard_normal((160, 8)), groups, shifted, groups)
    assert 0.35 < same < 0.65
    assert different > 0.97


def test_clip_features_of_noise_and_chords_are_told_apart_leave_one_song_out():
    chords = [harmonic_chord(major(root), 6) for root in "C D E F".split()]
    hiss = [noise(6, seed) for seed in range(4)]
    features = [mf.clip_features(song) for song in chords + hiss]
    assert all(f.shape[0] == 2 and np.isfinite(f).all() for f in features)
    groups = np.repeat(np.arange(4), 2)
    assert mf.classifier_accuracy(np.concatenate(features[:4]), groups, np.concatenate(features[4:]), groups) == 1.0


def test_the_classifiers_cues_name_the_one_group_of_clip_statistics_that_differs():
    chords = [harmonic_chord(major(root), 6) for root in "C D E F".split()]
    features = np.concatenate([mf.clip_features(song) for song in chords])
    groups = np.repeat(np.arange(4), 2)
    columns = mf.clip_feature_groups()
    assert list(columns.values())[-1].stop == features.shape[1]  # the groups cover every column, in order
    rng = np.random.default_rng(0)
    jittered = features + 0.01 * rng.standard_normal(features.shape) * (features.std(axis=0) + 1e-6)
    louder = jittered.copy()
    louder[:, columns["level (log-mel mean)"]] += 10.0  # the same clips 10 dB louder: only the level differs
    cues = mf.classifier_cues(features, groups, louder, groups)
    alone, without = cues["level (log-mel mean)"]
    assert alone > 0.9 and without < 0.75
    assert all(other[0] < 0.75 for name, other in cues.items() if name != "level (log-mel mean)")


def random_steps(count, rng):
    """count 1/4-s steps, each its own few tones over coloured noise: no two alike."""
    time = np.arange(int(mf.STEP_SECONDS * RATE)) / RATE
    steps = []
    for _ in range(count):
        tones = sum(rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * rng.uniform(60, 8000) * time) for _ in range(5))
        hiss = np.convolve(rng.standard_normal(len(time)), rng.standard_normal(rng.integers(2, 40)), "same")
        steps.append(tones + 0.05 * rng.uniform(0.2, 2) * hiss / hiss.std())
    return steps


def test_the_copy_guard_finds_a_planted_two_second_repeat():
    rng = np.random.default_rng(1)
    reference = random_steps(20, rng)
    candidate = random_steps(16, rng)
    candidate[4:12] = reference[5:13]  # 8 steps = 2 s of the reference, in order
    bands = mf.band_statistics([stereo(np.concatenate(reference))])
    reference_vectors = [mf.step_vectors(stereo(np.concatenate(reference)), bands)]
    candidate_vectors = mf.step_vectors(stereo(np.concatenate(candidate)), bands)
    assert len(candidate_vectors) == 16
    assert mf.longest_copy_seconds(candidate_vectors, reference_vectors) == 2.0
    fresh = mf.step_vectors(stereo(np.concatenate(random_steps(16, rng))), bands)
    assert mf.longest_copy_seconds(fresh, reference_vectors) <= 0.25


def test_the_loop_guard_finds_a_stretch_played_again_4_s_later_or_more_and_nothing_in_fresh_steps():
    rng = np.random.default_rng(2)
    steps = random_steps(48, rng)
    steps[30:42] = steps[6:18]  # 3 s played again 6 s later
    steps[20:26] = steps[12:18]  # 1.5 s again 2 s later: too close to be a replay (a held sound matches itself)
    bands = mf.band_statistics([stereo(np.concatenate(steps))])
    vectors = mf.step_vectors(stereo(np.concatenate(steps)), bands)
    assert mf.longest_self_repeat_seconds(vectors) == 3.0
    assert mf.longest_self_repeat_seconds(vectors[:30]) <= 0.25  # before the replay
    assert mf.longest_self_repeat_seconds(vectors[:30], min_lag=8) == 1.5


def test_onset_f_of_a_click_train_is_1_against_itself_and_near_0_against_a_copy_100_ms_later():
    train = clicks(10, 0.5)
    assert mf.onset_f_measure(train, train) == 1.0
    assert mf.onset_f_measure(train, clicks(10, 0.5, shift=0.1)) < 0.1


def test_onset_precision_falls_with_added_onsets_and_recall_with_lost_ones():
    train, twice_as_many = clicks(10, 0.5), clicks(10, 0.25)
    added = mf.onset_agreement(train, twice_as_many)
    assert added["reference_count"] == 20 and added["estimate_count"] == 40
    assert added["recall"] == 1.0 and 0.45 < added["precision"] < 0.55
    lost = mf.onset_agreement(twice_as_many, train)
    assert lost["precision"] == 1.0 and 0.45 < lost["recall"] < 0.55


def held_tone_with_clicks(click_level, seed, extra_clicks=False):
    """A steady tone with faint noise and a click every second (and, with extra_clicks, one between)."""
    time = np.arange(10 * RATE) / RATE
    mono = 0.1 * np.sin(2 * np.pi * 220 * time) + 0.002 * np.random.default_rng(seed).standard_normal(len(time))
    mono[np.arange(int(0.3 * RATE), len(mono), RATE if not extra_clicks else RATE // 2)] += click_level
    return stereo(mono)


def test_softened_attacks_add_onsets_on_their_own_scale_but_not_on_the_originals():
    original = held_tone_with_clicks(0.9, seed=0)
    softened = mf.onset_agreement(original, held_tone_with_clicks(0.1, seed=1))
    # On its own scale the noise's fluctuations pass the threshold once the clicks are 9x weaker ...
    assert softened["reference_count"] == 10 and softened["estimate_count"] >= 20 and softened["precision"] < 0.5
    # ... on the original's they do not, and the attacks measure about their share of the original's.
    assert softened["estimate_count_on_reference_scale"] == 10 and softened["precision_on_reference_scale"] == 1.0
    assert 0.1 < softened["attack_strength"] < 0.35
    same = mf.onset_agreement(original, held_tone_with_clicks(0.9, seed=1))
    assert same["attack_strength"] > 0.9 and same["precision_on_reference_scale"] == 1.0
    # An estimate that stops early has no attacks where it is silent.
    assert mf.attack_strength(np.arange(1.0, 101.0), np.ones(40)) == 0.0
    # Onsets the estimate really adds are counted on either scale.
    added = mf.onset_agreement(original, held_tone_with_clicks(0.9, seed=1, extra_clicks=True))
    assert added["estimate_count_on_reference_scale"] == 20 and added["precision_on_reference_scale"] == 0.5


def test_band_level_differences_see_a_low_pass_in_its_bands_only():
    import scipy.signal

    white = noise(5, seed=3)
    low_passed = scipy.signal.sosfiltfilt(scipy.signal.butter(8, 4000, fs=RATE, output="sos"), white, axis=0)
    differences = mf.band_level_differences_db(white, low_passed)
    assert np.all(np.abs(differences[:2]) < 0.2), differences  # 20-200 Hz and 0.2-1 kHz untouched
    assert -1.5 < differences[2] < 0  # 1-4 kHz: only the filter's knee
    assert differences[3] < -15 and differences[4] < -60, differences  # the knee is at the band's bottom
    assert np.all(np.abs(mf.band_level_differences_db(white, 0.5 * white) + 6.02) < 0.01)
