"""Benchmark: do the score models beat the simple scorers, and do their long continuations stay music?

Runs the real pipeline (every step's main()) on a folder of songs, split by song, into a work folder, then:
  - how often each score model ranks the real next 5 steps of its validation songs first among 25 places of
    the same song, beside the simple scorers (the figure steps 5 and 6 print; bench/ranking.py measures it
    on every song not trained on, with three sets of distractors);
  - for every held-out song long enough, a --seconds continuation of its --offset seed by each model, and
    its loudness per second against the seed's (after the first 2 s), peak, NaN/Inf, how close new steps are
    to the seed's (0 = copies the seed), how much the peak limiter acted and how many joins it made;
  - a Frechet distance on log-mel frames (as in FAD) between the continuations and the real held-out songs,
    beside the same distance for the autoencoder's round trip of those songs, and for the real next
    --seconds after each seed through the autoencoder (what a perfect score model would give: it covers
    only part of each song, so it is further from the whole songs than the round trip is); with the sparse
    code, also for those with every peak's sign at random (a perfect model but for phase).
Each --temperature value (music_generator.py --temperature) gets its own rows; --samples continuations per
seed, each with its own random seed, are pooled into each row (worst case of loudness and peak, Frechet of all).
Prints one markdown table, with the data and training budget in its header.

Run from the repository root (about 10 minutes on 2 CPU cores with the sizes below; the score models'
default sizes, 512, take about twice as long per epoch and stop as early on this much data):
    python -m bench.continuation /tmp/realmusic --units 256 --filters 256 --score-epochs 6 --patience 2
    python -m bench.continuation /tmp/realmusic --arch dense --latent-dim 512 --ae-epochs 2 ...
    python -m bench.continuation /tmp/realmusic --work-dir /tmp/bench --reuse   # only generate again
    python -m bench.continuation /tmp/realmusic --work-dir /tmp/bench --reuse --temperature 0 1 --samples 3
"""
import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

import autoencode
import combine_encoded_test_data
import conv1d_creater
import create_encoded_data
import lstm_creater
import music_generator
from common import audio, cli, datasets, metrics, paths

MODELS = ("conv1d", "lstm")


def add_pipeline_arguments(parser):
    """The flags build_artifacts and train_score_models pass on to the pipeline's scripts."""
    parser.add_argument("--arch", default=None, help="autoencode.py --arch (default: autoencode.py's default)")
    parser.add_argument("--lapped", action=argparse.BooleanOptionalAction, default=None,
                        help="autoencode.py --lapped / --no-lapped (default: autoencode.py's, which depends on --arch)")
    parser.add_argument("--latent-dim", type=int, default=None,
                        help="autoencode.py --latent-dim (default: autoencode.py's default)")
    parser.add_argument("--ae-epochs", type=int, default=2, help="autoencoder epochs, if it trains (default 2)")
    parser.add_argument("--score-epochs", type=int, default=None,
                        help="epochs of each score model (default: the scripts' own)")
    parser.add_argument("--patience", type=int, default=None,
                        help="score models stop after this many epochs without a better validation loss "
                             "(default: the scripts' own)")
    parser.add_argument("--filters", type=int, default=None, help="conv1d_creater.py --filters (default: its own)")
    parser.add_argument("--units", type=int, default=None, help="lstm_creater.py --units (default: its own)")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("music_dir", type=Path, help="folder of real songs (any format the pipeline reads)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where data/ and models/ are made (default: a new temporary folder, removed after)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep what --work-dir already has (step dataset, autoencoder, scores, score models)")
    add_pipeline_arguments(parser)
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of each continuation (default 60)")
    parser.add_argument("--offset", type=float, default=20.0,
                        help="seconds into each held-out song where its first seed starts (0 for songs too short)")
    parser.add_argument("--seed-spacing", type=float, default=70.0,
                        help="seconds from one seed to the next in the same song, while a whole seed and "
                             "continuation fit (default 70: back to back, so the continuations' real "
                             "counterparts cover the songs; 0: one seed per song)")
    parser.add_argument("--temperature", nargs="+", type=float, default=[1.0],
                        help="music_generator.py --temperature values to compare (default: 1)")
    parser.add_argument("--samples", type=int, default=1,
                        help="continuations per held-out seed, each with its own random seed (--random-seed, "
                             "+1, ...), pooled: the Frechet distance of one sample per seed moves by ~0.1x "
                             "between random seeds (default 1)")
    parser.add_argument("--random-seed", type=int, default=0, help="seed of training and generation (default 0)")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if args.seed_spacing < 0:
        parser.error("--seed-spacing must be at least 0")
    return args


def link_songs(music_dir, input_dir):
    """Symlink every audio file of music_dir into the work folder's data/input/; returns their paths."""
    songs, _ = audio.list_audio_files(music_dir)
    input_dir.mkdir(parents=True, exist_ok=True)
    for song in songs:
        link = input_dir / song.relative_to(music_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(song.resolve())
    return songs


def autoencoder_arguments(args):
    """autoencode.py flags: the benchmark's budget, and --arch / --latent-dim / --lapped only where given."""
    chosen = [("--arch", args.arch), ("--latent-dim", args.latent_dim)]
    return [text for flag, value in chosen if value is not None for text in (flag, str(value))] + (
        [] if args.lapped is None else ["--lapped" if args.lapped else "--no-lapped"]) + [
        "--epochs", str(args.ae_epochs), "--preview-seconds", "0", "--random-seed", str(args.random_seed)]


def build_artifacts(args, dirs):
    """Steps 1, 2, 4: step dataset, autoencoder, scores. Returns the seconds each took."""
    seconds = {}
    for name, step, extra in (
            ("steps", combine_encoded_test_data, []),
            ("autoencoder", autoencode, autoencoder_arguments(args)),
            ("scores", create_encoded_data, [])):
        start = time.perf_counter()
        step.main(dirs + extra + ["-q"])
        seconds[name] = time.perf_counter() - start
    return seconds


def score_model_flags(args):
    """{model: its script and the flags the benchmark passes it}: sizes and budget only where given."""
    def given(*pairs):
        return [text for flag, value in pairs if value is not None for text in (flag, str(value))]

    budget = given(("--epochs", args.score_epochs), ("--patience", args.patience),
                   ("--random-seed", args.random_seed))
    return {"conv1d": (conv1d_creater, given(("--filters", args.filters)) + budget),
            "lstm": (lstm_creater, given(("--units", args.units)) + budget)}


def untrained_models_dir(work):
    """Where the untrained score models live: beside links to the trained autoencoder's files."""
    return work / "untrained" / "models"


def train_score_models(args, dirs, work):
    """Steps 5 and 6 (or, with --reuse, the models already there): each model's record, with training seconds.
    Also each model untrained (--epochs 0), in untrained_models_dir(work), for the benchmarks' comparison."""
    results = {}
    untrained = untrained_models_dir(work)
    untrained.mkdir(parents=True, exist_ok=True)
    for name in ("autoencoder.keras", "encoder.keras", "decoder.keras", "autoencoder.json"):
        link = untrained / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(work / "models" / name)
    for name, (script, flags) in score_model_flags(args).items():
        record_path = paths.model_record_path(work / "models", name)
        seconds = float("nan")
        if not (args.reuse and record_path.is_file()):
            start = time.perf_counter()
            script.main(dirs + flags + ["-q"])
            seconds = time.perf_counter() - start
        if not (args.reuse and paths.model_record_path(untrained, name).is_file()):
            without_epochs = [flag for i, flag in enumerate(flags) if flag != "--epochs" and flags[i - 1] != "--epochs"]
            script.main(dirs[:2] + ["--models-dir", str(untrained)] + without_epochs + ["--epochs", "0", "-q"])
        results[name] = {**json.loads(record_path.read_text()), "seconds": seconds}
    return results


def held_out_songs(data_dir):
    """(index entry, steps) of every validation song of the step dataset, one at a time."""
    folder = paths.steps_dir(data_dir)
    index = datasets.steps_index(folder)
    for song in datasets.songs_in_split(index, "validation"):
        yield song, datasets.load_song_steps(folder, song)


def reference_frames(data_dir, models_dir):
    """Log-mel frames of the real held-out songs and of their autoencoder round trip, and the songs' lengths."""
    from common.models import decode, encode, load_codec

    encoder, decoder, _ = load_codec(models_dir)
    real, round_trip, lengths = [], [], {}
    for song, steps in held_out_songs(data_dir):
        real.append(metrics.log_mel_frames(audio.unframe_steps(steps)))
        round_trip.append(metrics.log_mel_frames(np.clip(decode(decoder, encode(encoder, steps)), -1, 1)))
        lengths[song["song"]] = len(steps) * audio.STEP_SECONDS
    return np.concatenate(real), np.concatenate(round_trip), lengths


def true_continuations(args, data_dir, models_dir, random_signs=False):
    """What a perfect score model would give: each seed's real next --seconds, through the autoencoder.

    Measured like a generated continuation (seed and continuation decoded together, then the limiter).
    random_signs (sparse codes): every peak value of the next --seconds gets a random sign, as from a model
    perfect in everything but phase. A peak's sign is the phase of its frequency at that step, which the score
    models' Gaussians leave to chance (their means for peak values are near 0).
    """
    from common.models import load_codec

    encoder, decoder, _ = load_codec(models_dir)
    signs = np.random.default_rng(args.random_seed) if random_signs else None
    figures, frames, in_steps = [], [], 40
    for song, steps in held_out_songs(data_dir):
        for offset in seed_offsets(len(steps) * audio.STEP_SECONDS, args):
            figures_and_frames = true_continuation(args, encoder, decoder, steps, offset, in_steps, signs)
            if figures_and_frames is not None:
                figures.append(figures_and_frames[0])
                frames.append(figures_and_frames[1])
    return figures, np.concatenate(frames)


def true_continuation(args, encoder, decoder, steps, offset, in_steps, signs=None):
    """The figures and log-mel frames of one seed's real next --seconds through the autoencoder (None if under
    3 s are left after the seed); signs: a numpy Generator that gives the sparse code's peak values of the next
    --seconds random signs."""
    first = int(round(offset / audio.STEP_SECONDS))
    seed_steps = steps[first:first + in_steps]
    next_steps = steps[first + in_steps:first + in_steps + int(np.ceil(args.seconds / audio.STEP_SECONDS))]
    if len(next_steps) < 12:  # under 3 s: no seconds left to measure after the first 2
        return None
    scores, unlimited, decoded = decode_seed_and_next(encoder, decoder, seed_steps, next_steps, signs)
    seed_frames = in_steps * audio.STEP_FRAMES
    song_figures = music_generator.continuation_figures(audio.unframe_steps(seed_steps), decoded[seed_frames:],
                                                        scores[:in_steps], scores[in_steps:],
                                                        decoded[:seed_frames])
    song_figures["limiter_max_reduction_db"] = music_generator.limiter_reduction_db(unlimited[seed_frames:],
                                                                                    decoded[seed_frames:])
    return song_figures, metrics.log_mel_frames(decoded[seed_frames:])


def decode_seed_and_next(encoder, decoder, seed_steps, next_steps, signs=None):
    """A seed and its real next steps through the autoencoder together, as a continuation is decoded:
    (scores, decoded audio before the peak limiter, after it). signs: see true_continuation."""
    from common.codec import sparse_format
    from common.models import decode, encode

    scores = encode(encoder, np.concatenate([seed_steps, next_steps]))
    if signs is not None:
        peaks, _ = sparse_format(decoder).layout(scores.shape[1])
        scores[len(seed_steps):, peaks:2 * peaks] *= signs.choice(np.float32([-1, 1]), size=(len(next_steps), peaks))
    unlimited = decode(decoder, scores)
    return scores, unlimited, audio.limit_peaks(unlimited)


def seed_offsets(length_seconds, args, in_seconds=10.0):
    """Where a song's seeds start: --offset if the song is long enough for a whole seed after it (else 0; none
    if it is too short for any), then every --seed-spacing seconds while a seed and its whole continuation fit.

    One seed per song, the real next --seconds cover only part of each song, and their log-mel statistics are
    further from the whole songs' than the round trip is: on 7 held-out songs a perfect score model measured
    1.58x the sparse code's round trip, over the 1.5x target. Seeds back to back cover the songs.
    """
    if length_seconds < in_seconds:
        return []
    offsets = [args.offset if length_seconds >= args.offset + in_seconds else 0.0]
    while args.seed_spacing > 0 and offsets[-1] + args.seed_spacing + in_seconds + args.seconds <= length_seconds:
        offsets.append(offsets[-1] + args.seed_spacing)
    return offsets


def continue_held_out_songs(args, dirs, work, lengths, model, temperature):
    """--samples continuations of every held-out song by one model; their figures and their log-mel frames."""
    figures, frames = [], []
    for song, length in lengths.items():
        for offset, sample in itertools.product(seed_offsets(length, args), range(args.samples)):
            out = work / "continuations" / (f"{Path(song).stem}_{offset:g}s_{model}_temperature{temperature:g}_"
                                            f"{sample}.wav")
            figures.append(music_generator.main(dirs + [
                "--seed-file", str(paths.input_dir(work / "data") / song), "--offset", str(offset),
                "--seconds", str(args.seconds), "--model", model, "--temperature", str(temperature),
                "--random-seed", str(args.random_seed + sample), "--continuation-only", "--out", str(out), "-q"]))
            audio_samples, _ = soundfile.read(str(out), dtype="float32")
            frames.append(metrics.log_mel_frames(audio_samples))
    return figures, np.concatenate(frames)


def summarise_continuations(figures):
    """Worst case over the seeds for loudness and peak, median for the seed-copy figure."""
    return {
        "min_drift_db": min(f["min_drift_db"] for f in figures),
        "max_drift_db": max(f["max_drift_db"] for f in figures),
        "min_drift_decoded_db": min(f["min_drift_decoded_db"] for f in figures),
        "max_drift_decoded_db": max(f["max_drift_decoded_db"] for f in figures),
        "peak": max(f["peak"] for f in figures), "finite": all(f["finite"] for f in figures),
        "seed_copy": float(np.median([f["seed_copy_median"] for f in figures])),
        "limiter_db": max(f["limiter_max_reduction_db"] for f in figures), "continuations": len(figures),
        "joins": float(np.mean([f.get("joins") or 0 for f in figures])),
    }


def continuation_cells(summary, fd, round_trip_fd):
    return (f"{summary['min_drift_db']:+.1f} / {summary['max_drift_db']:+.1f} | "
            f"{summary['min_drift_decoded_db']:+.1f} / {summary['max_drift_decoded_db']:+.1f} | "
            f"{summary['peak']:.3f} | "
            f"{'yes' if summary['finite'] else 'NO'} | {summary['seed_copy']:.2f} | {summary['limiter_db']:.1f} | "
            f"{summary['joins']:.0f} | {fd:.0f} ({fd / round_trip_fd:.2f}x round trip) |")


def table(args, data, budget, models, continuations, round_trip_fd, truth, signless=None):
    rows = ["| what | validation top-1, same song | loudness vs seed, per s (min / max dB) | vs the seed as decoded "
            "| peak | finite | seed copy (median) | limiter (max dB) | joins (mean) | Frechet vs real held-out |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    simple = models["lstm"].get("validation_ranking", {})
    for name, figures in simple.items():
        if name != "model":
            rows.append(f"| {name} (a simple scorer) | {figures['top1']:.2f} | | | | | | | | |")
    rows.append(f"| autoencoder round trip of the held-out songs | | | | | | | | | {round_trip_fd:.0f} (1.00x) |")
    rows.append(f"| the real next {args.seconds:g} s, through the autoencoder (a perfect score model) | | "
                f"{continuation_cells(*truth, round_trip_fd)}")
    if signless is not None:
        rows.append(f"| the same with every peak's sign at random (a score model perfect but for phase) | | "
                    f"{continuation_cells(*signless, round_trip_fd)}")
    for (model, temperature), (summary, fd) in continuations.items():
        top1 = models[model].get("validation_ranking", {}).get("model", {}).get("top1", float("nan"))
        rows.append(f"| {model}, continuations (--temperature {temperature:g}) | {top1:.2f} | "
                    f"{continuation_cells(summary, fd, round_trip_fd)}")
    sizes = {"conv1d": f"--filters {models['conv1d']['args']['filters']}",
             "lstm": f"--units {models['lstm']['args']['units']}"}
    trained = "; ".join(f"{name} {sizes[name]}: {models[name]['epochs_run']} of at most "
                        f"{models[name]['args']['epochs']} epochs ({budget[name]})" for name in MODELS)
    autoencoder = budget["autoencoder_record"]
    flags = f"--arch {autoencoder['arch']} --latent-dim {autoencoder['latent_dim']}"
    flags += " --lapped" if autoencoder.get("lapped") else " --no-lapped"
    header = (f"### Continuations: {data}\n\n"
              f"Budget: autoencoder `{flags}`, "
              f"{autoencoder['epochs_run']} epochs ({budget['autoencoder']}; validation SNR "
              f"{autoencoder['validation']['snr_db']:.1f} dB); score models (early stopping on validation): {trained}. "
              f"{args.seconds:g} s continuations: {budget['continuations']} "
              f"per row ({args.samples} per held-out seed; {budget['seeds']} seeds, 10 s from {args.offset:g} s in "
              f"{seeding(args)}); random seed "
              f"{args.random_seed}.\n")
    return header + "\n" + "\n".join(rows)


def seeding(args):
    return (f"and every {args.seed_spacing:g} s after it while a seed and its continuation fit"
            if args.seed_spacing else "each song")


def minutes(seconds):
    return "reused from --work-dir" if np.isnan(seconds) else f"{seconds / 60:.1f} min"


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(argparse.Namespace(verbose=False, quiet=True))  # warnings only; TensorFlow's start-up hidden
    with tempfile.TemporaryDirectory(prefix="continuation-bench-") as temporary:
        work = (args.work_dir or Path(temporary)).resolve()
        dirs = ["--data-dir", str(work / "data"), "--models-dir", str(work / "models")]
        songs = link_songs(args.music_dir, paths.input_dir(work / "data"))
        stage_seconds = {"autoencoder": float("nan")}
        if not (args.reuse and paths.model_record_path(work / "models", "autoencoder").is_file()):
            stage_seconds = build_artifacts(args, dirs)
        models = train_score_models(args, dirs, work)
        real, round_trip, lengths = reference_frames(work / "data", work / "models")
        round_trip_fd = metrics.frechet_distance(round_trip, real)
        truth_figures, truth_frames = true_continuations(args, work / "data", work / "models")
        truth = (summarise_continuations(truth_figures), metrics.frechet_distance(truth_frames, real))
        autoencoder = json.loads(paths.model_record_path(work / "models", "autoencoder").read_text())
        signless = None
        if autoencoder.get("arch") == "sparse":
            figures, frames = true_continuations(args, work / "data", work / "models", random_signs=True)
            signless = (summarise_continuations(figures), metrics.frechet_distance(frames, real))
        continuations = {}
        for model in MODELS:
            for temperature in args.temperature:
                figures, frames = continue_held_out_songs(args, dirs, work, lengths, model, temperature)
                continuations[(model, temperature)] = (summarise_continuations(figures),
                                                       metrics.frechet_distance(frames, real))
        index = datasets.steps_index(paths.steps_dir(work / "data"))
        train_minutes = sum(s["num_steps"] for s in datasets.songs_in_split(index, "train")) * audio.STEP_SECONDS / 60
        data = (f"{args.music_dir} ({len(songs)} files; {len(datasets.songs_in_split(index, 'train'))} training "
                f"songs, {train_minutes:.0f} min; {len(lengths)} held-out songs, "
                f"{sum(lengths.values()) / 60:.0f} min, split by song)")
        budget = {"autoencoder": minutes(stage_seconds["autoencoder"]),
                  "autoencoder_record": autoencoder,
                  **{name: minutes(models[name]["seconds"]) for name in MODELS},
                  "continuations": next(iter(continuations.values()))[0]["continuations"],
                  "seeds": sum(len(seed_offsets(length, args)) for length in lengths.values())}
        print(table(args, data, budget, models, continuations, round_trip_fd, truth, signless), flush=True)
    return models, continuations, round_trip_fd


if __name__ == "__main__":
    main()
