"""Benchmark: do the score models know what comes next? (the "what comes next" test, issue 26)

Splits a folder of real songs by song as bench/musicality.py does (the same training songs, so both can share
a --work-dir), runs the pipeline on the training songs, and ranks, from windows of 40 steps (10 s) of every
other song (--stride apart), the song's real next 5 steps (1.25 s) against --distractors other places:
  same song   other places of the same song, each at least 2 s from the real next steps
  joins       the nearest joins the generator would consider by sound alone (common/step_choice.py: context,
              seam, closeness to the window as its seed, beat), from the window and the training songs
  random      places of the training songs at random
by each score model (its Gaussian's likelihood), by the same models untrained (--epochs 0: the look-back
expert alone), and by the four simple scorers of common/ranking.py (last step, mean step, continuity,
history). A fifth row, "seam", ranks by how closely each candidate's first 23 ms carry on the window's last
(the join cost the generator adds): it is a cue of this test more than of music, since the real next steps
are cut from the same recording as the window; it is shown, not a target. Prints top-1, top-5 and mean
reciprocal rank per set, each song's same-song top-1 and the worst song's.

Target (issue 26): each score model's top-1 at least the best of the four simple scorers on the same-song and
the nearest-joins sets, on each kind of music.

Reads   MUSIC_DIR (any format the pipeline reads)
Writes  WORK/data, WORK/models (the pipeline's), WORK/untrained/models (the untrained score models),
        WORK/ranking/songs.npz (the test songs' scores and features), WORK/ranking/results.json and table.md

Run from the repository root (~5 min with training on 2 CPU cores; ~2 min with --reuse):
    python -m bench.ranking /tmp/music/orchestral --work-dir /tmp/mus/orchestral
    python -m bench.ranking /tmp/music/orchestral --work-dir /tmp/mus/orchestral --reuse
"""
import argparse
import time
from pathlib import Path

import numpy as np

from bench.continuation import add_pipeline_arguments, untrained_models_dir
from bench.musicality import save_table, trained_pipeline
from common import audio, cli, datasets, paths, ranking, step_features
from common.step_choice import StepChoice

IN_STEPS, OUT_STEPS = 40, 5
SETS = ("same song", "joins", "random")
BASELINE_NAMES = tuple(ranking.BASELINES)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("music_dir", type=Path, help="folder of real songs (searched recursively)")
    parser.add_argument("--work-dir", type=Path, required=True, help="where data/, models/ and ranking/ are made")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the pipeline's artifacts and models --work-dir has; only rank again")
    parser.add_argument("--held-out", type=int, default=4,
                        help="songs bench/musicality.py holds out (the split is shared with it; default 4)")
    parser.add_argument("--train-minutes", type=float, default=20.0,
                        help="minutes of training music, whole songs (default 20)")
    parser.add_argument("--stride", type=int, default=8, help="steps between windows of a test song (default 8: 2 s)")
    parser.add_argument("--distractors", type=int, default=ranking.DISTRACTORS,
                        help=f"other places each real next is ranked against (default {ranking.DISTRACTORS})")
    parser.add_argument("--random-seed", type=int, default=0, help="seed of training and of the distractors")
    add_pipeline_arguments(parser)
    return parser.parse_args(argv)


def test_songs(music_dir, training, work, encoder, fingerprint):
    """{name: (score, features, seams)} of every song of music_dir not trained on, encoded once and cached."""
    from common.models import encode

    cache = work / "ranking" / "songs.npz"
    parts = ("score", "features", "seams")
    if cache.is_file():
        arrays = np.load(cache, allow_pickle=False)
        if str(arrays["fingerprint"]) == fingerprint and int(arrays["features_version"]) == step_features.VERSION:
            return {str(name): tuple(arrays[f"{part}{i}"] for part in parts) for i, name in enumerate(arrays["names"])}
    files, _ = audio.list_audio_files(music_dir)
    trained = {path.resolve() for path in training}
    songs = {}
    for path in files:
        if path.resolve() not in trained:
            steps = audio.frame_steps(audio.load_audio(path))
            songs[path.name] = (encode(encoder, steps), step_features.step_features(steps),
                                step_features.seam_spectra(steps))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, fingerprint=fingerprint, features_version=step_features.VERSION, names=np.array(list(songs)),
             **{f"{part}{i}": arrays[number] for i, arrays in enumerate(songs.values())
                for number, part in enumerate(parts)})
    return songs


def build_queries(songs, pool, stride, distractors, rng):
    """{set: (ranking.Queries, the song of each query)} for windows every stride steps of each test song."""
    scale, variance = np.std(pool.features, axis=0), pool.scores.var(axis=0) + 1e-6
    random_starts = np.flatnonzero(whole_places(pool.sources, OUT_STEPS))
    parts = {name: [] for name in SETS}
    for name, (score, features, seams) in songs.items():
        for start in range(IN_STEPS, len(score) - OUT_STEPS + 1, stride):
            same = ranking.same_song_starts(len(score), start, distractors, OUT_STEPS, rng)
            if len(same) < distractors:
                continue
            window = np.arange(start - IN_STEPS, start)
            real = (score[start:start + OUT_STEPS], features[start:start + OUT_STEPS], seams[start])
            places = {"same song": places_of(score, features, seams, same),
                      "joins": nearest_joins(score[window], features[window], seams[window], pool, distractors),
                      "random": places_of(pool.scores, pool.features, pool.seams,
                                          rng.choice(random_starts, distractors, replace=False))}
            for set_name, (scores_, features_, starts_) in places.items():
                parts[set_name].append((score[window], features[window], seams[start - 1, 1],
                                        np.concatenate([real[0][None], scores_]),
                                        np.concatenate([real[1][None], features_]),
                                        np.concatenate([real[2][None, 0], starts_]), name))
    queries = {}
    for set_name, rows in parts.items():
        columns = list(zip(*rows))
        queries[set_name] = (ranking.Queries(*map(np.stack, (columns[0], columns[1], columns[3], columns[4])),
                                             scale, variance, np.stack(columns[2]), np.stack(columns[5])),
                             np.array(columns[6]))
    return queries


def whole_places(sources, count):
    """(N,) True where a step and the count - 1 steps after it are of one source."""
    whole = np.ones(len(sources), bool)
    whole[len(sources) - count + 1:] = False
    for k in range(1, count):
        whole[:len(sources) - k] &= sources[k:] == sources[:-k]
    return whole


def places_of(scores, features, seams, starts):
    """(scores, features) of the OUT_STEPS steps from each start, and the start of each one's first step's seam."""
    steps = np.asarray(starts)[:, None] + np.arange(OUT_STEPS)
    return scores[steps], features[steps], seams[np.asarray(starts), 0]


def nearest_joins(window_score, window_features, window_seams, pool, count):
    """places_of the count nearest joins the generator would consider after the window as its seed."""
    chooser = StepChoice(np.concatenate([window_score, pool.scores]), np.concatenate([window_features, pool.features]),
                         np.concatenate([window_seams, pool.seams]),
                         np.concatenate([np.full(IN_STEPS, -1), pool.sources]),
                         IN_STEPS, np.random.default_rng(0), out_steps=OUT_STEPS)
    return places_of(chooser.scores, chooser.raw_features, chooser.seams, chooser.nearest_joins(count))


def scorers(work, models):
    """{row: scorer}: each trained and untrained score model, the simple scorers, and the seam reference."""
    from common import score_layers  # noqa: F401  (registers the custom layers the saved models need)
    from common.models import load_model
    from common.score_models import model_figures

    rows = {}
    for name in models:
        rows[name] = model_figures(load_model(work / "models", name, name))
        rows[f"{name}, untrained"] = model_figures(load_model(untrained_models_dir(work), name, name))
    return {**rows, **ranking.BASELINES, "seam (reference)": ranking.seam}


def evaluate(queries, rows):
    """{row: {set: summary with per-song top-1}}."""
    results = {}
    for row, scorer in rows.items():
        results[row] = {}
        for set_name, (query, songs) in queries.items():
            rank = ranking.ranks(scorer(query))
            summary = ranking.summary(rank)
            summary["per_song"] = {song: float(np.mean(rank[songs == song] <= 1)) for song in dict.fromkeys(songs)}
            results[row][set_name] = summary
    return results


def table(header, results, models):
    lines = [header, "", "| scorer | " + " | ".join(f"{name}: top-1 / top-5 / MRR" for name in SETS) + " |",
             "|---|" + "---|" * len(SETS)]
    for row, by_set in results.items():
        cells = [f"{by_set[name]['top1']:.2f} / {by_set[name]['top5']:.2f} / {by_set[name]['mrr']:.2f}"
                 for name in SETS]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "Same-song top-1 per test song (the worst song of each row last):", ""]
    songs = list(results[next(iter(results))]["same song"]["per_song"])
    for row, by_set in results.items():
        per_song = by_set["same song"]["per_song"]
        worst = min(per_song, key=per_song.get)
        lines.append(f"- {row}: " + ", ".join(f"{Path(song).stem} {per_song[song]:.2f}" for song in songs)
                     + f"; worst {Path(worst).stem} {per_song[worst]:.2f}")
    lines += ["", "Target: each score model's top-1 at least the best simple scorer's (last step, mean step, "
              "continuity, history) on the same-song and joins sets:"]
    for name in models:
        for set_name in ("same song", "joins"):
            best = max(BASELINE_NAMES, key=lambda row: results[row][set_name]["top1"])
            mine, theirs = results[name][set_name]["top1"], results[best][set_name]["top1"]
            lines.append(f"- {name}, {set_name}: {mine:.2f} vs {best} {theirs:.2f} "
                         f"({mine - theirs:+.2f}): {'pass' if mine >= theirs else 'FAIL'}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(argparse.Namespace(verbose=False, quiet=True))
    started = time.perf_counter()
    work, _, training, _, train_seconds, models = trained_pipeline(args)
    from common.models import load_codec

    encoder, _, autoencoder = load_codec(work / "models")
    folder = paths.scores_dir(work / "data")
    pool = datasets.songs_heard(folder, datasets.score_index(folder, autoencoder["fingerprint"]))
    songs = test_songs(args.music_dir, training, work, encoder, autoencoder["fingerprint"])
    queries = build_queries(songs, pool, args.stride, args.distractors, np.random.default_rng(args.random_seed))
    results = evaluate(queries, scorers(work, models))
    count = len(queries["same song"][1])
    sizes = ", ".join(f"{name} {models[name]['epochs_run']} epochs ("
                      + ("reused" if np.isnan(models[name]["seconds"]) else f"{models[name]['seconds'] / 60:.1f} min")
                      + ")" for name in models)
    header = (f"### What comes next: {args.music_dir}\n\n{len(training)} training songs "
              f"({train_seconds / 60:.1f} min); {len(songs)} test songs, {count} windows of 10 s every "
              f"{args.stride * audio.STEP_SECONDS:g} s, each real next 1.25 s against {args.distractors} others "
              f"(chance top-1 {1 / (args.distractors + 1):.2f}); {sizes}; random seed {args.random_seed}; "
              f"{(time.perf_counter() - started) / 60:.1f} min.")
    text = table(header, results, models)
    print(text, flush=True)
    save_table(work / "ranking", args, text, results=results)
    return results


if __name__ == "__main__":
    main()
