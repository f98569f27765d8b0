"""Benchmark: do the score models' continuations sound like the music they continue? (issue 18)

Splits a folder of real songs by song (bench/fidelity.py's split_songs: --held-out songs by a hash of their
names, about --train-minutes of the others, whole songs, for training), runs the real pipeline on the training
songs into --work-dir (bench/continuation.py's build_artifacts and train_score_models), then continues a 10-s
seed at --offset of every held-out song for --seconds with each candidate:
  real        the real next --seconds (the reference)
  round-trip  the same through the autoencoder, decoded with its seed (the ceiling of any score model)
  shuffled    the seed's 40 steps replayed in random order (raw audio, a new order every 10 s)
  looped      the seed looped (raw audio)
  looped-rt   the seed's round trip looped: the most pulse a continuation of the seed's own steps can keep
  conv1d, lstm            music_generator.py with its defaults (--continuation-only --out)
  sound-only              the same with the model switched off (--model-weight 0: joins by sound alone)
  conv1d-untrained, lstm-untrained   the defaults with each score model untrained (--epochs 0)
  conv1d-t0, lstm-t0, sound-only-t0   (on request) the same with --temperature 0 (always the cheapest join)
  conv1d-own, lstm-own, sound-only-own   (on request) the same continuing with the seed's own steps alone
                          (--seed-steps-only): how the models and sound alone differ among them
and measures each (bench/music_features.py): tonalness, chroma flux, pulse, key agreement with the seed,
a classifier two-sample test on 3-s clips against the real next --seconds and against its round trip (logistic
regression, leave one song out), the copy guard (longest stretch repeating consecutive steps of the seed or of
any training song), the loop guard (longest stretch repeating the excerpt's own steps at least 4 s earlier: a
continuation cycling through a few runs), and the guards: every second after the first 2 within +/-3 dB of the
seed, finite, peak <= 1.
Per song it also prints where each candidate goes on from: the share of its steps that sound most like the seed's
last 2.5 s, beside the real next's (a seed that changes, an intro and then the band, is continued from its end).

Targets (against the round trip): classifier <= 0.75; tonalness >= 0.75x; chroma flux 0.6-1.4x; pulse >= 0.75x,
and >= 0.6x on every song whose real pulse is 0.4 or more; key agreement >= 0.85; copy stretch <= 3 s, or the
real next --seconds' own stretch against its seed if longer; loop stretch <= 3 s, or the real next's own. The
score models' part: each model's row beats the sound-only and its untrained row by a pulse at least 0.10x higher
or a classifier at least 0.05 lower (the -own rows: each model's against sound-only-own, all of them on the
seed's own steps); the pulse on the songs with a beat, paired song by song and run by run (with twice the
standard error of the mean difference), the rows' means only where no song has one: a continuation of a song
without a beat can measure 2.5x its round trip's pulse, which is not better and outweighed the rest. With
--seeds N, judged over N random seeds of generation (one seed moves a song's pulse by up to 0.3x, more than the
margin), and with --more-offsets over more seed places of each song too.

Reads   MUSIC_DIR (any format the pipeline reads)
Writes  WORK/data, WORK/models (the pipeline's), WORK/musicality/<song>/<candidate>.wav and
        <candidate>.png (its log-mel spectrogram above the real next --seconds'; other --seeds' rows in
        <song>/seed<N>/, other places' in <song>/seed<N>-at<S>s/), WORK/musicality/results.json (raw figures
        and the table) and table.md; prints the table.

Run from the repository root (niced; about 20 minutes on 2 shared CPU cores with these sizes):
    nice -n 10 python -m bench.musicality /tmp/music/orchestral --work-dir /tmp/mus/orchestral \\
        --units 256 --filters 256 --score-epochs 6 --patience 2
    nice -n 10 python -m bench.musicality /tmp/music/orchestral --work-dir /tmp/mus/orchestral --reuse \\
        --candidates lstm lstm-t0          # generate and score these rows again
    nice -n 10 python -m bench.musicality /tmp/music/orchestral --work-dir /tmp/mus/orchestral --reuse \\
        --random-seed 1 --seeds 3          # the models' part over 3 random seeds (~2.5x as long)
    nice -n 10 python -m bench.musicality /tmp/music/orchestral --work-dir /tmp/mus/orchestral --reuse \\
        --random-seed 1 --seeds 3 --more-offsets 50 80     # and over seeds at 50 s and 80 s too (~7x)
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile

import music_generator
from bench import music_features as mf
from bench.continuation import add_pipeline_arguments, build_artifacts, decode_seed_and_next, train_score_models
from bench.fidelity import split_songs
from common import artifacts, audio, cli, datasets, metrics, paths, plots

CANDIDATES = ("real", "round-trip", "shuffled", "looped", "looped-rt", "conv1d", "lstm", "sound-only",
              "conv1d-untrained", "lstm-untrained", "conv1d-t0", "lstm-t0", "sound-only-t0", "conv1d-own", "lstm-own",
              "sound-only-own")
DEFAULT_CANDIDATES = CANDIDATES[:-6]
IN_STEPS = 40  # the score models' window: 10 s of seed
TARGETS = {"classifier": 0.75, "tonalness": 0.75, "chroma_flux": (0.6, 1.4), "pulse": 0.75, "key": 0.85,
           "copy_seconds": 3.0, "loop_seconds": 3.0, "drift_db": 3.0, "peak": 1.0, "song_pulse": 0.6,
           "clear_pulse": 0.4, "model_pulse": 0.10, "model_classifier": 0.05}
# A continuation with this many times the real next minute's pulse has a rhythm the song does not have (hedgewars'
# Desert, swells of ~6 s and a pulse of 0.32, continued by the conv1d model with other songs' steps at 2.2x its
# round trip's pulse): flagged, as it raises the rows' mean pulse.
EXCESS_PULSE = 1.5


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("music_dir", type=Path, help="folder of real songs (searched recursively)")
    parser.add_argument("--work-dir", type=Path, required=True,
                        help="where data/, models/ and musicality/ (WAVs, PNGs, results) are made")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the step dataset, autoencoder, scores and score models --work-dir has; only "
                             "generate and score again")
    parser.add_argument("--held-out", type=int, default=4, help="songs held out to seed and compare (default 4)")
    parser.add_argument("--train-minutes", type=float, default=20.0,
                        help="minutes of training music, whole songs, its validation songs included (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of each continuation (default 60)")
    parser.add_argument("--offset", type=float, default=20.0,
                        help="seconds into each held-out song where its 10-s seed starts (0 where the song is "
                             "too short; default 20)")
    parser.add_argument("--candidates", nargs="+", choices=CANDIDATES, default=list(DEFAULT_CANDIDATES),
                        help="rows to generate and score (default: all; real and round-trip are always "
                             "computed, as the others are measured against them)")
    parser.add_argument("--random-seed", type=int, default=0, help="seed of training, sampling and shuffling")
    parser.add_argument("--seeds", type=int, default=1,
                        help="judge the score models' part over this many random seeds of generation (--random-seed "
                             "and the next ones; default 1): one seed moves a song's pulse by up to 0.3x")
    parser.add_argument("--more-offsets", nargs="*", type=float, default=[],
                        help="judge the score models' part on seeds at these seconds of each held-out song too, "
                             "each with every --seeds (songs too short for a seed and --seconds there are left "
                             "out): 4 songs x 3 seeds could not tell a model's part from chance")
    add_pipeline_arguments(parser)
    args = parser.parse_args(argv)
    args.candidates = [name for name in CANDIDATES if name in {"real", "round-trip", *args.candidates}]
    return args


def trained_pipeline(args):
    """The default pipeline on the split's training songs in --work-dir (built unless --reuse finds it, the score
    models trained and untrained): (work folder, the scripts' folder flags, training songs, held-out songs,
    seconds of training music, the score models' records)."""
    work = args.work_dir.resolve()
    dirs = ["--data-dir", str(work / "data"), "--models-dir", str(work / "models")]
    training, tests, train_seconds = split_songs(args.music_dir, args.held_out, args.train_minutes)
    link_training_songs(training, paths.input_dir(work / "data"))
    if not (args.reuse and paths.model_record_path(work / "models", "autoencoder").is_file()):
        build_artifacts(args, dirs)
    return work, dirs, training, tests, train_seconds, train_score_models(args, dirs, work)


def save_table(folder, args, text, **figures):
    """folder/table.md (the table) and folder/results.json (the arguments, the raw figures and the table)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.md").write_text(text + "\n")
    (folder / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                     **figures, "table": text}, indent=1))


def link_training_songs(training, input_dir):
    input_dir.mkdir(parents=True, exist_ok=True)
    for path in training:  # links, not copies: the pipeline reads them like any input song
        link = input_dir / path.name
        if not link.exists():
            link.symlink_to(path.resolve())


def training_references(work, decoder):
    """(band statistics, [step vectors of each training song, as is and through the autoencoder]) for the copy
    guard, cached in the work dir. Through the autoencoder too: a score model that copies a training song's
    score gives its round trip, which the sparse code changes too much for a cosine of 0.95 with the original."""
    from common.models import decode

    cache = work / "musicality" / "training_steps.npz"
    if cache.is_file():
        arrays = np.load(cache)
        return (arrays["mean"], arrays["std"]), [arrays[f"song{i}"] for i in range(int(arrays["count"]))]
    steps_folder, scores_folder = paths.steps_dir(work / "data"), paths.scores_dir(work / "data")
    steps_songs = datasets.songs_in_split(datasets.steps_index(steps_folder), "all")
    scores_songs = datasets.songs_in_split(artifacts.read_dataset_index(scores_folder, "scores"), "all")
    stacked = np.concatenate([mf.log_mel(audio.unframe_steps(datasets.load_song_steps(steps_folder, song)))
                              for song in steps_songs])
    bands = (stacked.mean(axis=0), stacked.std(axis=0) + 1.0)  # as mf.band_statistics, without decoding twice
    del stacked
    vectors = [mf.step_vectors(audio.unframe_steps(datasets.load_song_steps(steps_folder, song)), bands)
               for song in steps_songs]
    vectors += [mf.step_vectors(decode(decoder, datasets.load_song_score(scores_folder, song)), bands)
                for song in scores_songs]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, mean=bands[0], std=bands[1], count=len(vectors),
             **{f"song{i}": array for i, array in enumerate(vectors)})
    return bands, vectors


def seed_and_next(path, offset, seconds):
    """(seed steps, real next steps, offset used) of a held-out song; None if under 6 s follow a seed."""
    steps = audio.frame_steps(audio.load_audio(path))
    length = len(steps) * audio.STEP_SECONDS
    offset = offset if length >= offset + IN_STEPS * audio.STEP_SECONDS + 6 else 0.0
    first = int(round(offset / audio.STEP_SECONDS))
    next_steps = steps[first + IN_STEPS:first + IN_STEPS + int(np.ceil(seconds / audio.STEP_SECONDS))]
    if len(next_steps) < 24:  # 6 s: two 3-s clips and some seconds after the first 2
        return None
    return steps[first:first + IN_STEPS], next_steps, offset


def seed_baseline(seed_steps, num_steps, shuffle, rng):
    """The seed's steps looped, or replayed in a new random order every pass, for num_steps (raw audio)."""
    order = np.concatenate([rng.permutation(len(seed_steps)) if shuffle else np.arange(len(seed_steps))
                            for _ in range(-(-num_steps // len(seed_steps)))])[:num_steps]
    return audio.unframe_steps(seed_steps[order])


def generate(args, dirs, path, offset, seconds, candidate, out):
    """A continuation by music_generator.py for a candidate row: its model, untrained or not, switched off or
    greedy, from every song's steps or the seed's own alone; the WAV's samples and the share of its new steps
    that are the seed's."""
    from bench.continuation import untrained_models_dir

    model, *variants = candidate.split("-")
    flags = sum(({"t0": ["--temperature", "0"], "only": ["--model-weight", "0"],
                  "own": ["--seed-steps-only"]}.get(variant, []) for variant in variants), [])
    if "untrained" in variants:
        dirs = dirs[:2] + ["--models-dir", str(untrained_models_dir(Path(dirs[3]).parent))]
    generated = music_generator.main(dirs + [
        "--seed-file", str(path), "--offset", str(offset), "--seconds", str(seconds),
        "--model", "lstm" if model == "sound" else model, "--random-seed", str(args.random_seed),
        "--continuation-only", "--out", str(out), "-q"] + flags)
    samples, _ = soundfile.read(str(out), dtype="float32", always_2d=True)
    return samples, generated["share_from_seed"]


def continuations(args, dirs, codec, path, seed_steps, next_steps, offset, folder):
    """{candidate: audio} for one held-out song, every candidate as long as the real next steps; and the seed's
    round trip (decoded with the real next steps), which shows whether the copy guard sees through the codec."""
    rng = np.random.default_rng(args.random_seed)
    _, _, decoded = decode_seed_and_next(*codec, seed_steps, next_steps)
    seed_frames, frames = IN_STEPS * audio.STEP_FRAMES, len(next_steps) * audio.STEP_FRAMES
    made = {"real": audio.unframe_steps(next_steps), "round-trip": decoded[seed_frames:]}
    from_seed = {}  # candidate: share of its new steps that are the seed's own (the generator's figure)
    for candidate in args.candidates:
        if candidate in ("shuffled", "looped"):
            made[candidate] = seed_baseline(seed_steps, len(next_steps), candidate == "shuffled", rng)
        elif candidate == "looped-rt":
            made[candidate] = seed_baseline(audio.frame_steps(decoded[:seed_frames]), len(next_steps), False, rng)
        elif candidate not in made:
            samples, from_seed[candidate] = generate(args, dirs, path, offset, len(next_steps) * audio.STEP_SECONDS,
                                                     candidate, folder / f"{candidate}.wav")
            made[candidate] = samples[:frames]
    return made, decoded[:seed_frames], from_seed


def figures(samples, seed, bands, references, seed_vectors):
    """The listening figures and guards of one candidate excerpt against its seed (seed_vectors: the seed's
    step vectors as is and through the autoencoder)."""
    vectors = mf.step_vectors(samples, bands)
    per_second = metrics.loudness_per_second(samples)[2:] - audio.rms_db(seed)
    return {"tonalness": mf.tonalness(samples), "chroma_flux": mf.chroma_flux(samples), "pulse": mf.pulse(samples),
            "key": mf.key_agreement(samples, seed),
            "copy_seed_seconds": mf.longest_copy_seconds(vectors, seed_vectors),
            "copy_training_seconds": mf.longest_copy_seconds(vectors, references),
            "loop_seconds": mf.longest_self_repeat_seconds(vectors),
            "like_seed_end": mf.share_like_the_seed_end(vectors, seed_vectors[0]),
            "min_drift_db": float(per_second.min()), "max_drift_db": float(per_second.max()),
            "peak": float(np.abs(samples).max()), "finite": bool(np.isfinite(samples).all())}


def measure_songs(args, dirs, work, tests, codec, bands, references, subfolder="", whole_only=False):
    """Per held-out song: {candidate: figures}, {candidate: clip features}; and how much of the raw seed its own
    round trip repeats (what the copy guard would see of a copied seed without round-trip references). WAVs and
    pictures go to musicality/<song>/<subfolder>. whole_only: leave out the songs that have no seed and
    --seconds after it at --offset (not seeded at 0 s or continued for less instead)."""
    per_song, clips, seed_round_trip = {}, {}, {}
    for path in tests:
        chosen = seed_and_next(path, args.offset, args.seconds)
        if chosen is None or whole_only and (chosen[2] != args.offset
                                             or len(chosen[1]) * audio.STEP_SECONDS < args.seconds):
            continue
        seed_steps, next_steps, offset = chosen
        folder = work / "musicality" / path.stem / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        made, decoded_seed, from_seed = continuations(args, dirs, codec, path, seed_steps, next_steps, offset, folder)
        seed = audio.unframe_steps(seed_steps)
        seed_vectors = [mf.step_vectors(seed, bands), mf.step_vectors(decoded_seed, bands)]
        seed_round_trip[path.name] = mf.longest_copy_seconds(seed_vectors[1], seed_vectors[:1])
        per_song[path.name], clips[path.name] = {}, {}
        for candidate, samples in made.items():
            per_song[path.name][candidate] = dict(figures(samples, seed, bands, references, seed_vectors),
                                                  from_seed=from_seed.get(candidate),
                                                  seconds=len(samples) / audio.SAMPLE_RATE)
            clips[path.name][candidate] = mf.clip_features(samples)
            if candidate in ("real", "round-trip", "shuffled", "looped", "looped-rt"):  # the generator wrote the others
                audio.write_wav(folder / f"{candidate}.wav", samples)
            seconds = len(samples) / audio.SAMPLE_RATE
            plots.spectrogram_pair(samples, made["real"], (candidate, f"the real next {seconds:.0f} s"),
                                   folder / f"{candidate}.png", f"{path.stem}: {candidate} vs the real next")
    return per_song, clips, seed_round_trip


def summarise(per_song, clips, candidates):
    """Per candidate: means over songs, worst guards, copy stretches and their limits, classifier accuracies."""
    songs = list(per_song)
    rows = {}
    for candidate in candidates:
        figures_of = [per_song[song][candidate] for song in songs]
        row = {name: float(np.mean([f[name] for f in figures_of]))
               for name in ("tonalness", "chroma_flux", "pulse", "key")}
        row["copy_seconds"] = max(max(f["copy_seed_seconds"], f["copy_training_seconds"]) for f in figures_of)
        row["copy_ok"] = all(max(f["copy_seed_seconds"], f["copy_training_seconds"])
                             <= max(TARGETS["copy_seconds"], per_song[song]["real"]["copy_seed_seconds"])
                             for song, f in zip(songs, figures_of))
        row["loop_seconds"] = max(f["loop_seconds"] for f in figures_of)
        row["loop_ok"] = all(f["loop_seconds"] <= max(TARGETS["loop_seconds"], per_song[song]["real"]["loop_seconds"])
                             for song, f in zip(songs, figures_of))
        shares = [f["from_seed"] for f in figures_of if f.get("from_seed") is not None]
        row["from_seed"] = float(np.mean(shares)) if shares else None
        row["min_drift_db"] = min(f["min_drift_db"] for f in figures_of)
        row["max_drift_db"] = max(f["max_drift_db"] for f in figures_of)
        row["peak"] = max(f["peak"] for f in figures_of)
        row["finite"] = all(f["finite"] for f in figures_of)
        # Pulse song by song, against the round trip of the same song's real next minute, on songs with a beat.
        ratios = {song: per_song[song][candidate]["pulse"] / max(per_song[song]["round-trip"]["pulse"], 1e-9)
                  for song in songs if per_song[song]["real"]["pulse"] >= TARGETS["clear_pulse"]}
        row["song_pulse"] = ratios
        # The same against what the seed's own steps hold through the codec: a seed without a beat (an intro)
        # cannot be continued into the real next minute's.
        if "looped-rt" in per_song[songs[0]]:
            row["song_pulse_vs_seed"] = {
                song: per_song[song][candidate]["pulse"] / max(per_song[song]["looped-rt"]["pulse"], 1e-9)
                for song in ratios}
        row["song_pulse_ok"] = all(ratio >= TARGETS["song_pulse"] for ratio in ratios.values())
        for reference in ("real", "round-trip"):
            if reference != candidate:
                row[f"classifier_vs_{reference}"] = mf.classifier_accuracy(
                    *clip_sample(clips, songs, candidate), *clip_sample(clips, songs, reference))
        rows[candidate] = row
    return rows


def clip_sample(clips, songs, candidate):
    features = [clips[song][candidate] for song in songs]
    return np.concatenate(features), np.concatenate([[song] * len(f) for song, f in zip(songs, features)])


def passes(row, ceiling):
    """{target: True/False} of one row against the round trip's figures."""
    low, high = TARGETS["chroma_flux"]
    flux = row["chroma_flux"] / ceiling["chroma_flux"]
    return {"classifier": row.get("classifier_vs_round-trip", 0.5) <= TARGETS["classifier"],  # RT vs itself: 0.5
            "tonal": row["tonalness"] >= TARGETS["tonalness"] * ceiling["tonalness"],
            "flux": low <= flux <= high, "pulse": row["pulse"] >= TARGETS["pulse"] * ceiling["pulse"],
            "song pulse": row["song_pulse_ok"],
            "key": row["key"] >= TARGETS["key"], "copy": row["copy_ok"], "loop": row["loop_ok"],
            "guards": (row["finite"] and row["peak"] <= TARGETS["peak"]
                       and -TARGETS["drift_db"] <= row["min_drift_db"] and row["max_drift_db"] <= TARGETS["drift_db"])}


def cell(value, ceiling=None):
    if value is None:
        return "-"
    return f"{value:.3f}" + ("" if ceiling is None else f" ({value / ceiling:.2f}x)")


def share(value):
    return "-" if value is None else f"{value:.0%}"


def table(header, rows, per_song):
    ceiling = rows["round-trip"]
    lines = [header, "",
             "| candidate | tonalness (x RT) | chroma flux (x RT) | pulse (x RT) | key agreement | classifier vs real "
             "| classifier vs RT | copy stretch s | loop stretch s | new steps from the seed "
             "| loudness vs seed min / max dB | peak | classifier | tonal | flux | pulse | song pulse | key | copy "
             "| loop | guards |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for candidate, row in rows.items():
        checks = passes(row, ceiling)
        verdicts = " | ".join("pass" if checks[name] else "FAIL" for name in checks)
        lines.append(
            f"| {candidate} | {cell(row['tonalness'], ceiling['tonalness'])} | "
            f"{cell(row['chroma_flux'], ceiling['chroma_flux'])} | {cell(row['pulse'], ceiling['pulse'])} | "
            f"{cell(row['key'])} | {cell(row.get('classifier_vs_real'))} | {cell(row.get('classifier_vs_round-trip'))} "
            f"| {row['copy_seconds']:.2f} | {row['loop_seconds']:.2f} | {share(row.get('from_seed'))} "
            f"| {row['min_drift_db']:+.1f} / {row['max_drift_db']:+.1f} | "
            f"{row['peak']:.3f} | {verdicts} |")
    lines.append("")
    lines.append("Targets (RT = the real next through the autoencoder): classifier vs RT <= 0.75; tonalness >= 0.75x "
                 "RT; chroma flux 0.6-1.4x RT; pulse >= 0.75x RT, and >= 0.6x on every song whose real pulse is "
                 ">= 0.4 (song pulse); key agreement >= 0.85; copy stretch (vs the seed or any training song) <= 3 s "
                 "or the real next's own stretch vs its seed; loop stretch (vs its own steps 4 s back and more) <= 3 s "
                 "or the real next's own; guards: every second after the first 2 within +/-3 dB of the seed, finite, "
                 "peak <= 1.")
    return "\n".join(lines + [""] + song_pulse_table(per_song, rows) + [""] + seed_end_table(per_song, rows)
                     + [""] + model_part(rows))


def song_pulse_table(per_song, rows):
    """Pulse of every candidate on every held-out song, as a multiple of the song's round trip's."""
    names = list(rows)
    lines = ["Pulse per held-out song (x RT; how long the real next is, shorter than --seconds where the song ends "
             "first, and its own pulse; * = a song with a beat, real "
             f"pulse >= {TARGETS['clear_pulse']}):", "",
             "| song | real next | real pulse | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for song, figures_of in per_song.items():
        ceiling = max(figures_of["round-trip"]["pulse"], 1e-9)
        clear = "*" if figures_of["real"]["pulse"] >= TARGETS["clear_pulse"] else ""
        length = figures_of["real"].get("seconds")
        lines.append(f"| {Path(song).stem}{clear} | {'-' if length is None else f'{length:.0f} s'} | "
                     f"{figures_of['real']['pulse']:.3f} | "
                     + " | ".join(f"{figures_of[name]['pulse'] / ceiling:.2f}x" for name in names) + " |")
    worst = {name: min(row["song_pulse"].items(), key=lambda item: item[1], default=None) for name, row in rows.items()}
    lines.append("")
    lines.append("Worst song with a beat: " + "; ".join(f"{name} {Path(song).stem} {ratio:.2f}x"
                                                         for name, found in worst.items() if found
                                                         for song, ratio in [found]))
    excess = [f"{name} {Path(song).stem} {figures_of[name]['pulse'] / max(figures_of['real']['pulse'], 1e-9):.2f}x"
              for song, figures_of in per_song.items() for name in names
              if name != "real" and figures_of[name]["pulse"] > EXCESS_PULSE * figures_of["real"]["pulse"]]
    lines.append("")
    lines.append(f"More than {EXCESS_PULSE:g}x the real next's pulse (a rhythm the song does not have, which raises "
                 "the rows' mean pulse): " + ("; ".join(excess) or "none"))
    if "looped-rt" in names:
        versus_seed = {name: min(row["song_pulse_vs_seed"].items(), key=lambda item: item[1], default=None)
                       for name, row in rows.items() if name != "looped-rt"}
        lines.append("")
        lines.append("Worst song with a beat against the seed's own steps (x looped-rt, the seed's round trip looped): "
                     + "; ".join(f"{name} {Path(song).stem} {ratio:.2f}x" for name, found in versus_seed.items()
                                 if found for song, ratio in [found]))
    return lines


def model_part(rows, seeds=1, places=1):
    """Does each score model's row beat the model switched off and the same model untrained? (pulse higher by at
    least TARGETS['model_pulse'] x RT on the songs with a beat, paired song by song and run by run, or by the rows'
    means where no song has a beat; or the classifier vs RT lower by at least TARGETS['model_classifier'];
    rows: figures of one random seed of generation, or their means over `seeds` random seeds at each of
    `places` seed places)"""
    ceiling = rows["round-trip"]["pulse"]
    over = [f"{seeds} random seeds of generation"] * (seeds > 1) + [f"{places} seed places per song"] * (places > 1)
    lines = ["The score models' part (pulse x RT / classifier vs RT; beats = pulse +0.10x on the songs with a beat, "
             "or classifier -0.05" + (f"; means over {' x '.join(over)}" if over else "") + "):"]
    pairs = [(model, other) for model in ("conv1d", "lstm") for other in ("sound-only", f"{model}-untrained")]
    pairs += [(f"{model}-own", "sound-only-own") for model in ("conv1d", "lstm")]  # among the seed's steps alone
    pairs += [(f"{model}-t0", "sound-only-t0") for model in ("conv1d", "lstm")]  # greedy: no sampling to blur it
    for model, other in pairs:
        if model in rows and other in rows:
            mine, theirs = rows[model], rows[other]
            pulse_gain = (mine["pulse"] - theirs["pulse"]) / ceiling
            differences = song_pulse_differences(mine, theirs)
            judged_gain = float(np.mean(differences)) if differences else pulse_gain
            classifier_gain = theirs["classifier_vs_round-trip"] - mine["classifier_vs_round-trip"]
            # Accuracies are fractions of clips (0.6 - 0.55 is 0.0499... in floats): a margin as shown counts.
            beats = (judged_gain >= TARGETS["model_pulse"] - 1e-9
                     or classifier_gain >= TARGETS["model_classifier"] - 1e-9)
            lines.append(f"- {model} vs {other}: pulse {mine['pulse'] / ceiling:.2f}x vs "
                         f"{theirs['pulse'] / ceiling:.2f}x "
                         f"({pulse_gain:+.2f}x), classifier {mine['classifier_vs_round-trip']:.2f} vs "
                         f"{theirs['classifier_vs_round-trip']:.2f} "
                         f"({mine['classifier_vs_round-trip'] - theirs['classifier_vs_round-trip']:+.2f}): "
                         f"{'beats it' if beats else 'DOES NOT beat it'}{paired_pulse(differences)}")
    return lines


def song_pulse_differences(mine, theirs):
    """[the first row's pulse ratio minus the second's] song by song (songs with a beat in both) and run by run
    (rows from mean_rows)."""
    mine, theirs = runs_of_song_pulse(mine), runs_of_song_pulse(theirs)
    return [a - b for song in sorted(set(mine) & set(theirs)) for a, b in zip(mine[song], theirs[song])]


def paired_pulse(differences):
    """'; per song with a beat and seed: +0.06x +/- 0.08 (12 pairs)': the mean of two rows' pulse ratios'
    differences (song_pulse_differences), with twice its standard error, and 'within seed noise' where that spans
    0. One seed of generation moves a song's pulse by up to 0.3x, so a mean over 4 songs can move 0.1x by chance;
    '' where the rows have no songs with a beat in common."""
    if not differences:
        return ""
    mean = float(np.mean(differences))
    spread = 2 * float(np.std(differences, ddof=1)) / np.sqrt(len(differences)) if len(differences) > 1 else np.inf
    noise = ", within seed noise" if abs(mean) < spread else ""
    return f"; per song with a beat and seed: {mean:+.2f}x +/- {spread:.2f} ({len(differences)} pairs{noise})"


def song_pulse_means(means, runs):
    """Lines of a table: each song with a beat, its pulse (x RT) averaged over its runs in each row of mean_rows'
    means (the rows with songs), and the worst song of each row: one seed's table can rank songs differently."""
    pulse = {name: {song: float(np.mean(ratios)) for song, ratios in row["song_pulse_seeds"].items() if ratios}
             for name, row in means.items() if "song_pulse_seeds" in row}
    songs = list(dict.fromkeys(song for of_song in pulse.values() for song in of_song))
    if not songs:
        return []
    lines = [f"Pulse per song with a beat (x RT), mean over its runs ({runs} in all):", "",
             "| song | " + " | ".join(pulse) + " |", "|---|" + "---|" * len(pulse)]
    for song in songs:
        lines.append(f"| {Path(song).stem} | " + " | ".join(
            f"{of_song[song]:.2f}x" if song in of_song else "-" for of_song in pulse.values()) + " |")
    worst = [(name, *min((value, song) for song, value in of_song.items())) for name, of_song in pulse.items()
             if of_song]
    lines += ["", "Worst song with a beat, mean over runs: "
              + "; ".join(f"{name} {Path(song).stem} {value:.2f}x" for name, value, song in worst)]
    return lines


def runs_of_song_pulse(row):
    """{song: [its pulse ratio in each run]} of a row: mean_rows' song_pulse_seeds, or one run's song_pulse."""
    if "song_pulse_seeds" in row:
        return row["song_pulse_seeds"]
    return {song: [ratio] for song, ratio in row.get("song_pulse", {}).items()}


def seed_end_table(per_song, rows):
    """Where every candidate goes on from, song by song: the share of its steps that sound most like the seed's
    last 2.5 s (music_features.share_like_the_seed_end), beside the real next minute's."""
    names = ["real", *[name for name in rows if name != "real"]]
    lines = ["Where it goes on from, per held-out song (the share of steps that sound most like the seed's last "
             f"{mf.SEED_END_STEPS * audio.STEP_SECONDS:g} s; every part of the seed alike: "
             f"{mf.SEED_END_STEPS / IN_STEPS:.2f}):", "",
             "| song | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for song, figures_of in per_song.items():
        shares = [figures_of.get(name, {}).get("like_seed_end") for name in names]
        lines.append(f"| {Path(song).stem} | "
                     + " | ".join("-" if value is None else f"{value:.2f}" for value in shares) + " |")
    return lines


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(argparse.Namespace(verbose=False, quiet=True))
    started = time.perf_counter()
    work, dirs, training, tests, train_seconds, models = trained_pipeline(args)
    built = time.perf_counter()
    from common.models import load_codec

    encoder, decoder, _ = load_codec(work / "models")
    bands, references = training_references(work, decoder)
    per_song, clips, seed_round_trip = measure_songs(args, dirs, work, tests, (encoder, decoder), bands, references)
    rows = summarise(per_song, clips, args.candidates)
    autoencoder = json.loads(paths.model_record_path(work / "models", "autoencoder").read_text())
    index = datasets.steps_index(paths.steps_dir(work / "data"))
    validation = sum(s["num_steps"] for s in datasets.songs_in_split(index, "validation")) * audio.STEP_SECONDS
    sizes = (f"conv1d --filters {models['conv1d']['args']['filters']} ({models['conv1d']['epochs_run']} epochs), "
             f"lstm --units {models['lstm']['args']['units']} ({models['lstm']['epochs_run']} epochs), "
             f"at most {models['lstm']['args']['epochs']} epochs, patience {models['lstm']['args']['patience']}")
    header = (f"### Musicality: {args.music_dir}\n\n"
              f"{len(training)} training songs ({train_seconds / 60:.1f} min, {validation / 60:.1f} min of it for "
              f"the pipeline's validation); {len(per_song)} held-out songs ({', '.join(per_song)}), a 10-s seed at "
              f"{args.offset:g} s (0 where too short), {args.seconds:g} s continuations; autoencoder --arch "
              f"{autoencoder['arch']} --latent-dim {autoencoder['latent_dim']}; {sizes}; random seed "
              f"{args.random_seed}; pipeline {('reused' if args.reuse else f'{(built - started) / 60:.1f} min')}, "
              f"measuring {(time.perf_counter() - built) / 60:.1f} min. The copy guard compares with "
              f"the seed and the training songs as they are and through the autoencoder: the seed's round trip "
              f"alone repeats {min(seed_round_trip.values()):.2f}-{max(seed_round_trip.values()):.2f} s of the "
              f"original seed's 10 s.")
    text = table(header, rows, per_song)
    runs = [(seed, offset) for offset in [args.offset, *args.more_offsets]
            for seed in range(args.random_seed, args.random_seed + args.seeds)][1:]
    seed_rows = [rows] + [more for seed, offset in runs
                          if (more := more_seed_rows(args, dirs, work, tests, (encoder, decoder), bands, references,
                                                     seed, offset)) is not None]
    if len(seed_rows) > 1:
        means = mean_rows(seed_rows)
        text += "\n\n" + "\n".join(model_part(means, args.seeds, 1 + len(args.more_offsets)))
        text += "\n\n" + "\n".join(song_pulse_means(means, len(seed_rows)))
    print(text, flush=True)
    save_table(work / "musicality", args, text, per_song=per_song, rows=rows,
               seed_round_trip_copy_seconds=seed_round_trip, seed_rows=seed_rows)
    return rows


MODEL_PART = ("conv1d", "lstm", "sound-only", "conv1d-untrained", "lstm-untrained", "conv1d-own", "lstm-own",
              "sound-only-own")


def more_seed_rows(args, dirs, work, tests, codec, bands, references, seed, offset=None):
    """summarise()'s rows of the score models' part (MODEL_PART, and real and round-trip) generated with another
    random seed, or from seeds at another offset (seconds; None: --offset), their WAVs in
    musicality/<song>/seed<seed> (another offset: seed<seed>-at<offset>s); None where no song has a seed and
    --seconds after it at that offset."""
    candidates = [name for name in args.candidates if name in ("real", "round-trip", *MODEL_PART)]
    offset = args.offset if offset is None else offset
    again = argparse.Namespace(**{**vars(args), "random_seed": seed, "candidates": candidates, "offset": offset})
    subfolder = f"seed{seed}" if offset == args.offset else f"seed{seed}-at{offset:g}s"
    per_song, clips, _ = measure_songs(again, dirs, work, tests, codec, bands, references, subfolder,
                                       whole_only=offset != args.offset)
    return summarise(per_song, clips, candidates) if per_song else None  # None: every song too short there


def mean_rows(seed_rows):
    """{candidate: {pulse, classifier_vs_round-trip}} means over the rows of several seeds (candidates in all), and
    song_pulse_seeds: {song: [its pulse ratio in each seed's row]} for the songs with a beat (paired_pulse)."""
    names = [name for name in seed_rows[0] if all(name in rows for rows in seed_rows)]
    means = {name: {figure: float(np.mean([rows[name][figure] for rows in seed_rows]))
                    for figure in ("pulse", "classifier_vs_round-trip") if figure in seed_rows[0][name]}
             for name in names}
    for name in names:  # a song has a beat, or a seed place, in some runs only: its list has those runs'
        if all("song_pulse" in rows[name] for rows in seed_rows):
            songs = dict.fromkeys(song for rows in seed_rows for song in rows[name]["song_pulse"])
            means[name]["song_pulse_seeds"] = {song: [rows[name]["song_pulse"][song] for rows in seed_rows
                                                      if song in rows[name]["song_pulse"]] for song in songs}
    return means


if __name__ == "__main__":
    main()
