"""Benchmark: how fast each stage runs on this machine, against the float32 matmul peak the script measures.

Prints one markdown table:
  - the float32 matmul peak: big square tf.matmul calls, median over --repeats, measured at the start and at
    the end of the run, the higher counting (the yardstick for the rest);
  - data preparation: decode + resample + frame of the real songs in MUSIC_DIR (x realtime), and step 1
    end to end (also writing int16 shards) on --minutes of them;
  - the default sparse code (autoencode.py with no flags: nothing to train): models.encode and models.decode of
    the longest song, each apart (x realtime), beside the FFTs alone that its layers run on that song (SciPy on
    every core, as the layers call them), so the share of the time that is not FFTs shows;
  - the dense autoencoder (autoencode.py --arch dense): training throughput (steps/s, examples/s, GFLOP/s,
    share of the peak), and models.encode / models.decode of a song (x realtime, GFLOP/s, share of the peak);
  - the lstm and conv1d score models (their scripts' defaults): training throughput, and generation by
    music_generator.py (x realtime: the score model's continuation alone, and with decoding to audio), with the
    dense code and with the default sparse one.
Every stage runs through the project's own code (the scripts' main() on a work folder), so the figures are
what a user gets with the default flags; --ae-flags / --score-flags add flags to compare (--jit-compile off).

FLOPs are counted from the layers: 2 per multiply-add of every Dense, Conv1D, Conv1DTranspose and LSTM.
Training counts the forward pass, the weight gradients and the input gradients except the first layer's
(backprop does not compute those): exactly 5 x parameters per example for the dense autoencoder.

Run from the repository root on an otherwise idle machine (about 5 minutes on 2 CPU cores):
    python -m bench.speed /tmp/realmusic
    python -m bench.speed /tmp/realmusic --ae-flags "--batch-size 128"
    python -m bench.speed /tmp/realmusic --codec-only      # the sparse code and its FFTs alone (~1 min)
"""
import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported: its start-up lines are noise

import autoencode  # noqa: E402
import combine_encoded_test_data  # noqa: E402
import conv1d_creater  # noqa: E402
import create_encoded_data  # noqa: E402
import lstm_creater  # noqa: E402
import music_generator  # noqa: E402
from common import audio, datasets, models, paths, training  # noqa: E402

SCORE_SCRIPTS = {"lstm": lstm_creater, "conv1d": conv1d_creater}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("music_dir", type=Path, help="folder of real songs (OGG, MP3, ...)")
    parser.add_argument("--minutes", type=float, default=20.0,
                        help="minutes of those songs the pipeline stages are timed on (default 20: enough "
                             "batches of 256 to time)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each timing; medians are printed")
    parser.add_argument("--generate-seconds", type=float, default=60.0, help="seconds of music generated per run")
    parser.add_argument("--ae-flags", default="", help="extra autoencode.py flags, as one quoted string")
    parser.add_argument("--ae-compare", nargs="*", default=["--batch-size 32", "--batch-size 256 --jit-compile off"],
                        help="autoencoder training is also timed with each of these flag sets (quoted)")
    parser.add_argument("--score-flags", default="", help="extra flags for both score-model scripts")
    parser.add_argument("--codec-only", action="store_true",
                        help="time only the default sparse code and its FFTs (no training, no generation)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where data/ and models/ are made (default: a temporary folder, removed after)")
    return parser.parse_args(argv)


def median_seconds(function, repeats, warm_up=1):
    for _ in range(warm_up):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def matmul_peak(repeats, sizes=(2048, 4096)):
    """Best over sizes of the median float32 GFLOP/s of one (n, n) @ (n, n) tf.matmul."""
    import tensorflow as tf

    best = 0.0
    for size in sizes:
        a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
        multiply = tf.function(lambda x, y: tf.matmul(x, y))
        seconds = median_seconds(lambda multiply=multiply, a=a, b=b: multiply(a, b).numpy(), repeats, warm_up=2)
        best = max(best, 2 * size ** 3 / seconds / 1e9)
    return best


def forward_flops(model):
    """FLOPs of one example through model's Dense, Conv1D, Conv1DTranspose and LSTM layers, and those of its
    first such layer (whose input gradient training does not compute)."""
    from keras import layers

    counted = []

    def visit(layer):
        for inner in getattr(layer, "layers", []):
            visit(inner)
        if isinstance(layer, layers.LSTM):
            steps, features = layer.input.shape[1:]
            counted.append(2 * steps * 4 * layer.units * (features + layer.units))
        elif isinstance(layer, (layers.Conv1D, layers.Conv1DTranspose)):
            positions = (layer.output if isinstance(layer, layers.Conv1D) else layer.input).shape[1]
            counted.append(2 * positions * int(np.prod(layer.kernel.shape)))
        elif isinstance(layer, layers.Dense):
            counted.append(2 * int(np.prod(layer.output.shape[1:-1])) * int(np.prod(layer.kernel.shape)))

    visit(model)
    return sum(counted), (counted[0] if counted else 0)


def training_flops(model):
    total, first = forward_flops(model)
    return 3 * total - first


class BatchTimer:
    """A Keras callback (made on first use) recording when each training batch ends, and the model trained."""

    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                timer.times.append(time.perf_counter())
                timer.model = self.model

        self.times, self.model, self.callback = [], None, Callback()

    def steps_per_second(self, skip=3, window=4):
        """Median rate over windows of batches, after the first few (tracing and XLA compiling)."""
        times = np.asarray(self.times[skip:])
        if len(times) <= window:
            raise SystemExit("too few training batches to time: raise --minutes")
        rates = [window / (times[i + window] - times[i]) for i in range(0, len(times) - window, window)]
        return float(np.median(rates))


def quietly(script, argv):
    """script.main(argv) without its closing summary (the table is the output)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return script.main(argv)


def timed_training(script, argv):
    """Run script.main(argv) with a BatchTimer among its callbacks; returns the timer."""
    timer = BatchTimer()
    original = training.standard_callbacks
    training.standard_callbacks = lambda *args, **kwargs: original(*args, **kwargs) + [timer.callback]
    try:
        quietly(script, argv)
    finally:
        training.standard_callbacks = original
    return timer


def autoencoder_training_row(dirs, flags, batches=40):
    """Dense autoencoder training throughput with other flags: autoencode.build and the streamed training set,
    as autoencode.py trains them, for a few dozen batches (no PCA start, no validation, no saving)."""
    args = autoencode.parse_args(dirs + ["--arch", "dense", *flags])
    folder = paths.steps_dir(args.data_dir)
    autoencoder, _, _ = autoencode.build(args)
    data = datasets.segment_dataset(folder, datasets.steps_index(folder), "train", args.batch_size).repeat()
    timer = BatchTimer()
    autoencoder.fit(data, epochs=1, steps_per_epoch=batches, callbacks=[timer.callback], verbose=0)
    return training_row(f"dense autoencoder {' '.join(flags)}", timer, args.batch_size)


def training_row(name, timer, batch_size):
    """(stage, speed, achieved GFLOP/s) of a timed training."""
    steps = timer.steps_per_second()
    flops = training_flops(timer.model) * batch_size * steps
    return (f"{name} training (batch {batch_size})", f"{steps:.2f} steps/s, {steps * batch_size:.0f} examples/s",
            flops / 1e9)


def link_songs(music_dir, input_dir, minutes):
    """Symlink songs (sorted) into input_dir until they add up to minutes; returns their paths. The links an
    earlier run of the same --work-dir made are replaced, so it can be run again; nothing else there is
    touched (a --work-dir may be someone's own pipeline folder)."""
    import soundfile

    songs, _ = audio.list_audio_files(music_dir)
    input_dir.mkdir(parents=True, exist_ok=True)
    for old in input_dir.iterdir():
        if old.is_symlink():
            old.unlink()
    chosen, total = [], 0.0
    for song in songs:
        if total >= minutes * 60:
            break
        (input_dir / song.name).symlink_to(song.resolve())
        chosen.append(song)
        total += soundfile.info(str(song)).duration
    return chosen, total


def data_preparation_row(songs, repeats):
    """decode + resample + frame of every song, as step 1 does (x realtime)."""
    seconds_of_audio = []

    def prepare_all():
        seconds_of_audio.clear()
        for song in songs:
            steps = audio.frame_steps(audio.load_audio(song))
            seconds_of_audio.append(len(steps) * audio.STEP_SECONDS)

    seconds = median_seconds(prepare_all, repeats)
    return ("data preparation: decode + resample + frame", f"{sum(seconds_of_audio) / seconds:.0f}x realtime", None)


def codec_rows(models_dir, steps, repeats):
    """models.encode and models.decode of one song's steps with the trained codec."""
    encoder, decoder, record = models.load_codec(models_dir)
    label = "dense autoencoder" + (" (lapped)" if record.get("lapped") else " --no-lapped")
    score = models.encode(encoder, steps)
    encode_seconds = median_seconds(lambda: models.encode(encoder, steps), repeats)
    decode_seconds = median_seconds(lambda: models.decode(decoder, score), repeats)
    audio_seconds = len(steps) * audio.STEP_SECONDS
    rows = []
    for name, seconds, model in (("encode", encode_seconds, encoder), ("decode", decode_seconds, decoder),
                                 ("encode + decode", encode_seconds + decode_seconds, None)):
        flops = (forward_flops(encoder)[0] + forward_flops(decoder)[0]) if model is None else forward_flops(model)[0]
        achieved = flops * len(steps) / seconds / 1e9
        rows.append((f"{label} {name} (models.{name.split()[0]}" + ("/decode)" if model is None else ")"),
                     f"{audio_seconds / seconds:.0f}x realtime", achieved))
    return rows


def sparse_codec_rows(data_dir, models_dir, steps, repeats):
    """The default sparse code (autoencode.py with no flags) on one song's steps: models.encode and
    models.decode each apart, and the FFTs alone that its layers run on those steps (sparse_fft_seconds)."""
    quietly(autoencode, ["--data-dir", str(data_dir), "--models-dir", str(models_dir), "--preview-seconds", "0", "-q"])
    encoder, decoder, _ = models.load_codec(models_dir)
    score = models.encode(encoder, steps)
    timings = {"encode": median_seconds(lambda: models.encode(encoder, steps), repeats),
               "decode": median_seconds(lambda: models.decode(decoder, score), repeats)}
    ffts = sparse_fft_seconds(encoder.layers[-1], decoder.layers[-1], len(steps), repeats)
    audio_seconds = len(steps) * audio.STEP_SECONDS
    timings["encode + decode"] = timings["encode"] + timings["decode"]
    if ffts is not None:
        ffts["encode + decode"] = (ffts["encode"][0] + ffts["decode"][0], "both")
    rows = []
    for name, seconds in timings.items():
        rows.append((f"sparse code (default) {name} (models.{name.replace(' + ', '/')})",
                     f"{audio_seconds / seconds:.0f}x realtime", None))
        if ffts is not None:
            rows.append((f"... its FFTs alone ({ffts[name][1]})", f"{audio_seconds / ffts[name][0]:.0f}x realtime, "
                         f"{100 * ffts[name][0] / seconds:.0f}% of the time", None))
    return rows


def sparse_fft_seconds(encoding, decoding, num_steps, repeats, batch_size=256):
    """{"encode": (seconds, what), "decode": (seconds, what)}: median time of the FFTs a sparse code's layers run
    on num_steps steps, by the same SciPy calls on arrays of the same shapes, batch by batch as models.encode and
    models.decode go (both cores). what names them. Codes without a noise envelope (TensorFlow's DCTs) and the
    lapped transform are not timed: None."""
    import scipy.fft

    from common.codec.layout import bins_per_channel
    from common.codec.noise import NOISE_FRAME_HOP, _noise_synthesis_plan

    if not encoding.noise_groups or encoding.transform == "lapped":
        return None
    rng = np.random.default_rng(0)
    frames = bins_per_channel(encoding.transform)  # the DCT's length: the segment's, or its middle's (trimmed)
    measured = [(encoding.noise_blocks, audio.STEP_FRAMES // encoding.noise_blocks)]
    if encoding.fine_blocks:
        measured.append((encoding.fine_blocks, audio.STEP_FRAMES // encoding.fine_blocks))
    plan = _noise_synthesis_plan(decoding.noise_blocks, decoding.noise_groups, decoding.bands, decoding.transform,
                                 NOISE_FRAME_HOP, decoding.band_knee_hz, decoding.fine_blocks)
    noise_frames = len(plan["block"])
    # What the noise envelope measures: the residual (an inverse DCT in the encoder) or the whole sound (the
    # decoder then measures its peaks).
    of_total = getattr(encoding, "noise_envelope", "residual") == "total"

    counts = [min(batch_size, num_steps - first) for first in range(0, num_steps, batch_size)]
    # The inputs are made before timing: drawing random numbers costs as much as the FFTs.
    segments = [rng.standard_normal((count, audio.CHANNELS, frames), np.float32) for count in counts]
    blocks = [[rng.standard_normal((count, audio.CHANNELS, number, hop), np.float32) for number, hop in measured]
              for count in counts]
    spectra = [(rng.standard_normal((count, noise_frames, audio.CHANNELS, plan["hop"] + 1))
                + 1j * rng.standard_normal((count, noise_frames, audio.CHANNELS, plan["hop"] + 1))).astype(np.complex64)
               for count in counts]

    def encode():
        for batch, batch_blocks in zip(segments, blocks):
            scipy.fft.dct(batch, norm="ortho", axis=-1, workers=-1)
            if not of_total:
                scipy.fft.idct(batch, norm="ortho", axis=-1, workers=-1)
            for block in batch_blocks:
                scipy.fft.rfft(block, axis=-1, workers=-1)

    def decode():
        for batch, batch_blocks, batch_spectra in zip(segments, blocks, spectra):
            scipy.fft.idct(batch, norm="ortho", axis=-1, workers=-1)
            scipy.fft.irfft(batch_spectra, plan["length"], axis=-1, workers=-1)
            if of_total:  # the decoded peaks' envelope, in the noise envelope's blocks
                scipy.fft.rfft(batch_blocks[0], axis=-1, workers=-1)

    short = " + ".join(f"{number} blocks" for number, _ in measured)
    return {"encode": (median_seconds(encode, repeats),
                       f"DCT of each segment's mid and side{'' if of_total else ', inverse DCT of the residual'}, "
                       f"short FFTs of {short}"),
            "decode": (median_seconds(decode, repeats),
                       f"inverse DCT, {noise_frames} noise frames' inverse FFTs"
                       + (f", short FFTs of the peaks' {measured[0][0]} blocks" if of_total else ""))}


def generation_rows(name, dirs, seconds, repeats, out, code="dense"):
    """music_generator.py --model name: x realtime of its continuation and of its decoding, timed inside main()
    (every call of models.decode summed: one for a continuation on the seed's beat, its runs laid end to end). code:
    which autoencoder dirs holds, for the rows' names."""
    totals, current = [], {"continue_with_real_steps": 0.0, "decode": 0.0}

    def timing(function, key):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                current[key] += time.perf_counter() - started
        return timed

    def generate():
        current.update(continue_with_real_steps=0.0, decode=0.0)
        quietly(music_generator, argv)
        totals.append(dict(current))

    originals = music_generator.continue_with_real_steps, models.decode
    music_generator.continue_with_real_steps = timing(originals[0], "continue_with_real_steps")
    models.decode = timing(originals[1], "decode")
    try:
        argv = dirs + ["--model", name, "--seconds", str(seconds), "-q", "--out", str(out)]
        whole = median_seconds(generate, repeats)
    finally:
        music_generator.continue_with_real_steps, models.decode = originals
    continuation, decoding = (float(np.median([total[key] for total in totals[1:] or totals]))
                              for key in ("continue_with_real_steps", "decode"))
    label = f"{name} generation ({code} code)"
    return [(f"{label}: score continuation", f"{seconds / continuation:.0f}x realtime", None),
            (f"{label}: continuation + decoding", f"{seconds / (continuation + decoding):.0f}x realtime", None),
            (f"{label}: music_generator.py main() (loading, plots, WAV)", f"{seconds / whole:.0f}x realtime", None)]


def main(argv=None):
    args = parse_args(argv)
    load_before = os.getloadavg()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="speed-bench-"))
    data, models_dir = work / "data", work / "models"
    dirs = ["--data-dir", str(data), "--models-dir", str(models_dir)]
    try:
        peak_at_start = matmul_peak(args.repeats)
        rows = []
        all_songs, _ = audio.list_audio_files(args.music_dir)
        rows.append(data_preparation_row(all_songs, max(1, args.repeats // 2)))

        songs, seconds = link_songs(args.music_dir, data / "input", args.minutes)
        started = time.perf_counter()
        quietly(combine_encoded_test_data, dirs + ["-q"])
        rows.append((f"step 1 end to end ({len(songs)} songs, int16 shards)",
                     f"{seconds / (time.perf_counter() - started):.0f}x realtime", None))
        index = datasets.steps_index(paths.steps_dir(data))
        song = max(datasets.songs_in_split(index, "all"), key=lambda entry: entry["num_steps"])
        song_steps = datasets.load_song_steps(paths.steps_dir(data), song)
        rows += sparse_codec_rows(data, work / "models-sparse", song_steps, args.repeats)
        if args.codec_only:
            return report(args, rows, peak_at_start, matmul_peak(args.repeats), load_before, seconds)

        ae_argv = dirs + ["--arch", "dense", "--epochs", "1", "--preview-seconds", "0", "-q", *args.ae_flags.split()]
        timer = timed_training(autoencode, ae_argv)
        rows.append(training_row("dense autoencoder", timer, autoencode.parse_args(ae_argv).batch_size))
        for flags in args.ae_compare:
            rows.append(autoencoder_training_row(dirs, flags.split() + args.ae_flags.split()))
        rows += codec_rows(models_dir, song_steps, args.repeats)

        quietly(create_encoded_data, dirs + ["-q"])
        for name, script in SCORE_SCRIPTS.items():
            score_argv = dirs + ["--epochs", "1", "-q", *args.score_flags.split()]
            timer = timed_training(script, score_argv)
            rows.append(training_row(f"{name} score model", timer, script.parse_args(score_argv).batch_size))
        for name in SCORE_SCRIPTS:
            rows += generation_rows(name, dirs, args.generate_seconds, max(1, args.repeats // 2),
                                    work / f"{name}.wav", "dense")
        # And with the default code, what a user generates with: its scores, score models of one epoch (how far
        # they trained changes which steps are chosen, not what a choice costs).
        sparse_dirs = ["--data-dir", str(data), "--models-dir", str(work / "models-sparse")]
        quietly(create_encoded_data, sparse_dirs + ["-q"])
        for name, script in SCORE_SCRIPTS.items():
            quietly(script, sparse_dirs + ["--epochs", "1", "-q", *args.score_flags.split()])
            rows += generation_rows(name, sparse_dirs, args.generate_seconds, max(1, args.repeats // 2),
                                    work / f"{name}-sparse.wav", "sparse, the default")
        # The peak is a ceiling: measured again at the end, the higher one counts, so a neighbour busy on a
        # shared machine during one measurement cannot make every share look bigger (seen here: 117 GFLOP/s at
        # the start of one run, 222 in a quiet minute).
        peak_at_end = matmul_peak(args.repeats)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return report(args, rows, peak_at_start, peak_at_end, load_before, seconds)


def report(args, rows, peak_at_start, peak_at_end, load_before, seconds):
    """Print the table (the load average before and now, the matmul peak first); returns the rows."""
    load_after = os.getloadavg()
    print(f"\n{os.cpu_count()} CPU cores; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} "
          f"after; medians of {args.repeats} repeats; pipeline stages on {seconds / 60:.1f} minutes of "
          f"{args.music_dir}\n")
    peak = max(peak_at_start, peak_at_end)
    rows.insert(0, (f"float32 matmul peak (tf.matmul, 2048 and 4096 square; the higher of {peak_at_start:.1f} at "
                    f"the start and {peak_at_end:.1f} at the end)", "", peak))
    print("| stage | speed | GFLOP/s | of matmul peak |")
    print("|---|---|---:|---:|")
    for stage, speed, gflops in rows:
        share = ("", "") if gflops is None else (f"{gflops:.1f}", f"{100 * gflops / peak:.0f}%")
        print(f"| {stage} | {speed} | {share[0]} | {share[1]} |")
    return rows


if __name__ == "__main__":
    main()
