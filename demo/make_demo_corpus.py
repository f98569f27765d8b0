"""Write a small, deterministic corpus of synthesized demo songs.

Each song is 44.1 kHz stereo audio with chords, a melody, a bass line and
drums, arranged in repeating A A B A sections, with its own tempo, key and
instrument timbres. Most songs are 16-bit WAV; when three or more songs are
made, song 02 is FLAC and song 03 is OGG Vorbis so that multi-format loading
gets exercised. The same arguments always give the same music (WAV and FLAC
files are byte-identical; OGG depends on the libvorbis build).

Example:
    python demo/make_demo_corpus.py --songs 6 --seconds 40 --seed 0
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

SR = 44100
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "input"
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}
# Chord roots as 0-based scale degrees: A is the "verse", B the contrast.
PROGRESSIONS = {"major": ([0, 4, 5, 3], [5, 3, 0, 4]),   # I-V-vi-IV / vi-IV-I-V
                "minor": ([0, 5, 2, 6], [3, 0, 4, 4])}   # i-VI-III-VII / iv-i-v-v
NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
# Melody rhythms, in beats, each filling one 4/4 bar.
RHYTHMS = [[1, 1, 1, 1], [0.5, 0.5, 1, 1, 1], [1.5, 0.5, 1, 1], [2, 1, 1],
           [1, 0.5, 0.5, 2], [0.5] * 4 + [1, 1], [3, 1]]
BAR_BEATS, SECTION_BARS = 4, 4


def note_freq(midi):
    """Equal-tempered frequency in Hz of a MIDI note number (69 = A4)."""
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def scale_midi(tonic, mode, degree):
    """MIDI note of a scale degree; degrees past 6 continue into higher octaves."""
    octave, step = divmod(degree, 7)
    return tonic + 12 * octave + SCALES[mode][step]


def adsr(n_on, attack, decay, sustain, release):
    """ADSR envelope: n_on held samples, then a release tail (times in seconds)."""
    a, d, r = (max(1, int(x * SR)) for x in (attack, decay, release))
    env_on = np.full(n_on, sustain, dtype=np.float64)
    rise = np.linspace(0.0, 1.0, a, endpoint=False)
    fall = np.linspace(1.0, sustain, d, endpoint=False)
    head = np.concatenate([rise, fall])[:n_on]
    env_on[:len(head)] = head
    last = env_on[-1] if n_on else 0.0
    # Release starts from wherever the note was, so short notes do not click.
    return np.concatenate([env_on, last * np.linspace(1.0, 0.0, r)])


def voice(freq, n_on, timbre):
    """Additive-synthesis note: a few weighted harmonics times an ADSR envelope."""
    env = adsr(n_on, *timbre["adsr"])
    t = np.arange(len(env)) / SR
    out = np.zeros(len(env))
    for k, amp in enumerate(timbre["harmonics"], start=1):
        if freq * k < SR / 2 - 1000:   # skip harmonics that would alias
            out += amp * np.sin(2 * np.pi * freq * k * t)
    return out * env


def kick(rng):
    """Kick drum: a sine sweeping down from ~120 Hz with a fast decay."""
    t = np.arange(int(0.35 * SR)) / SR
    f = 45 + rng.uniform(60, 90) * np.exp(-t / 0.04)
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / 0.12)


def noise_hit(rng, seconds, decay, band, tone_hz=0.0):
    """Snare or hat: band-limited noise burst, optionally with a body tone."""
    t = np.arange(int(seconds * SR)) / SR
    sos = butter(2, band if len(band) == 2 else band[0],
                 btype="bandpass" if len(band) == 2 else "highpass", fs=SR, output="sos")
    hit = sosfilt(sos, rng.standard_normal(len(t))) * np.exp(-t / decay)
    if tone_hz:
        hit += 0.5 * np.sin(2 * np.pi * tone_hz * t) * np.exp(-t / 0.05)
    return hit


def pan_gains(pan):
    """Equal-power (left, right) gains for pan in [-1, 1]; works on arrays too."""
    angle = (np.asarray(pan) + 1.0) * np.pi / 4.0
    return np.cos(angle), np.sin(angle)


def add(buf, start, mono, gain, pan):
    """Mix a mono signal into a stereo buffer at a sample offset, clipped to fit."""
    mono = mono[:max(0, len(buf) - start)]
    left, right = pan_gains(pan)
    buf[start:start + len(mono), 0] += gain * left * mono
    buf[start:start + len(mono), 1] += gain * right * mono


def random_timbre(rng, n_harm, adsr_times):
    """Per-song timbre: random harmonic weights that roll off with order."""
    rolloff = rng.uniform(0.8, 2.0)
    amps = rng.uniform(0.3, 1.0, n_harm) / np.arange(1, n_harm + 1) ** rolloff
    return {"harmonics": amps / amps.sum(), "adsr": adsr_times}


def make_melody(rng, mode, progression):
    """One melody per section: scale-degree random walk landing on chord tones."""
    notes, degree = [], 9
    for bar, root in enumerate(progression):
        beat = bar * BAR_BEATS
        for i, dur in enumerate(RHYTHMS[rng.integers(len(RHYTHMS))]):
            if i == 0:   # start each bar on a chord tone so it sits on the harmony
                degree = 7 + root + int(rng.choice([0, 2, 4]))
            else:
                degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2, 0]), 7, 16))
            if rng.random() > 0.1:   # occasional rests make phrases breathe
                notes.append((beat, dur, degree))
            beat += dur
    return notes


def render_section(p, rng, progression, melody, n_len):
    """Render one 4-bar section (plus release tail) into a stereo buffer."""
    spb = 60.0 / p["bpm"] * SR   # samples per beat
    buf = np.zeros((n_len + SR, 2))
    tonic, mode = p["tonic"], p["mode"]
    for bar, root in enumerate(progression):
        start = int(bar * BAR_BEATS * spb)
        for j, deg in enumerate((root, root + 2, root + 4)):   # triad in the scale
            f = note_freq(scale_midi(tonic - 12, mode, deg))
            add(buf, start, voice(f, int(BAR_BEATS * spb), p["pad"]), 0.12, -0.5 + 0.5 * j)
        for beat, dur, interval in p["bass_pattern"]:
            f = note_freq(scale_midi(tonic - 24, mode, root + interval))
            add(buf, start + int(beat * spb), voice(f, int(dur * spb * 0.9), p["bass"]), 0.35, 0.0)
        for beat in range(BAR_BEATS):
            b0 = start + int(beat * spb)
            if beat in p["kick_beats"]:
                add(buf, b0, kick(rng), 0.6, 0.0)
            if beat % 2 == 1:
                add(buf, b0, noise_hit(rng, 0.3, 0.08, (1000, 5000), 185.0), 0.25, -0.2)
            for sub in range(p["hat_div"]):
                vel = 0.12 if sub == 0 else 0.06 + 0.03 * rng.random()
                add(buf, b0 + int(sub * spb / p["hat_div"]),
                    noise_hit(rng, 0.08, 0.02, (7000,)), vel, 0.45)
    for beat, dur, degree in melody:
        f = note_freq(scale_midi(tonic, mode, degree))
        add(buf, int(beat * spb), voice(f, int(dur * spb * 0.85), p["lead"]), 0.22, p["lead_pan"])
    return buf


def song_params(rng):
    """Pick tempo, key, mode, timbres, grooves and placement for one song."""
    mode = "major" if rng.random() < 0.6 else "minor"
    return {
        "bpm": int(rng.integers(90, 131)), "tonic": int(rng.integers(57, 69)), "mode": mode,
        "pad": random_timbre(rng, 6, (0.25, 0.3, 0.7, 0.4)),
        "bass": random_timbre(rng, 5, (0.005, 0.1, 0.6, 0.08)),
        "lead": random_timbre(rng, 8, (0.01, 0.12, 0.5, 0.15)),
        "lead_pan": float(rng.choice([-1, 1]) * rng.uniform(0.25, 0.5)),
        "bass_pattern": [[(0, 1.5, 0), (1.5, 0.5, 0), (2, 2, 4)],
                         [(0, 1, 0), (1, 1, 7), (2, 1, 0), (3, 1, 4)],
                         [(0, 0.5, 0), (0.5, 0.5, 0), (2, 1, 0), (3, 0.5, 4)]][rng.integers(3)],
        "kick_beats": [(0, 2), (0, 2, 3), (0, 1, 2, 3)][rng.integers(3)],
        "hat_div": int(rng.choice([2, 4])),
    }


def arrange_song(seed, seconds):
    """Whole song: render sections A and B once, then lay them out A A B A ..."""
    rng = np.random.default_rng(seed)
    p = song_params(rng)
    n_total = int(round(seconds * SR))
    sec_len = int(round(SECTION_BARS * BAR_BEATS * 60.0 / p["bpm"] * SR))
    sections = {}
    for name, prog in zip("AB", PROGRESSIONS[p["mode"]]):
        sections[name] = render_section(p, rng, prog, make_melody(rng, p["mode"], prog), sec_len)
    n_sections = n_total // sec_len + 1
    mix = np.zeros((n_sections * sec_len + SR, 2))
    for i in range(n_sections):
        mix[i * sec_len:i * sec_len + sec_len + SR] += sections["AABA"[i % 4]]
    mix = mix[:n_total]
    # Slow auto-pan sway on the whole mix keeps left and right from being static.
    sway = 0.15 * np.sin(2 * np.pi * 0.07 * np.arange(n_total) / SR)
    mix *= np.stack(pan_gains(sway), axis=1) * np.sqrt(2)
    fade = np.minimum(1.0, np.minimum(np.arange(n_total) / (0.01 * SR),
                                      (n_total - np.arange(n_total)) / (1.5 * SR)))
    mix *= fade[:, None]   # short fade-in, 1.5 s fade-out: no clicks at the ends
    mix *= 0.8 / max(np.abs(mix).max(), 1e-9)
    return np.nan_to_num(mix).astype(np.float32), p


def file_format(index, n_songs):
    """(extension, soundfile format, subtype): song 02 FLAC, 03 OGG, others WAV."""
    if n_songs >= 3 and index == 1:
        return "flac", "FLAC", "PCM_16"
    if n_songs >= 3 and index == 2:
        return "ogg", "OGG", "VORBIS"
    return "wav", "WAV", "PCM_16"


def write_atomic(path, audio, fmt, subtype):
    """Write to a temporary name in the same folder, then rename into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(tmp), audio, SR, format=fmt, subtype=subtype)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Write deterministic synthesized demo songs.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"output folder (default: {DEFAULT_OUT})")
    ap.add_argument("--songs", type=int, default=6, help="number of songs (default: 6)")
    ap.add_argument("--seconds", type=float, default=40.0,
                    help="length of each song in seconds (default: 40)")
    ap.add_argument("--seed", type=int, default=0,
                    help="base random seed; song i uses seed + i (default: 0)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    args = ap.parse_args(argv)
    if args.songs < 1 or round(args.seconds * SR) < 1:
        ap.error("--songs must be >= 1 and --seconds must be > 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(args.songs):
        audio, p = arrange_song(args.seed + i, args.seconds)
        ext, fmt, subtype = file_format(i, args.songs)
        path = args.out / f"demo_song_{i + 1:02d}.{ext}"
        write_atomic(path, audio, fmt, subtype)
        if not args.quiet:
            key = f"{NOTE_NAMES[p['tonic'] % 12]} {p['mode']}"
            print(f"{path.name}: {p['bpm']} BPM, {key}, {len(audio) / SR:.1f} s")
    if not args.quiet:
        print(f"Wrote {args.songs} songs ({args.songs * args.seconds / 60:.1f} min) "
              f"to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
