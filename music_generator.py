"""Step 7: take ~10 s of a seed song, encode it, predict the continuation step after step, decode, write a WAV.

Reads   --seed-file SONG (any audio file; default: the first validation song of data/steps/)
        models/encoder.keras, decoder.keras, and models/<--model>.keras with its .json record
        data/scores/   every song's score and what its steps sound like (the seed's own song left out)
Writes  data/output/<song>_<model>_continued.wav   seed + continuation (or --continuation-only), 44.1 kHz stereo
        data/output/<song>_<model>_continued.png   seed | continuation spectrogram, the boundary marked

The score model reads the last 40 steps (10 s) and predicts what the next 5 will sound like. Each new step is
a real step of the seed or of the other songs of step 4: a run of one song's steps goes on for --min-run to
--max-run steps and leaves where the model finds a join least worse than staying, for the place whose next
steps it finds likeliest, whose previous second sounds like what was just played, whose first milliseconds
carry on the sound, and which stays close to the seed (--temperature 0: always the best; --model-weight 0:
by sound alone; --seed-steps-only: the seed's own steps alone). Every second is kept within --level-range dB
of the seed, and a look-ahead limiter keeps peaks under full scale. The same --random-seed gives the same
WAV. How and why: docs/continuation.md.

Example:
    python music_generator.py --seed-file "data/input/my song.mp3" --offset 30 --seconds 30 --model lstm
"""
import logging
from pathlib import Path

import numpy as np

from common import artifacts, audio, cli, datasets, metrics, paths, plots, step_features
from common.beat_joins import MAX_SHIFT, MIN_STRENGTH, beat_shifts, join_runs
from common.errors import PipelineError
from common.step_choice import MAX_RUN, MIN_RUN, MODEL_WEIGHT, StepChoice

log = logging.getLogger("musicgen")

STEPS_PER_SECOND = round(1 / audio.STEP_SECONDS)  # 4: the level hold keeps every 4 consecutive steps in range
LEVEL_RANGE_DB = 2.0  # every second within this of the seed's level (the limiter may take a few tenths of a dB
# off; the benchmark's target is 3)


def parse_args(argv):
    parser = cli.make_parser(__doc__)
    parser.add_argument("--seed-file", type=Path, default=None,
                        help="song to continue (default: first validation song)")
    parser.add_argument("--offset", type=float, default=0.0, help="seconds into the song where the seed starts")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of continuation (default 30)")
    parser.add_argument("--model", choices=("lstm", "conv1d"), default="lstm", help="score model (default lstm)")
    parser.add_argument("--min-run", type=int, default=MIN_RUN,
                        help=f"steps of one song before a join (default {MIN_RUN}: {MIN_RUN * audio.STEP_SECONDS:g} s)")
    parser.add_argument("--max-run", type=int, default=MAX_RUN,
                        help=f"steps of one song in a row at most (default {MAX_RUN}: "
                             f"{MAX_RUN * audio.STEP_SECONDS:g} s)")
    parser.add_argument("--model-weight", type=float, default=MODEL_WEIGHT,
                        help=f"the score model's part in each join (default {MODEL_WEIGHT:g}; 0: by sound alone)")
    parser.add_argument("--seed-steps-only", action="store_true",
                        help="continue with the seed's own steps alone, none of the other songs'")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="how freely joins are chosen (default 1; 0: always the likeliest)")
    parser.add_argument("--level-range", type=float, default=LEVEL_RANGE_DB,
                        help=f"each second within +/-X dB of the seed (default {LEVEL_RANGE_DB:g})")
    parser.add_argument("--random-seed", type=int, default=0, help="same seed -> same continuation")
    parser.add_argument("--continuation-only", action="store_true", help="write the new part without the seed")
    parser.add_argument("--out", type=Path, default=None, help="WAV to write (default data/output/...)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return run(args)


def load_seed_steps(args, in_steps):
    """The in_steps steps of the seed song starting at --offset, and the song's name."""
    seed, name = datasets.song_excerpt(args.data_dir, args.seed_file, args.offset, in_steps)
    if len(seed) < in_steps:
        raise PipelineError(f"{name}: the seed needs {in_steps} steps ({in_steps * audio.STEP_SECONDS:g} s) after "
                            f"--offset {args.offset:g} s, the song has {len(seed)} there")
    return seed, name


def seed_beat(seed_steps):
    """(beat period in seconds, strength, seconds to its first beat, beats in a bar) of the seed's steps of audio:
    step_features.beat_grid and beats_in_a_bar."""
    period, strength, first_beat = step_features.beat_grid(seed_steps)
    return period, strength, first_beat, step_features.beats_in_a_bar(seed_steps, period)


def continue_with_real_steps(model, seed_score, seed_features, seed_seams, beat, pool, num_steps, args, rng):
    """(num_steps, latent) new steps, each a real step of pool (datasets.SongsHeard: the songs of the score
    dataset) or of the seed (beat: its seed_beat), chosen run by run by common/step_choice.StepChoice from the
    score model's Gaussian over what comes next; and the StepChoice (its joins: places where the continuation
    leaves one song's run of steps for another; its longest_run: the most consecutive steps of one song played in
    a row). The model reads the chosen steps back, as it read real songs in training."""
    from common.models import inference
    from common.score_models import model_inputs

    in_steps = len(seed_score)
    chooser = StepChoice.after_seed(seed_score, seed_features, seed_seams, pool, rng, first_beat=beat[2],
                                    temperature=args.temperature, min_run=args.min_run, max_run=args.max_run,
                                    model_weight=args.model_weight, out_steps=model.output_shape[1], beat=beat[:2],
                                    seed_steps_only=args.seed_steps_only, bar_beats=beat[3])

    def predict(windows):  # (n, in_steps) pool indices -> (n, out_steps, 2 * SIZE), one model call
        # Always as many windows as a run can leave at (the first repeated): one traced function, never retraced.
        # Without XLA: compiling the look-back's many small ops took 1.7 s, for 3 ms a call after.
        rows = np.concatenate([windows, np.repeat(windows[:1], args.max_run + 1 - len(windows), axis=0)])
        gaussians = inference(model, model_inputs(chooser.scores[rows], chooser.raw_features[rows]))[:len(windows)]
        if not np.isfinite(gaussians).all():  # a NaN cost would pick joins by chance
            raise artifacts.ArtifactError(f"the {args.model} model predicts non-finite values: rerun "
                                          f"{artifacts.MADE_BY[args.model]}")
        return gaussians

    chosen = []
    bar = cli.progress(total=num_steps, desc="generating", unit="step", quiet=args.quiet)
    while len(chosen) < num_steps:
        new = chooser.extend(predict, in_steps)[:num_steps - len(chosen)]
        chosen.extend(new)
        bar.update(len(new))
    bar.close()
    return chooser.scores[chosen[:num_steps]], chooser


def decode_on_the_beat(decoder, chooser, num_steps, beat_seconds):
    """The seed and the first num_steps steps chooser chose after it, laid out run by run, each run on the seed's
    grid read from its source shifted to go on its beat (common/beat_joins.py), cross-faded at the joins: (frames, 2)
    before the level hold and the limiter, and the shifts (beat_joins.beat_shifts). Each run is read with as many
    neighbours of its source on either side as a shift can reach into (its edge step again at a source's edge),
    so the shifted read is real audio: runs of seed steps from the seed decoded once, other songs' runs each
    decoded with their neighbours."""
    from common.models import decode

    in_steps = chooser.seed_count
    history = np.asarray(chooser.history[:in_steps + num_steps])
    half = audio.CROSSFADE_FRAMES // 2
    shifts = beat_shifts(history, chooser.sources, in_steps, beat_seconds, grid=chooser.grid)
    reach = int(np.ceil((MAX_SHIFT + half) / audio.STEP_FRAMES))  # neighbours a shifted read may reach into
    # Nearly every new step is the seed's: decoding each of its runs apart decoded 330-370 steps for a minute,
    # the seed once with its edge steps again 42.
    seed_block = np.concatenate([np.zeros(reach, int), np.arange(in_steps), np.full(reach, in_steps - 1)])
    blocks, places = [chooser.scores[seed_block]], []
    for start, stop, shift in [(0, in_steps, 0)] + shifts:
        first = history[start]
        if first < in_steps:  # the seed's steps: the run's first step is step first of the seed's block
            places.append((start, stop, shift, first))
            continue
        before, after = [first], [history[stop - 1]]
        for _ in range(reach):  # the source's own steps around the run, or its edge step again
            before.insert(0, before[0] - 1 if before[0] > 0 and chooser.has_next[before[0] - 1] else before[0])
            after.append(after[-1] + 1 if chooser.has_next[after[-1]] else after[-1])
        places.append((start, stop, shift, sum(len(block) for block in blocks)))
        blocks.append(chooser.scores[np.concatenate([before[:-1], history[start:stop], after[1:]])])
    # One decode of all blocks laid end to end: where two meet, their outer neighbours' cross-fade and envelope
    # are not read (a shifted read reaches MAX_SHIFT + half a cross-fade into a neighbour of a step).
    samples = decode(decoder, np.concatenate(blocks))
    pieces = []
    for start, stop, shift, offset in places:
        begin = (offset + reach) * audio.STEP_FRAMES + shift - half
        pieces.append((start * audio.STEP_FRAMES,
                       samples[begin:begin + (stop - start) * audio.STEP_FRAMES + 2 * half]))
    return join_runs(pieces, len(history) * audio.STEP_FRAMES), shifts


class LevelHold:
    """Keeps every whole second (STEPS_PER_SECOND steps, counted from the first new step) of a decoded
    continuation within +/- range_db of the seed's mean step energy (seed_steps: the original's), by one gain
    per second, ramped at its edges.

    Measured on the decoded sound itself, for any code, after the runs were read onto the beat (which moves
    sound across seconds). A second louder or quieter than the range is scaled just enough to bring it back
    inside; within a second the steps keep their own dynamics (a beat's loud and quiet steps: a gain per step
    silenced whole steps of real music to hold a loud second). Real steps come from songs of any level, and a
    code's round trip alone can lose a few dB against the original seed.
    """

    def __init__(self, seed_steps, range_db):
        reference = float(np.mean(np.sum(np.square(seed_steps, dtype=np.float64), axis=(1, 2))))
        if reference <= 0:  # a silent seed: nothing to hold the level at
            self.low, self.high = 0.0, np.inf
        else:
            self.low, self.high = reference * 10 ** (-range_db / 10), reference * 10 ** (range_db / 10)
        self.gains = []

    def __call__(self, samples, ramp=audio.CROSSFADE_FRAMES, passes=3):
        """(frames, 2) decoded continuation from its first new step -> the same, each whole second brought back
        inside the range by one gain, ramped over `ramp` frames (a step's cross-fade) inside the second whose gain
        is higher: a ramp centred on the edge lifted the end of a loud second that was turned down by the gain of
        a quiet one turned up (+0.6 dB over the range on a second between them). A ramp plays part of a second at
        its neighbour's lower gain, so each second is measured again as held and its gain corrected (passes in
        all; one pass left seconds whose beat falls on their edges up to 0.8 dB under the range)."""
        second = STEPS_PER_SECOND * audio.STEP_FRAMES
        power = np.einsum("fc,fc->f", samples, samples)  # per frame, both channels
        starts = np.arange(0, len(samples), second)
        lengths = np.diff(np.append(starts, len(samples)))
        gains, curve = np.ones(len(starts)), None
        for _ in range(passes):
            held_power = power if curve is None else power * np.square(curve)
            energies = np.add.reduceat(held_power, starts, dtype=np.float64) * audio.STEP_FRAMES / lengths
            corrections = np.array([self.gain_into_range(energy) for energy in energies])
            if np.all(corrections == 1.0):
                break
            gains *= corrections
            curve = self._gain_curve(gains, second, len(samples), ramp)
        self.gains.extend(gains[gains != 1.0])  # counted in largest_change_db
        return samples if curve is None else samples * curve[:, None]

    @staticmethod
    def _gain_curve(gains, second, frames, ramp):
        """(frames,) one gain per second, each change a linear ramp of `ramp` frames inside the higher second."""
        from scipy.ndimage import uniform_filter1d

        # A moving average turns each step of the gain curve into a linear ramp; the lower of it moved half a ramp
        # either way puts the ramp before a step down and after a step up.
        centred = uniform_filter1d(np.repeat(gains.astype(np.float32), second)[:frames], ramp, mode="nearest")
        half = min(ramp // 2, frames)
        early = np.concatenate([centred[half:], np.full(half, centred[-1])])
        late = np.concatenate([np.full(half, centred[0]), centred[:frames - half]])
        return np.minimum(early, late)

    def gain_into_range(self, energy):
        """The gain that brings a second of mean step energy `energy` just inside the range (1 inside it or for
        silence)."""
        return float(np.sqrt(np.clip(energy, self.low, self.high) / energy)) if energy > 0 else 1.0

    def largest_change_db(self):
        """The largest gain (either way) applied to a second so far, in dB; 0.0 if none."""
        return max((abs(20 * np.log10(max(gain, 1e-12))) for gain in self.gains), default=0.0)


def load_score_model(models_dir, name, autoencoder):
    """The score model and its record, checked to predict what the next steps sound like, in the step features
    of this version, from the current autoencoder's scores."""
    from common import score_layers  # noqa: F401  (registers the custom layers the saved model needs)
    from common.models import load_model, read_record
    from common.score_models import OUTPUT

    record = read_record(models_dir, name, name)
    if (record.get("output") != OUTPUT or record.get("step_features") != step_features.VERSION
            or "autoencoder_fingerprint" not in record):
        raise artifacts.ArtifactError(f"the {name} model predates score models that predict what the next steps "
                                      f"sound like: rerun create_encoded_data.py, then {artifacts.MADE_BY[name]}")
    artifacts.check_same(f"the {name} model", record["autoencoder_fingerprint"], autoencoder["fingerprint"],
                         f"create_encoded_data.py, then {artifacts.MADE_BY[name]}")
    return load_model(models_dir, name, name), record


def run(args):
    if args.seconds <= 0 or args.temperature < 0 or args.level_range < 0 or args.model_weight < 0:
        raise PipelineError("--seconds must be positive, --temperature, --level-range and --model-weight at least 0")
    if not 1 <= args.min_run <= args.max_run:
        raise PipelineError(f"--min-run and --max-run need 1 <= min <= max, not {args.min_run} and {args.max_run}")
    from common.models import decode, encode, load_codec

    # Load the autoencoder and the score model, and check they belong together.
    encoder, decoder, autoencoder = load_codec(args.models_dir)
    model, record = load_score_model(args.models_dir, args.model, autoencoder)
    in_steps = record["in_steps"]
    seed_steps, name = load_seed_steps(args, in_steps)

    # Encode the seed, continue its score with real steps, decode seed and continuation together (cross-faded
    # at the join).
    seed_score = encode(encoder, seed_steps)
    if not np.isfinite(seed_score).all():
        raise artifacts.ArtifactError(f"the autoencoder encodes {name} to non-finite values: rerun "
                                      f"{artifacts.MADE_BY['autoencoder']}")
    num_steps = int(np.ceil(args.seconds / audio.STEP_SECONDS))
    rng = np.random.default_rng(args.random_seed)
    # The seed's own song stays out of the pool: its real next steps are not the machine's to offer.
    pool = datasets.song_steps_heard(paths.scores_dir(args.data_dir), autoencoder["fingerprint"], leave_out=name)
    if pool.beats is None:
        log.warning("the score dataset predates each step's beat: other songs' steps cannot keep the seed's beat "
                    "(rerun create_encoded_data.py to add it; the score models need no retraining)")
    new_score, chooser = continue_with_real_steps(model, seed_score, step_features.step_features(seed_steps),
                                                  step_features.seam_spectra(seed_steps), seed_beat(seed_steps), pool,
                                                  num_steps, args, rng)
    joins, longest_run = chooser.joins, chooser.longest_run * audio.STEP_SECONDS
    from_seed = float(np.mean(np.asarray(chooser.history[in_steps:in_steps + num_steps]) < in_steps))
    # On the seed's beat where it has one; else as one score (the codec's own cross-fades at the joins).
    beat = chooser.beat_seconds if chooser.beat_strength >= MIN_STRENGTH else None
    unlimited, shifts = ((decode(decoder, np.concatenate([seed_score, new_score])), []) if beat is None
                         else decode_on_the_beat(decoder, chooser, num_steps, beat))
    seed_frames = in_steps * audio.STEP_FRAMES
    level_hold = LevelHold(seed_steps, args.level_range) if args.level_range > 0 else None
    if level_hold is not None:  # measured on what is heard, after the runs were read onto the beat
        unlimited[seed_frames:] = level_hold(unlimited[seed_frames:])
    decoded = audio.limit_peaks(unlimited)  # a smooth limiter, not clipping: the WAV never exceeds full scale
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
    figures = continuation_figures(audio.unframe_steps(seed_steps), continuation, seed_score, new_score,
                                   decoded[:seed_frames])
    figures["limiter_max_reduction_db"] = limiter_reduction_db(unlimited[seed_frames:], decoded[seed_frames:])
    figures["joins"], figures["longest_run_seconds"], figures["share_from_seed"] = joins, longest_run, from_seed
    figures["level_hold_max_db"] = level_hold.largest_change_db() if level_hold else 0.0
    figures["beat_seconds"] = beat
    figures["bar_beats"] = chooser.bar_beats if beat is not None else None
    figures["largest_shift_ms"] = max((abs(shift) for _, _, shift in shifts), default=0) / audio.SAMPLE_RATE * 1e3
    # Each run after the seed: (first and end step of the continuation, pool step it starts at, shift in samples).
    figures["runs"] = [(start - in_steps, stop - in_steps, int(chooser.history[start]), shift)
                       for start, stop, shift in shifts]
    # Runs of other songs read onto the seed's beat: their tempo is the seed's (step 4 found each step's beat).
    figures["other_songs_runs_on_the_beat"] = sum(
        1 for start, _, shift in shifts if chooser.history[start] >= in_steps and np.isfinite(
            chooser.grid[chooser.history[start], 0]))
    bar_text = f", {chooser.bar_beats} to the bar" if chooser.bar_beats > 1 else ""  # 1 where there is no beat
    on_the_beat = ("no beat to keep" if beat is None else
                   f"runs read on the seed's {beat:.2f}-s beat{bar_text} "
                   f"({figures['other_songs_runs_on_the_beat']} of them other songs' of its tempo), shifted by at most "
                   f"{figures['largest_shift_ms']:.0f} ms")
    cli.summary(
        f"continuation of {name} ({args.seconds:g} s by the {args.model} model, temperature "
        f"{args.temperature:g}): {out}\n"
        f"  loudness {figures['continuation_rms_db']:.1f} dBFS vs the seed's {figures['seed_rms_db']:.1f} dBFS "
        f"(per second after the first 2 s: {figures['min_drift_db']:+.1f} to {figures['max_drift_db']:+.1f} dB; "
        f"{figures['min_drift_decoded_db']:+.1f} to {figures['max_drift_decoded_db']:+.1f} dB against the seed as "
        f"decoded, {figures['decoded_seed_rms_db']:.1f} dBFS); "
        f"peak {figures['peak']:.3f} (limiter: at most {figures['limiter_max_reduction_db']:.1f} dB of gain "
        f"reduction; level hold: at most {figures['level_hold_max_db']:.1f} dB of gain change)\n"
        f"  distance of new steps to their nearest seed step: median {figures['seed_copy_median']:.2f} "
        f"(0 = copies the seed, ~1 = new material); "
        f"real steps ({100 * from_seed:.0f}% of them the seed's), {joins} joins, at most {longest_run:g} s of one "
        f"song in a row; {on_the_beat}\n"
        f"  picture: {picture}"
    )
    return figures


def limiter_reduction_db(unlimited, limited):
    """The largest gain reduction the peak limiter applied, in dB (0.0: it did nothing)."""
    level = audio.frame_peaks(unlimited)
    loud = level > 1e-6
    if not loud.any():
        return 0.0
    gain = audio.frame_peaks(limited)[loud] / level[loud]
    return max(0.0, float(-20 * np.log10(max(gain.min(), 1e-12))))


def continuation_figures(seed, continuation, seed_score, new_score, decoded_seed):
    """Loudness per second against the seed's (the original, and as decoded: the autoencoder's round trip
    alone may lose a few dB, which is not the score model's doing), peak, and how much the seed is copied."""
    per_second = metrics.loudness_per_second(continuation)[2:]
    seed_level, decoded_level = audio.rms_db(seed), audio.rms_db(decoded_seed)
    drift = per_second - seed_level if len(per_second) else np.zeros(1)
    drift_decoded = per_second - decoded_level if len(per_second) else np.zeros(1)
    return {
        "seed_rms_db": seed_level, "continuation_rms_db": audio.rms_db(continuation),
        "min_drift_db": float(drift.min()), "max_drift_db": float(drift.max()),
        "decoded_seed_rms_db": decoded_level,
        "min_drift_decoded_db": float(drift_decoded.min()), "max_drift_decoded_db": float(drift_decoded.max()),
        "peak": float(np.abs(continuation).max()), "finite": bool(np.isfinite(continuation).all()),
        "seed_copy_median": float(np.median(metrics.nearest_step_distance(new_score, seed_score))),
        "frames": len(continuation),
    }


if __name__ == "__main__":
    main()
