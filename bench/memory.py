"""Benchmark: peak memory of steps 1, 2 and 4 on a corpus of a given length, to show it does not grow with it.

Builds a corpus of --hours of audio in a work folder by symlinking the songs of a folder under new names,
as many times as needed (duplicates are fine for a memory test: every copy is read, stored and streamed),
then runs combine_encoded_test_data.py, autoencode.py (a few cheap epochs) and create_encoded_data.py on it,
each in its own process under GNU time, and prints the peak resident memory of each as a markdown table.

Run from the repository root (about 5 minutes for 2 hours of audio on 2 CPU cores):
    python -m bench.memory /tmp/realmusic --hours 2
    python -m bench.memory /tmp/realmusic --hours 2 --arch conv --batch-size 16
Needs GNU time (/usr/bin/time; on Debian/Ubuntu: apt-get install -y time).
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile

from common import audio, paths

GNU_TIME = Path("/usr/bin/time")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("music_dir", type=Path,
                        help="folder of songs to build the corpus from (any format step 1 reads)")
    parser.add_argument("--hours", type=float, default=2.0, help="length of the corpus to build (default 2)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where data/ and models/ are made (default: a new temporary folder, removed after)")
    parser.add_argument("--limit-gb", type=float, default=2.0,
                        help="the bound each step must stay under, in GB of 10^9 bytes (default 2)")
    parser.add_argument("--arch", default="dense", help="autoencode.py --arch (default dense)")
    parser.add_argument("--latent-dim", type=int, default=512, help="autoencode.py --latent-dim (default 512)")
    parser.add_argument("--epochs", type=int, default=1, help="autoencoder epochs (default 1: memory, not quality)")
    parser.add_argument("--batch-size", type=int, default=None, help="autoencode.py --batch-size (default: its own)")
    parser.add_argument("--extra", default="", help="more autoencode.py flags, as one quoted string")
    return parser.parse_args(argv)


def build_corpus(music_dir, input_dir, hours):
    """Symlink the songs of music_dir into input_dir, copy after copy, until they add up to hours.

    Returns (number of files, seconds of audio, seconds of distinct audio)."""
    songs, _ = audio.list_audio_files(music_dir)
    durations = [(song, soundfile.info(str(song)).duration) for song in songs]
    if not durations or sum(seconds for _, seconds in durations) == 0:
        raise SystemExit(f"no readable songs in {music_dir}")
    input_dir.mkdir(parents=True, exist_ok=True)
    total, count, copy = 0.0, 0, 0
    while total < hours * 3600:
        for song, seconds in durations:
            if total >= hours * 3600:
                break
            (input_dir / f"copy{copy:02d}-{song.name}").symlink_to(song.resolve())
            total, count = total + seconds, count + 1
        copy += 1
    return count, total, min(total, sum(seconds for _, seconds in durations))


def run_measured(command):
    """Run command under GNU time -v; returns (exit status, peak resident set in bytes, wall seconds, output)."""
    started = time.monotonic()
    result = subprocess.run([str(GNU_TIME), "-v", *command], cwd=paths.REPO_ROOT, capture_output=True,
                            text=True, check=False)
    wall = time.monotonic() - started
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    peak = int(match.group(1)) * 1024 if match else None
    return result.returncode, peak, wall, result.stdout + result.stderr


def steps_to_measure(args, dirs):
    python = sys.executable
    autoencoder = ["--arch", args.arch, "--latent-dim", str(args.latent_dim), "--epochs", str(args.epochs),
                   "--preview-seconds", "0", *(["--batch-size", str(args.batch_size)] if args.batch_size else []),
                   *args.extra.split()]
    return [
        ("1 combine_encoded_test_data.py", [python, "combine_encoded_test_data.py", *dirs, "-q"]),
        (f"2 autoencode.py --arch {args.arch}", [python, "autoencode.py", *dirs, *autoencoder, "-q"]),
        ("4 create_encoded_data.py", [python, "create_encoded_data.py", *dirs, "-q"]),
    ]


def main(argv=None):
    args = parse_args(argv)
    if not GNU_TIME.is_file():
        raise SystemExit(f"{GNU_TIME} (GNU time) is missing: install it, e.g. apt-get install -y time")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="memory-bench-"))
    try:
        data, models = work / "data", work / "models"
        files, seconds, distinct = build_corpus(args.music_dir, data / "input", args.hours)
        dirs = ["--data-dir", str(data), "--models-dir", str(models)]
        rows = []
        for name, command in steps_to_measure(args, dirs):
            status, peak, wall, output = run_measured(command)
            if status != 0:
                print(output, file=sys.stderr)
                raise SystemExit(f"{name} failed with status {status}")
            rows.append((name, peak, wall))
        disk = sum(path.stat().st_size for path in (data / "steps").rglob("*.npz"))
        print(f"\ncorpus: {files} files, {seconds / 3600:.2f} hours of audio ({distinct / 60:.0f} minutes of it "
              f"distinct); step dataset on disk {disk / 1e9:.2f} GB; autoencoder --arch {args.arch} "
              f"--latent-dim {args.latent_dim} --epochs {args.epochs}\n")
        print(f"| step | peak RSS (MiB) | peak RSS (GB) | under {args.limit_gb:g} GB | wall time (s) |")
        print("|---|---:|---:|:---:|---:|")
        for name, peak, wall in rows:
            under = "yes" if peak is not None and peak < args.limit_gb * 1e9 else "NO"
            print(f"| {name} | {peak / 2**20:.0f} | {peak / 1e9:.2f} | {under} | {wall:.0f} |")
        return rows
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
