"""bench/musicality.py's verdicts from figures: pulse per song against the round trip and against the seed."""
import numpy as np

from bench import musicality

CANDIDATES = ("real", "round-trip", "looped-rt", "conv1d", "sound-only")


def figures(pulse):
    return {"tonalness": 0.2, "chroma_flux": 0.2, "pulse": pulse, "key": 0.9, "copy_seed_seconds": 1.0,
            "copy_training_seconds": 1.0, "loop_seconds": 1.0, "from_seed": None, "min_drift_db": -1.0,
            "max_drift_db": 1.0, "peak": 0.5, "finite": True, "seconds": 60.0}


def test_song_pulse_is_judged_against_the_round_trip_and_against_what_the_seeds_own_steps_hold():
    # Song "intro" has a beat in its real next minute (0.6) but none in its seed (its round trip looped: 0.1): a
    # continuation of the seed's steps at 0.12 fails the round-trip target but keeps more than the seed has.
    pulses = {"intro.ogg": {"real": 0.6, "round-trip": 0.5, "looped-rt": 0.1, "conv1d": 0.12, "sound-only": 0.05},
              "drums.ogg": {"real": 0.7, "round-trip": 0.6, "looped-rt": 0.6, "conv1d": 0.48, "sound-only": 0.24},
              "pad.ogg": {"real": 0.1, "round-trip": 0.1, "looped-rt": 0.1, "conv1d": 0.01, "sound-only": 0.01}}
    per_song = {song: {name: figures(pulse) for name, pulse in row.items()} for song, row in pulses.items()}
    rng = np.random.default_rng(0)
    clips = {song: {name: rng.standard_normal((4, 3)) for name in CANDIDATES} for song in pulses}
    rows = musicality.summarise(per_song, clips, CANDIDATES)
    conv1d = rows["conv1d"]
    assert set(conv1d["song_pulse"]) == {"intro.ogg", "drums.ogg"}  # pad has no beat: not judged
    assert np.isclose(conv1d["song_pulse"]["intro.ogg"], 0.24) and np.isclose(conv1d["song_pulse"]["drums.ogg"], 0.8)
    assert not conv1d["song_pulse_ok"]
    assert np.isclose(conv1d["song_pulse_vs_seed"]["intro.ogg"], 1.2)
    assert np.isclose(conv1d["song_pulse_vs_seed"]["drums.ogg"], 0.8)
    lines = musicality.song_pulse_table(per_song, rows)
    assert "Worst song with a beat: " in "\n".join(lines)
    versus_seed = [line for line in lines if line.startswith("Worst song with a beat against the seed")]
    assert versus_seed and "conv1d drums 0.80x" in versus_seed[0] and "sound-only drums 0.40x" in versus_seed[0]
    assert "| intro* | 60 s | 0.600 | 1.20x | 1.00x | 0.20x | 0.24x | 0.10x |" in lines
    assert "pulse): none" in next(line for line in lines if line.startswith("More than 1.5x the real next's pulse"))


def test_a_continuation_with_a_rhythm_the_song_does_not_have_is_flagged():
    # "swells" has no beat (real 0.3); conv1d's continuation has 0.6, twice the real's; sound-only's 0.4 is not.
    pulses = {"swells.ogg": {"real": 0.3, "round-trip": 0.3, "looped-rt": 0.3, "conv1d": 0.6, "sound-only": 0.4},
              "drums.ogg": {"real": 0.7, "round-trip": 0.6, "looped-rt": 0.6, "conv1d": 0.6, "sound-only": 0.6}}
    per_song = {song: {name: figures(pulse) for name, pulse in row.items()} for song, row in pulses.items()}
    rng = np.random.default_rng(0)
    clips = {song: {name: rng.standard_normal((4, 3)) for name in CANDIDATES} for song in pulses}
    lines = musicality.song_pulse_table(per_song, musicality.summarise(per_song, clips, CANDIDATES))
    flagged = next(line for line in lines if line.startswith("More than 1.5x the real next's pulse"))
    assert flagged.endswith("pulse): conv1d swells 2.00x")


def test_the_models_part_over_several_seeds_judges_the_means():
    # One seed: conv1d's pulse 0.20 above the model switched off; the other: 0.02 below. Over both, +0.09x: the
    # model does not beat it by pulse, and by classifier only where the mean classifier is 0.05 lower.
    def rows(conv1d_pulse, sound_pulse, conv1d_classifier):
        return {"round-trip": {"pulse": 0.5},
                "conv1d": {"pulse": conv1d_pulse, "classifier_vs_round-trip": conv1d_classifier},
                "sound-only": {"pulse": sound_pulse, "classifier_vs_round-trip": 0.6}}

    means = musicality.mean_rows([rows(0.45, 0.35, 0.60), rows(0.34, 0.35, 0.60)])
    assert np.isclose(means["conv1d"]["pulse"], 0.395) and np.isclose(means["round-trip"]["pulse"], 0.5)
    lines = musicality.model_part(means, seeds=2)
    assert "means over 2 random seeds" in lines[0]
    assert lines[1] == ("- conv1d vs sound-only: pulse 0.79x vs 0.70x (+0.09x), classifier 0.60 vs 0.60 (+0.00): "
                        "DOES NOT beat it")
    lines = musicality.model_part(musicality.mean_rows([rows(0.35, 0.35, 0.50), rows(0.35, 0.35, 0.60)]), seeds=2)
    assert lines[1].endswith("classifier 0.55 vs 0.60 (-0.05): beats it")


def test_the_models_part_says_when_a_pulse_difference_is_within_seed_noise():
    # Two songs with a beat, two seeds: conv1d against sound-only song by song and seed by seed. Differences of
    # +0.20, -0.20, +0.20, -0.16 average +0.01x, well within twice their standard error; a steady +0.09-0.12 is not.
    def rows(conv1d, sound):
        return {"round-trip": {"pulse": 0.5},
                "conv1d": {"pulse": 0.4, "classifier_vs_round-trip": 0.6,
                           "song_pulse": dict(zip(("a.ogg", "b.ogg"), conv1d))},
                "sound-only": {"pulse": 0.4, "classifier_vs_round-trip": 0.6,
                               "song_pulse": dict(zip(("a.ogg", "b.ogg"), sound))}}

    noisy = musicality.mean_rows([rows((0.9, 0.5), (0.7, 0.7)), rows((0.8, 0.6), (0.6, 0.76))])
    assert noisy["conv1d"]["song_pulse_seeds"] == {"a.ogg": [0.9, 0.8], "b.ogg": [0.5, 0.6]}
    line = musicality.model_part(noisy, seeds=2)[1]
    assert line.endswith("; per song with a beat and seed: +0.01x +/- 0.22 (4 pairs, within seed noise)"), line
    assert "DOES NOT beat it" in line
    steady = musicality.mean_rows([rows((0.8, 0.7), (0.7, 0.58)), rows((0.81, 0.69), (0.7, 0.6))])
    line = musicality.model_part(steady, seeds=2)[1]
    assert "+0.11x +/- 0.01 (4 pairs)" in line and "noise" not in line, line
    # The rows' means are alike (0.4); on the songs with a beat the model keeps 0.11x more: that is what counts.
    assert "pulse 0.80x vs 0.80x (+0.00x)" in line and ": beats it;" in line, line


def test_the_models_pulse_margin_is_judged_on_the_songs_with_a_beat_not_on_a_song_without_one():
    # A song without a beat ("pad") continued with 2.5x its round trip's pulse lifts conv1d's row mean 0.20x above
    # sound-only's; on the two songs with a beat the rows are alike, song by song: no margin.
    def rows(conv1d_pulse):
        return {"round-trip": {"pulse": 0.5},
                "conv1d": {"pulse": conv1d_pulse, "classifier_vs_round-trip": 0.6,
                           "song_pulse": {"a.ogg": 0.9, "b.ogg": 0.7}},
                "sound-only": {"pulse": 0.4, "classifier_vs_round-trip": 0.6,
                               "song_pulse": {"a.ogg": 0.88, "b.ogg": 0.72}}}

    line = musicality.model_part(rows(0.5))[1]
    assert "pulse 1.00x vs 0.80x (+0.20x)" in line and "DOES NOT beat it" in line, line
    assert "per song with a beat and seed: +0.00x" in line, line
    # Where no song has a beat, the rows' means are all there is to judge.
    without = {name: {key: value for key, value in row.items() if key != "song_pulse"}
               for name, row in rows(0.5).items()}
    assert ": beats it" in musicality.model_part(without)[1]


def song_rows(conv1d, sound):
    """One run's rows of conv1d and sound-only, each song's pulse ratio as given (song: ratio)."""
    return {"round-trip": {"pulse": 0.5},
            "conv1d": {"pulse": 0.4, "classifier_vs_round-trip": 0.6, "song_pulse": conv1d},
            "sound-only": {"pulse": 0.4, "classifier_vs_round-trip": 0.6, "song_pulse": sound}}


def test_runs_at_other_seed_places_pair_only_the_songs_they_have():
    # Three runs (seeds or seed places); song b has a beat (or a seed place) in the first and third only. Its
    # pairs come from those two runs, a's from all three: 5 pairs.
    means = musicality.mean_rows([song_rows({"a": 0.8, "b": 0.6}, {"a": 0.7, "b": 0.5}),
                                  song_rows({"a": 0.9}, {"a": 0.8}),
                                  song_rows({"a": 0.7, "b": 0.7}, {"a": 0.6, "b": 0.6})])
    assert means["conv1d"]["song_pulse_seeds"] == {"a": [0.8, 0.9, 0.7], "b": [0.6, 0.7]}
    lines = musicality.model_part(means, seeds=1, places=3)
    assert "means over 3 seed places per song" in lines[0]
    assert "+0.10x +/- 0.00 (5 pairs)" in lines[1], lines[1]


def test_a_seed_place_no_song_reaches_adds_no_run(monkeypatch):
    # At 80 s every held-out song is too short for a seed and a minute after it: no run, not a row of NaNs.
    seen = {}

    def no_songs(args, *rest, whole_only=False):
        seen.update(offset=args.offset, whole_only=whole_only, subfolder=rest[-1])
        return {}, {}, {}

    monkeypatch.setattr(musicality, "measure_songs", no_songs)
    args = musicality.parse_args(["/tmp/none", "--work-dir", "/tmp/none", "--more-offsets", "80"])
    assert musicality.more_seed_rows(args, None, None, [], None, None, None, 2, 80.0) is None
    assert seen == {"offset": 80.0, "whole_only": True, "subfolder": "seed2-at80s"}


def test_where_it_goes_on_from_counts_the_steps_most_like_the_seeds_last_ten():
    from bench import music_features as mf

    # A seed of 40 unit vectors, each its own direction: an excerpt of steps 0-29 again scores 0, one of 30-39 1,
    # and one step of each of the 40, a quarter.
    seed = np.eye(40)
    assert mf.share_like_the_seed_end(seed[:30], seed) == 0.0
    assert mf.share_like_the_seed_end(seed[30:], seed) == 1.0
    assert mf.share_like_the_seed_end(seed, seed) == 0.25
    assert mf.share_like_the_seed_end(seed[:0], seed) == 0.0
    per_song = {"rock.ogg": {name: dict(figures(0.5), like_seed_end=share)
                             for name, share in (("real", 0.92), ("round-trip", 1.0), ("conv1d", 0.23))}}
    rows = {name: {} for name in ("round-trip", "conv1d")}
    lines = musicality.seed_end_table(per_song, rows)
    assert "| song | real | round-trip | conv1d |" in lines and "| rock | 0.92 | 1.00 | 0.23 |" in lines
    assert "every part of the seed alike: 0.25" in lines[0]


def test_the_own_steps_rows_are_generated_from_the_seed_alone_and_judged_against_each_other(monkeypatch, tmp_path):
    calls = []

    def fake_generator(argv):
        calls.append(argv)
        import soundfile
        soundfile.write(argv[argv.index("--out") + 1], np.zeros((441, 2), np.float32), 44100)
        return {"share_from_seed": 1.0}

    monkeypatch.setattr(musicality.music_generator, "main", fake_generator)
    args = type("Args", (), {"random_seed": 1})()
    dirs = ["--data-dir", str(tmp_path / "data"), "--models-dir", str(tmp_path / "models")]
    for candidate in ("conv1d-own", "sound-only-own", "sound-only", "conv1d", "sound-only-t0"):
        musicality.generate(args, dirs, tmp_path / "song.ogg", 20.0, 60.0, candidate, tmp_path / f"{candidate}.wav")
    flags = [call[call.index("-q") + 1:] for call in calls]
    assert flags == [["--seed-steps-only"], ["--model-weight", "0", "--seed-steps-only"], ["--model-weight", "0"], [],
                     ["--model-weight", "0", "--temperature", "0"]]
    assert [call[call.index("--model") + 1] for call in calls] == ["conv1d", "lstm", "lstm", "conv1d", "lstm"]
    rows = {"round-trip": {"pulse": 0.5}, **{name: {"pulse": pulse, "classifier_vs_round-trip": 0.6} for name, pulse in
                                            (("conv1d", 0.4), ("sound-only", 0.35), ("conv1d-own", 0.3),
                                             ("sound-only-own", 0.3), ("lstm-t0", 0.45), ("sound-only-t0", 0.4))}}
    lines = musicality.model_part(rows)
    assert [line.split(":")[0] for line in lines[1:]] == ["- conv1d vs sound-only", "- conv1d-own vs sound-only-own",
                                                          "- lstm-t0 vs sound-only-t0"]
    assert "pulse 0.60x vs 0.60x (+0.00x)" in lines[2]


def test_the_per_song_table_over_runs_shows_each_songs_mean_and_the_worst():
    means = musicality.mean_rows([song_rows({"a.ogg": 0.8, "b.ogg": 0.6}, {"a.ogg": 0.7, "b.ogg": 0.5}),
                                  song_rows({"a.ogg": 0.9}, {"a.ogg": 0.4}),
                                  song_rows({"a.ogg": 0.7, "b.ogg": 0.7}, {"a.ogg": 0.6, "b.ogg": 0.6})])
    lines = musicality.song_pulse_means(means, 3)
    assert lines[2] == "| song | conv1d | sound-only |"
    assert lines[4:6] == ["| a | 0.80x | 0.57x |", "| b | 0.65x | 0.55x |"]  # b: its two runs only
    assert lines[-1].endswith("conv1d b 0.65x; sound-only b 0.55x")
    assert musicality.song_pulse_means({"round-trip": {"pulse": 0.5}}, 1) == []
