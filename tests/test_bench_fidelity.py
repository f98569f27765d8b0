"""bench/fidelity.py's summary: the worst song's figures, not only the means."""
import pytest

from bench.fidelity import classifier_with_spread, print_rhythm, worst_pulse_ratio


def rhythm_result(pulses, original_pulses):
    onsets = [{"precision": 0.9, "f": 0.8, "precision_on_reference_scale": 0.95, "f_on_reference_scale": 0.85,
               "attack_strength": 0.7},
              {"precision": 0.4, "f": 0.5, "precision_on_reference_scale": 0.8, "f_on_reference_scale": 0.75,
               "attack_strength": 0.45}]
    return {"pulse_per_song": pulses, "original_pulse_per_song": original_pulses,
            "pulse": sum(pulses) / len(pulses), "original_pulse": sum(original_pulses) / len(original_pulses),
            "onsets_per_song": onsets, "onset_precision": 0.65, "onset_recall": 0.9, "onset_f": 0.65,
            "onset_precision_on_reference_scale": 0.875, "onset_f_on_reference_scale": 0.8,
            "onset_attack_strength": 0.575, "classifier": 0.6,
            "classifier_cues": {"level": (0.55, 0.6), "motion": (0.82, 0.51)}}


def test_the_worst_songs_pulse_is_its_own_ratio_not_the_ratio_of_the_means():
    result = rhythm_result([0.5, 0.9], [0.8, 0.9])
    assert worst_pulse_ratio(result) == pytest.approx(0.625)
    assert result["pulse"] / result["original_pulse"] == pytest.approx(0.82, abs=0.01)  # what the mean said


def test_the_rhythm_table_shows_the_worst_song_beside_the_means(capsys):
    print_rhythm([("sparse", "", rhythm_result([0.5, 0.9], [0.8, 0.9]))])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| sparse")]
    row = rows[0]
    assert "| 0.40 / 0.50 |" in row and "(0.82x) | 0.62x |" in row
    # On the original's scale (mean, then the worst song's), and the attacks' strength (mean, worst song's).
    assert "| 0.88 / 0.80, 0.80 / 0.75 |" in row and "| 0.57, 0.45 |" in row


def test_the_cue_table_gives_each_group_alone_and_the_rest_without_it(capsys):
    print_rhythm([("sparse", "", rhythm_result([0.5, 0.9], [0.8, 0.9]))])
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("| code | level"))
    assert header == "| code | level | motion |"
    assert lines[lines.index(header) + 2] == "| sparse | 0.55 / 0.60 | 0.82 / 0.51 |"


def test_the_classifier_shows_how_far_it_moves_from_song_to_song(capsys):
    result = {**rhythm_result([0.5, 0.9], [0.8, 0.9]), "classifier_per_song": [0.5, 0.7, 0.6, 0.6]}
    # The standard error of the mean of 0.5, 0.7, 0.6, 0.6: std (ddof 1) 0.0816 / 2 = 0.041, twice that 0.08.
    assert classifier_with_spread(result) == "0.60 (0.50-0.70, +/- 0.08)"
    assert classifier_with_spread(rhythm_result([0.5], [0.8])) == "0.60"  # one song (or none recorded): no spread
    print_rhythm([("sparse", "", result)])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| sparse"))
    assert row.endswith("| 0.60 (0.50-0.70, +/- 0.08) |")
