"""Step 1: cut every song in data/input/ into 1/4-second steps and save the training set once.

Reads   data/input/*            any format soundfile reads (WAV, FLAC, OGG, Opus, MP3, AIFF, ...), any rate/channels
Writes  data/steps/index.json   what was read, which songs are held out for validation, what was skipped
        data/steps/<run>/song-NNNNN.npz   one shard per song: (num_steps, 11025, 2) samples

Songs are read one at a time and written shard by shard, so memory stays bounded by the longest song.
The same input files and options always give identical arrays, so every retraining sees the same data.

Example:
    python combine_encoded_test_data.py --val-fraction 0.2
"""
import logging

from common import artifacts, audio, cli, datasets, paths
from common.errors import AudioError, PipelineError

log = logging.getLogger("musicgen")


def parse_args(argv):
    parser = cli.make_parser(__doc__)
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="share of songs (whole songs, never chunks) held out for validation (default 0.2)")
    parser.add_argument("--storage", choices=datasets.STORAGE_DTYPES, default="int16",
                        help="sample type on disk: int16 (default; half of float32, 96 dB SNR), float16, float32")
    parser.add_argument("--max-songs", type=int, default=None, help="use only the first N songs (sorted by path)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args, tensorflow=False)
    with cli.user_errors():
        return run(args)


def run(args):
    if not 0 <= args.val_fraction < 1:
        raise PipelineError("--val-fraction must be in [0, 1)")
    if args.max_songs is not None and args.max_songs < 1:
        raise PipelineError("--max-songs must be at least 1")
    source = paths.input_dir(args.data_dir)
    songs, others = audio.list_audio_files(source)
    for path in others:
        log.warning("skipped %s: not an audio file extension", path.relative_to(source).as_posix())
    songs = songs[: args.max_songs]
    if not songs:
        raise PipelineError(f"no audio files in {source}: put songs (WAV, FLAC, OGG, Opus, MP3, ...) there")

    names = [path.relative_to(source).as_posix() for path in songs]
    held_out = datasets.validation_songs(names, args.val_fraction)
    folder = paths.steps_dir(args.data_dir)
    run_folder = datasets.new_run_folder(folder)
    try:
        entries, skipped = write_shards(args, songs, names, held_out, folder, run_folder)
    except BaseException:  # a full disk, Ctrl-C: the shards of this run go, the previous dataset stays
        datasets.discard_run(folder, run_folder)
        raise
    if not entries:
        datasets.discard_run(folder, run_folder)
        raise PipelineError(f"none of the {len(songs)} files in {source} is usable audio (see the warnings above)")
    if not any(entry["split"] == "train" for entry in entries):
        for entry in entries:  # the held-out songs were the only usable ones: train on them instead
            entry["split"] = "train"
    index = artifacts.write_dataset_index(folder, {
        "kind": "steps", "sample_rate": audio.SAMPLE_RATE, "step_frames": audio.STEP_FRAMES,
        "channels": audio.CHANNELS, "storage": args.storage, "val_fraction": args.val_fraction,
        "songs": entries, "skipped": skipped,
    })
    datasets.prune_old_runs(folder, keep_run=run_folder)
    report(index, folder, len(songs), len(others))
    return index


def write_shards(args, songs, names, held_out, folder, run_folder):
    """Read the songs one at a time and write each as a shard of run_folder: (index entries, skipped songs)."""
    entries, skipped = [], []
    for path, name in zip(cli.progress(songs, desc="reading songs", unit="song", quiet=args.quiet), names):
        try:
            steps = audio.frame_steps(audio.load_audio(path, name))  # (num_steps, STEP_FRAMES, CHANNELS)
        except AudioError as error:  # its message starts with the song's name
            skipped.append({"song": name, "reason": str(error).removeprefix(f"{name}: ")})
            log.warning("skipped %s", error)
            continue
        stored = datasets.encode_steps_for_storage(steps, args.storage)
        unusable = unusable_reason(stored)
        if unusable:
            skipped.append({"song": name, "reason": unusable})
            log.warning("skipped %s: %s", name, unusable)
            continue
        shard = f"{run_folder}/{artifacts.shard_name(len(entries))}"
        artifacts.write_npz(folder / shard, steps=stored)
        entries.append({
            "song": name, "file": shard, "num_steps": len(steps),
            "split": "validation" if name in held_out else "train",
            "fingerprint": artifacts.file_fingerprint(folder / shard),
        })
        log.debug("%s: %d steps (%s)", name, len(steps), audio.duration_text(len(steps) * audio.STEP_FRAMES))
    return entries, skipped


def unusable_reason(stored_steps):
    """Why a decoded song cannot teach the autoencoder anything, or None when it can."""
    if len(stored_steps) == 0:
        return f"shorter than one step ({audio.STEP_SECONDS:g} s)"
    if not stored_steps.any():
        return "pure silence"
    return None


def report(index, folder, num_files, num_others):
    splits = {split: datasets.songs_in_split(index, split) for split in ("train", "validation")}
    steps = {split: sum(song["num_steps"] for song in songs) for split, songs in splits.items()}
    used = f"{len(index['songs'])} of {num_files} songs used"
    if index["skipped"]:
        used += f" ({len(index['skipped'])} skipped, see the warnings above)"
    if num_others:
        used += f"; {num_others} files that are not audio ignored"
    cli.summary(
        f"step dataset: {folder}\n"
        f"  {used}; "
        f"train {len(splits['train'])} songs / {steps['train']} steps "
        f"({audio.duration_text(steps['train'] * audio.STEP_FRAMES)}), "
        f"validation {len(splits['validation'])} songs / {steps['validation']} steps "
        f"({audio.duration_text(steps['validation'] * audio.STEP_FRAMES)})\n"
        f"  next: python autoencode.py"
    )


if __name__ == "__main__":
    main()
