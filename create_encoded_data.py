"""Step 4: encode every song into its score and define the windows the score models learn from.

Reads   data/steps/                    the step dataset of combine_encoded_test_data.py
        models/encoder.keras           from autoencode.py
Writes  data/scores/index.json         latent size, window sizes, which autoencoder and step dataset made it
        data/scores/<run>/song-NNNNN.npz   each song's score: (num_steps, latent_dim) float32, what each step
                                           sounds like, its seams and its local beat
                                           (common/step_features.py), which the score models predict and
                                           the generator joins by
        data/output/score.png          the score of the first song, as a picture

A window is --in-steps consecutive steps (40 = 10 s) followed by the --out-steps (5 = 1.25 s) to predict,
never crossing from one song into the next; validation songs stay validation songs. Windows are cut on the
fly by the training scripts, so the dataset is 45x smaller than storing every window.

Example:
    python create_encoded_data.py --in-steps 40 --out-steps 5
"""
import logging

from common import artifacts, audio, cli, datasets, paths, plots, step_features
from common.errors import PipelineError

log = logging.getLogger("musicgen")


def parse_args(argv):
    parser = cli.make_parser(__doc__)
    parser.add_argument("--in-steps", type=int, default=40, help="steps the score models read (default 40 = 10 s)")
    parser.add_argument("--out-steps", type=int, default=5, help="steps they predict (default 5 = 1.25 s)")
    parser.add_argument("--batch-size", type=int, default=64, help="steps encoded at once (memory vs speed)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return run(args)


def run(args):
    if args.in_steps < 1 or args.out_steps < 1:
        raise PipelineError("--in-steps and --out-steps must be at least 1")
    from common.models import encode, load_codec

    # Load: the autoencoder (checked against the step dataset it was trained on) and the step dataset.
    encoder, _, record = load_codec(args.models_dir)
    steps_folder = paths.steps_dir(args.data_dir)
    steps_index = datasets.steps_index(steps_folder)
    artifacts.check_same("the autoencoder", record["steps_fingerprint"], steps_index["fingerprint"], "autoencode.py")

    # Encode song by song, writing each score as its own shard.
    folder = paths.scores_dir(args.data_dir)
    run_folder = datasets.new_run_folder(folder)
    window = args.in_steps + args.out_steps
    entries, total_steps = [], sum(song["num_steps"] for song in steps_index["songs"])
    bar = cli.progress(total=total_steps, desc="encoding", unit="step", quiet=args.quiet)
    try:
        for song in steps_index["songs"]:
            steps = datasets.load_song_steps(steps_folder, song)
            score = encode(encoder, steps, args.batch_size)
            shard = f"{run_folder}/{artifacts.shard_name(len(entries))}"
            artifacts.write_npz(folder / shard, score=score, features=step_features.step_features(steps),
                                seams=step_features.seam_spectra(steps), beats=step_features.song_beats(steps))
            entries.append({"song": song["song"], "file": shard, "num_steps": len(score), "split": song["split"],
                            "num_windows": max(0, len(score) - window + 1),
                            "fingerprint": artifacts.file_fingerprint(folder / shard)})
            if entries[-1]["num_windows"] == 0:
                log.warning("%s: %d steps, shorter than one %d-step window; it is kept for seeding only",
                            song["song"], len(score), window)
            bar.update(len(score))
    except BaseException:
        datasets.discard_run(folder, run_folder)
        raise
    finally:
        bar.close()
    windows = {split: sum(e["num_windows"] for e in entries if e["split"] == split)
               for split in ("train", "validation")}
    if windows["train"] == 0:
        datasets.discard_run(folder, run_folder)
        raise PipelineError(f"no training song is longer than one window ({window} steps = "
                            f"{window * audio.STEP_SECONDS:g} s): add longer songs or lower --in-steps/--out-steps")

    # Save the index last: it is what makes the new dataset current.
    index = artifacts.write_dataset_index(folder, {
        "kind": "scores", "latent_dim": int(record["latent_dim"]), "in_steps": args.in_steps,
        "out_steps": args.out_steps, "autoencoder_fingerprint": record["fingerprint"],
        "autoencoder_arch": record["arch"], "steps_fingerprint": steps_index["fingerprint"],
        "step_features": step_features.VERSION, "songs": entries,
    })
    datasets.prune_old_runs(folder, keep_run=run_folder)
    first = entries[0]
    picture = plots.score(datasets.load_song_score(folder, first), paths.output_dir(args.data_dir) / "score.png",
                          f"the machine's score of {first['song']}")
    cli.summary(
        f"score dataset: {folder}\n"
        f"  {len(entries)} songs, {sum(e['num_steps'] for e in entries)} steps x {record['latent_dim']} numbers; "
        f"windows of {args.in_steps} -> {args.out_steps} steps: {windows['train']} train, "
        f"{windows['validation']} validation\n"
        f"  picture of a score: {picture}\n"
        f"  next: python conv1d_creater.py and/or python lstm_creater.py"
    )
    return index


if __name__ == "__main__":
    main()
