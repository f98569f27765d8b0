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

Steering: does the model lead the generator's joins towards what comes next? From a window every
--steering-stride steps, taken as a seed, the generator's first join is drawn as it draws it (common/
step_choice.py, temperature 1), by sound alone and with each model; since the real next steps are never on
offer, what counts is how many of the seed's own places sound closer to them than the join does (0: the
closest; a place at random: about 0.5). It judges one join from a real seed, not the minute after it: a model
weight that wins here can still lead a continuation away from its seed (docs/continuation.md).

Target (issue 26): each score model's top-1 at least the best of the four simple scorers on the same-song and
the nearest-joins sets, on each kind of music.

Reads   MUSIC_DIR (any format the pipeline reads)
Writes  WORK/data, WORK/models (the pipeline's), WORK/untrained/models (the untrained score models),
        WORK/ranking/songs.npz (the test songs' scores, features and onsets), WORK/ranking/results.json and table.md

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
from common.step_choice import EXCLUDED, MODEL_WEIGHT, StepChoice

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
    parser.add_argument("--steering-stride", type=int, default=32,
                        help="steps between the windows whose first join is followed (default 32: 8 s)")
    parser.add_argument("--distractors", type=int, default=ranking.DISTRACTORS,
                        help=f"other places each real next is ranked against (default {ranking.DISTRACTORS})")
    parser.add_argument("--random-seed", type=int, default=0, help="seed of training and of the distractors")
    add_pipeline_arguments(parser)
    return parser.parse_args(argv)


def test_songs(music_dir, training, work, encoder, fingerprint):
    """{name: (score, features, seams, onsets)} of every song of music_dir not trained on, encoded once and
    cached; onsets: the song's onset envelope (step_features.onset_envelope), for each window's beat."""
    from common.models import encode

    cache = work / "ranking" / "songs.npz"
    parts = ("score", "features", "seams", "onsets")
    if cache.is_file():
        arrays = np.load(cache, allow_pickle=False)
        if (str(arrays["fingerprint"]) == fingerprint and int(arrays["features_version"]) == step_features.VERSION
                and "onsets0" in arrays):
            return {str(name): tuple(arrays[f"{part}{i}"] for part in parts) for i, name in enumerate(arrays["names"])}
    files, _ = audio.list_audio_files(music_dir)
    trained = {path.resolve() for path in training}
    songs = {}
    for path in files:
        if path.resolve() not in trained:
            samples = audio.load_audio(path)
            steps = audio.frame_steps(samples)
            songs[path.name] = (encode(encoder, steps), step_features.step_features(steps),
                                step_features.seam_spectra(steps), step_features.onset_envelope(samples))
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
    for name, (score, features, seams, _) in songs.items():
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
    chooser = StepChoice.after_seed(window_score, window_features, window_seams, pool, np.random.default_rng(0),
                                    out_steps=OUT_STEPS)
    return places_of(chooser.scores, chooser.raw_features, chooser.seams, chooser.nearest_joins(count))


def steering(songs, pool, networks, stride, model_weight=MODEL_WEIGHT):
    """How close to what really comes next the generator's first join lands after a window of each test song
    (every stride steps) taken as its seed, by sound alone and with each score model of networks ({row: keras
    model}) at model_weight: {row: {"mean": share, "per_song": {song: share}}}, share being the expected share of
    the seed's places whose next 1.25 s sound closer to the real next 1.25 s than the join's (0: the closest of
    them; a place at random: about 0.5), the join drawn as the generator draws it (temperature 1)."""
    from common.models import inference
    from common.score_models import model_inputs

    queries = [(name, start) for name, song in songs.items() for start in range(IN_STEPS, len(song[0]) - OUT_STEPS + 1,
                                                                                 stride)]
    windows = [np.stack([songs[name][part][start - IN_STEPS:start] for name, start in queries]) for part in (0, 1)]
    gaussians = {row: inference(network, model_inputs(*windows)) for row, network in networks.items()}
    shares = {row: [] for row in ("sound alone", *networks)}
    for number, (name, start) in enumerate(queries):
        score, features, seams, onsets = songs[name]
        window = slice(start - IN_STEPS, start)
        frames = step_features.onset_frames(window.start * audio.STEP_FRAMES, start * audio.STEP_FRAMES)
        chooser = StepChoice.after_seed(score[window], features[window], seams[window], pool, np.random.default_rng(0),
                                        out_steps=OUT_STEPS, beat=step_features.beat_of_onsets(onsets[frames]))
        sound = chooser.next_join_costs()
        closer = seed_places_closer(chooser, features[start:start + OUT_STEPS], sound)
        for row in shares:
            cost = sound if row == "sound alone" else sound + model_weight * chooser.unlikeliness(
                gaussians[row][number])
            rows, probabilities = chooser.choice_probabilities(cost)
            shares[row].append(float(np.sum(probabilities * closer[rows])))
    songs_of = np.array([name for name, _ in queries])
    return {row: {"mean": float(np.mean(values)), "windows": len(values),
                  "per_song": {song: float(np.mean(np.array(values)[songs_of == song])) for song in songs}}
            for row, values in shares.items()}


def seed_places_closer(chooser, real_next, costs):
    """(len(pool),) for each candidate of chooser (a StepChoice whose seed is a window), the share of the seed's
    own places that may be joined (join costs below EXCLUDED) whose next steps sound closer to real_next
    (out_steps, SIZE) than its own (in comparable step features, over as many steps as its source has)."""
    multipliers = step_features.comparable_multipliers(np.std(chooser.raw_features, axis=0))
    squares = np.sum(np.square((chooser.pool_next - real_next[None]) * multipliers), axis=2)
    distance = np.sum(squares * chooser.pool_next_mask, axis=1) / np.sum(chooser.pool_next_mask, axis=1)
    joinable_seed = chooser.is_seed[chooser.pool] & (costs < EXCLUDED / 2)
    seed = np.sort(distance[joinable_seed])
    return np.searchsorted(seed, distance) / max(len(seed), 1)


EXPERT_ROWS = ("look-back", "last step")  # the experts in the order score_models.wrap_body gives them


def listening_shares(network, scores, features, batch=512):
    """{expert or group of step features: share}: how a score model's judgement of what comes next divides, for
    windows of scores and features: the share of its precision (comparable units, summed over the next steps
    and features, mean over the windows) that each expert and each group (step_features.GROUPS) holds. The
    generator's context cost weighs every feature alike: a group's share of it is its size / SIZE."""
    import keras

    from common.score_models import model_inputs

    layer = network.get_layer("gaussian")
    parts = keras.Model(network.inputs, layer.input)
    shares = []
    for first in range(0, len(scores), batch):
        inputs = parts(model_inputs(scores[first:first + batch], features[first:first + batch]), training=False)
        precision = np.asarray(layer.precisions(inputs), np.float64)  # (windows, out_steps, experts, SIZE)
        shares.append(precision.sum(axis=1) / precision.sum(axis=(1, 2, 3))[:, None, None])
    by_feature = np.concatenate(shares).mean(axis=0)  # (experts, SIZE)
    if len(by_feature) != len(EXPERT_ROWS):
        raise ValueError(f"a score model of {len(by_feature)} experts, not {len(EXPERT_ROWS)}")
    groups = np.asarray(step_features.group_of_each_feature())
    by_group = {group: float(by_feature[:, groups == number].sum())
                for number, group in enumerate(step_features.GROUPS)}
    return {**{expert: float(row.sum()) for expert, row in zip(EXPERT_ROWS, by_feature)}, **by_group}


def listening_table(shares):
    """What each model listens to ({row: listening_shares}), beside the context cost's shares."""
    columns = [*EXPERT_ROWS, *step_features.GROUPS]
    context = {group: size / step_features.SIZE for group, size in step_features.GROUPS.items()}
    lines = ["### What each model listens to: the share of its judgement (precision over the next 1.25 s, comparable "
             "units) that each expert and each group of step features holds, mean over the same-song windows", "",
             "| model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for row, figures in {**shares, "the generator's context cost (sound alone)": context}.items():
        lines.append(f"| {row} | " + " | ".join("-" if column not in figures else f"{figures[column]:.3f}"
                                                for column in columns) + " |")
    return "\n".join(lines)


def load_networks(work, models):
    """{row: keras model}: each score model trained and untrained."""
    from common import score_layers  # noqa: F401  (registers the custom layers the saved models need)
    from common.models import load_model

    networks = {}
    for name in models:
        networks[name] = load_model(work / "models", name, name)
        networks[f"{name}, untrained"] = load_model(untrained_models_dir(work), name, name)
    return networks


def scorers(networks):
    """{row: scorer}: each score model of networks, the simple scorers, and the seam reference."""
    from common.score_models import model_figures

    return {**{row: model_figures(network) for row, network in networks.items()}, **ranking.BASELINES,
            "seam (reference)": ranking.seam}


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


def steering_table(steered, stride, model_weight=MODEL_WEIGHT):
    lines = [f"### Steering: the generator's first join after {steered['sound alone']['windows']} windows (every "
             f"{stride * audio.STEP_SECONDS:g} s) taken as seeds, drawn as it draws (temperature 1, model weight "
             f"{model_weight:g}): the share of the seed's places whose next 1.25 s sound closer to the real next "
             "1.25 s than the join's (0: the closest; a place at random: about 0.5)", "",
             "| joins chosen | mean | worst song |", "|---|---:|---|"]
    for row, figures in steered.items():
        worst = max(figures["per_song"], key=figures["per_song"].get)
        lines.append(f"| {row} | {figures['mean']:.3f} | {Path(worst).stem} {figures['per_song'][worst]:.3f} |")
    sound = steered["sound alone"]["mean"]
    lines += ["", "Does the model steer the joins towards what comes next (a lower share than by sound alone)?"]
    for row, figures in steered.items():
        if row != "sound alone":
            lines.append(f"- {row}: {figures['mean']:.3f} vs {sound:.3f} ({figures['mean'] - sound:+.3f}): "
                         + ("closer" if figures["mean"] < sound else "NOT closer"))
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
    networks = load_networks(work, models)
    results = evaluate(queries, scorers(networks))
    steered = steering(songs, pool, networks, args.steering_stride)
    query = queries["same song"][0]
    listening = {row: listening_shares(network, query.windows, query.window_features)
                 for row, network in networks.items()}
    count = len(queries["same song"][1])
    sizes = ", ".join(f"{name} {models[name]['epochs_run']} epochs ("
                      + ("reused" if np.isnan(models[name]["seconds"]) else f"{models[name]['seconds'] / 60:.1f} min")
                      + ")" for name in models)
    header = (f"### What comes next: {args.music_dir}\n\n{len(training)} training songs "
              f"({train_seconds / 60:.1f} min); {len(songs)} test songs, {count} windows of 10 s every "
              f"{args.stride * audio.STEP_SECONDS:g} s, each real next 1.25 s against {args.distractors} others "
              f"(chance top-1 {1 / (args.distractors + 1):.2f}); {sizes}; random seed {args.random_seed}; "
              f"{(time.perf_counter() - started) / 60:.1f} min.")
    text = (table(header, results, models) + "\n\n" + steering_table(steered, args.steering_stride) + "\n\n"
            + listening_table(listening))
    print(text, flush=True)
    save_table(work / "ranking", args, text, results=results, steering=steered, listening=listening)
    return results, steered


if __name__ == "__main__":
    main()
