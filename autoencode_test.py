"""Step 3: send a song through encoder -> decoder, write the WAV, and say how close it is.

Reads   models/encoder.keras, decoder.keras    from autoencode.py
        --song FILE (any audio file), or by default the first validation song of data/steps/
Writes  data/output/<song>_roundtrip.wav       the decoded score, 44.1 kHz stereo
        data/output/<song>_roundtrip.png       original vs round trip: waveforms and spectrograms
        data/output/<song>_roundtrip_score.png  the machine's score of the song (latent dimension x step)
Prints  SNR, SI-SDR, log-spectral and log-mel distance, and the step-boundary figure (1.0 = seamless)

Example:
    python autoencode_test.py --song "data/input/my song.flac" --seconds 30
"""
import logging
from pathlib import Path

import numpy as np

from common import audio, cli, datasets, metrics, paths, plots
from common.errors import PipelineError

log = logging.getLogger("musicgen")


def parse_args(argv):
    parser = cli.make_parser(__doc__)
    parser.add_argument("--song", type=Path, default=None,
                        help="audio file to round-trip (default: the first validation song of the step dataset)")
    parser.add_argument("--offset", type=float, default=0.0, help="start this many seconds into the song")
    parser.add_argument("--seconds", type=float, default=30.0, help="length to round-trip (default 30; 0 = whole)")
    parser.add_argument("--out", type=Path, default=None, help="WAV to write (default data/output/<song>_roundtrip.wav)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging(args)
    with cli.user_errors():
        return run(args)


def load_song_steps(args):
    """(num_steps, STEP_FRAMES, 2) of the chosen song and a name for its outputs."""
    count = int(args.seconds / audio.STEP_SECONDS) if args.seconds > 0 else None
    steps, name = datasets.song_excerpt(args.data_dir, args.song, args.offset, count)
    if len(steps) == 0:
        raise PipelineError(f"{name}: nothing left to round-trip after --offset {args.offset:g} s")
    return steps, name


def run(args):
    from common.models import decode, encode, load_codec

    encoder, decoder, record = load_codec(args.models_dir)
    steps, name = load_song_steps(args)

    score = encode(encoder, steps)  # (num_steps, latent_dim): the machine's score of the song
    original, reconstruction = audio.unframe_steps(steps), decode(decoder, score)
    figures = {
        "snr_db": metrics.snr_db(original, reconstruction),
        "si_sdr_db": metrics.si_sdr_db(original, reconstruction),
        "log_spectral_distance_db": metrics.log_spectral_distance(original, reconstruction),
        "log_mel_distance_db": metrics.log_mel_distance(original, reconstruction),
        "boundary_ratio": metrics.boundary_ratio(reconstruction),
        "original_boundary_ratio": metrics.boundary_ratio(original),
        # Clicks at step boundaries would concentrate the reconstruction error there; 1.0 = evenly spread.
        "error_boundary_ratio": metrics.boundary_ratio(reconstruction - original),
    }

    out = args.out or paths.output_dir(args.data_dir) / f"{name}_roundtrip.wav"
    audio.write_wav(out, reconstruction)
    picture = plots.round_trip(original, np.clip(reconstruction, -1, 1), out.with_suffix(".png"),
                               f"{name}: original vs {record['arch']} autoencoder round trip "
                               f"(SNR {figures['snr_db']:.1f} dB)")
    score_picture = plots.score(score, out.with_name(f"{out.stem}_score.png"), f"{name}: the machine's score")

    cli.summary(
        f"round trip of {name} ({audio.duration_text(len(original))}, {record['arch']} autoencoder, "
        f"latent {record['latent_dim']}): {out}\n"
        f"  SNR {figures['snr_db']:.2f} dB | SI-SDR {figures['si_sdr_db']:.2f} dB | "
        f"log-spectral distance {figures['log_spectral_distance_db']:.2f} dB | "
        f"log-mel distance {figures['log_mel_distance_db']:.2f} dB\n"
        f"  step-boundary figure {figures['boundary_ratio']:.2f} (1.0 = seamless; the original: "
        f"{figures['original_boundary_ratio']:.2f}; of the error: {figures['error_boundary_ratio']:.2f})\n"
        f"  pictures: {picture}, {score_picture}"
    )
    return figures


if __name__ == "__main__":
    main()
