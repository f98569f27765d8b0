"""Step 7: take ~10 s of a seed song, encode it, predict the continuation step after step, decode, write a WAV.

Reads   --seed-file SONG (any audio file; default: the first validation song of data/steps/)
        models/encoder.keras, decoder.keras, and models/<--model>.keras with its .json record
Writes  data/output/<song>_<model>_continued.wav   seed + continuation (or --continuation-only), 44.1 kHz stereo
        data/output/<song>_<model>_continued.png   seed | continuation spectrogram, the boundary marked

The score model reads the last --in-steps steps of the score (40 = 10 s), predicts the next 5, appends them
and slides the window, until --seconds of continuation exist. With --temperature > 0 each prediction is
sampled: Gaussian noise with the model's own validation error per score dimension, times the temperature,
keeps the continuation from settling on the average step. The same --random-seed gives the same WAV.

Example:
    python music_generator.py --seed-file "data/input/my song.mp3" --offset 30 --seconds 30 --model lstm
"""
import logging
from pathlib import Path

import numpy as np

from common import artifacts, audio, cli, datasets, metrics, paths, plots
from common.errors import PipelineError

log = logging.getLogger("musicgen")


def parse_args(argv):
    parser = cli.make_parser(__doc__)
    parser.add_argument("--seed-file", type=Path, default=None,
                        help="song whose opening is continued (default: first validation song of the step dataset)")
    parser.add_argument("--offset", type=float, default=0.0, help="seconds into the seed song where the seed starts")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of continuation to generate")
    parser.add_argument("--model", choices=("lstm", "conv1d"), default="lstm", help="which score model continues")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="0: always the most likely next steps; 1: sample with the model's own error (default)")
    parser.add_argument("--random-seed", type=int, default=0, help="same seed -> same continuation")
    parser.add_argument("--continuation-only", action="store_true", help="write only the new part, not the seed")
    parser.add_argument("--out", type=Path, default=None, help="WAV to write (default data/output/...)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return run(args)


def load_seed_steps(args, in_steps):
    """The in_steps steps of the seed song starting at --offset, and the song's name."""
    if args.seed_file is not None:
        steps, name = audio.frame_steps(audio.load_audio(args.seed_file)), args.seed_file.stem
    else:
        folder = paths.steps_dir(args.data_dir)
        index = datasets.steps_index(folder)
        songs = datasets.songs_in_split(index, "validation") or datasets.songs_in_split(index, "train")
        steps, name = datasets.load_song_steps(folder, songs[0]), Path(songs[0]["song"]).stem
        log.info("seed: validation song %s", songs[0]["song"])
    first = int(round(args.offset / audio.STEP_SECONDS))
    seed = steps[first:first + in_steps]
    if len(seed) < in_steps:
        raise PipelineError(f"{name}: the seed needs {in_steps} steps ({in_steps * audio.STEP_SECONDS:g} s) after "
                            f"--offset {args.offset:g} s, the song has {max(0, len(steps) - first)} there")
    return seed, name


def continue_score(model, seed_score, num_steps, residual_std, temperature, rng, quiet):
    """Autoregressive continuation: (in_steps, latent) seed score -> (num_steps, latent) new steps."""
    import tensorflow as tf

    in_steps = model.input_shape[1]
    predict = tf.function(lambda window: model(window, training=False), reduce_retracing=True)
    score = list(seed_score)
    bar = cli.progress(total=num_steps, desc="generating", unit="step", quiet=quiet)
    while len(score) - len(seed_score) < num_steps:
        window = np.asarray(score[-in_steps:], np.float32)[None]
        predicted = predict(window).numpy()[0]  # (out_steps, latent)
        if temperature > 0:
            predicted = predicted + temperature * residual_std * rng.standard_normal(predicted.shape, np.float32)
        score.extend(predicted)
        bar.update(len(predicted))
    bar.close()
    return np.asarray(score[len(seed_score):len(seed_score) + num_steps], np.float32)


def run(args):
    if args.seconds <= 0 or args.temperature < 0:
        raise PipelineError("--seconds must be positive and --temperature at least 0")
    from common.models import decode, encode, load_codec, load_model, read_record

    # Load the autoencoder and the score model, and check they belong together.
    encoder, decoder, autoencoder = load_codec(args.models_dir)
    record = read_record(args.models_dir, args.model, args.model)
    model = load_model(args.models_dir, args.model, args.model)
    artifacts.check_same(f"the {args.model} model", record["autoencoder_fingerprint"], autoencoder["fingerprint"],
                         f"create_encoded_data.py, then {artifacts.MADE_BY[args.model]}")
    in_steps = record["in_steps"]
    seed_steps, name = load_seed_steps(args, in_steps)

    # Encode the seed, continue its score, decode seed and continuation together (cross-faded at the join).
    seed_score = encode(encoder, seed_steps)
    num_steps = int(np.ceil(args.seconds / audio.STEP_SECONDS))
    rng = np.random.default_rng(args.random_seed)
    new_score = continue_score(model, seed_score, num_steps, np.asarray(record["residual_std"], np.float32),
                               args.temperature, rng, args.quiet)
    decoded = decode(decoder, np.concatenate([seed_score, new_score]))
    decoded = audio.limit_peaks(decoded)  # a smooth limiter, not clipping: the WAV never exceeds full scale
    seed_frames = in_steps * audio.STEP_FRAMES
    continuation = decoded[seed_frames:seed_frames + int(round(args.seconds * audio.SAMPLE_RATE))]
    result = continuation if args.continuation_only else np.concatenate([decoded[:seed_frames], continuation])

    # Save the WAV and its picture.
    out = args.out or paths.output_dir(args.data_dir) / f"{name}_{args.model}_continued.wav"
    audio.write_wav(out, result)
    boundary = None if args.continuation_only else seed_frames / audio.SAMPLE_RATE
    picture = plots.continuation(result, boundary, out.with_suffix(".png"),
                                 f"{name}: {'continuation' if args.continuation_only else 'seed | continuation'} "
                                 f"by the {args.model} model (temperature {args.temperature:g})")

    # Report: loudness against the seed's, peak, and how much the continuation copies the seed.
    figures = continuation_figures(audio.unframe_steps(seed_steps), continuation, seed_score, new_score)
    cli.summary(
        f"continuation of {name} ({args.seconds:g} s by the {args.model} model): {out}\n"
        f"  loudness {figures['continuation_rms_db']:.1f} dBFS vs the seed's {figures['seed_rms_db']:.1f} dBFS "
        f"(per second after the first 2 s: {figures['min_drift_db']:+.1f} to {figures['max_drift_db']:+.1f} dB); "
        f"peak {figures['peak']:.3f}\n"
        f"  distance of new steps to their nearest seed step: median {figures['seed_copy_median']:.2f} "
        f"(0 = copies the seed, ~1 = new material)\n"
        f"  picture: {picture}"
    )
    return figures


def continuation_figures(seed, continuation, seed_score, new_score):
    per_second = metrics.loudness_per_second(continuation)[2:]
    seed_level = audio.rms_db(seed)
    drift = per_second - seed_level if len(per_second) else np.zeros(1)
    return {
        "seed_rms_db": seed_level, "continuation_rms_db": audio.rms_db(continuation),
        "min_drift_db": float(drift.min()), "max_drift_db": float(drift.max()),
        "peak": float(np.abs(continuation).max()), "finite": bool(np.isfinite(continuation).all()),
        "seed_copy_median": float(np.median(metrics.nearest_step_distance(new_score, seed_score))),
        "frames": len(continuation),
    }


if __name__ == "__main__":
    main()
