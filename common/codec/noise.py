"""The sparse decoder's noise fill: what the peaks leave out, by its band levels and its noise envelope.

The decoder fills the bins it has no value for with noise at a fraction of each band's level (NOISE_GAIN),
so quiet bands are not left as silent holes (which is what log-spectral and log-mel distances punish).
With a noise envelope the decoder makes its noise by short frames (16 ms, a hop of 8 ms) instead, each group,
block by block, at the envelope's RMS, the highs shaped in time by the fine blocks: a long transform's noise
fill is spread evenly over its quarter second, which on real music took most attacks away (onsets, beat).
Newer codes' noise spectrum goes smoothly from band centre to band centre (_smooth_band_weights). The
encoder's side of the noise envelope is _block_envelope. The figures that chose all this are in
docs/codec.md.
"""
import functools

import numpy as np
import scipy.fft

from common.audio import CHANNELS, SAMPLE_RATE, SEGMENT_FRAMES, SEGMENT_MARGIN, STEP_FRAMES
from common.codec.envelope import envelope_block_edges
from common.codec.layout import (
    FINE_GROUPS,
    LOG_LEVEL_LIMITS,
    band_of_each_bin,
    bins_per_channel,
    noise_group_of_hertz,
)
from common.codec.transforms import FFT_WORKERS, _fft_on_cpu, interleaved_left_right

# Noise fill at 0.35 of each band's level (-9 dB): on held-out real music this gave the lowest log-spectral
# distance with both transforms (lapped: 8.32 / 8.11 / 8.27 dB at 0.25 / 0.35 / 0.5), and loses 0.5-0.6 dB
# less SI-SDR than 0.5 for 0.4 dB more log-mel distance.
NOISE_GAIN = 0.35
# Newer codes fill the noise at the level measured above 4 kHz, where the ear hears timbre, not waveforms, and
# the residual is most of the sound (at 0.35 the highs came out 5-9 dB short), and at NOISE_GAIN below 1 kHz,
# where the residual is mostly the peaks' own leakage and SI-SDR is made; in log frequency between.
FULL_FILL_HZ = (1500.0, 5000.0)
# Newer codes' noise stops at a lossy source's cut-off (_cutoff_hertz): where a band above CUTOFF_LOWEST_HZ lies
# CUTOFF_DROP_DB or more under the band below it. Steps of 1.4 kHz in real music's own spectrum measured at most
# ~12 dB; at a cut-off 30-50 dB.
CUTOFF_DROP_DB = 20.0
CUTOFF_LOWEST_HZ = 10000.0
NOISE_TABLE = 65537  # complex Gaussian numbers the short-time noise is drawn from (rotated per step)
# The fine shape is imposed half-way (its levels' square roots): in full it measured pulse 0.81-0.84x on drums
# (hats sharper than the original's in the onset envelope), at half 0.85-0.87x.
FINE_SHAPE_POWER = 0.5


def _noise_hop(blocks):
    """Frames per noise block (the last frame or so of a step is left out of the encoder's measure)."""
    return STEP_FRAMES // blocks


# The noise is made of frames of 2 hops of 7.8 ms with any number of blocks (what 16 blocks had): short frames
# keep an attack's noise from starting long before its block (onset F-measure +0.04 on orchestral music with
# 4 blocks, against frames of 2 blocks).
NOISE_FRAME_HOP = STEP_FRAMES // 32



def _block_envelope(sound, groups, blocks):
    """(batch, SEGMENT_FRAMES, 2) waveform (what the peaks leave out, the whole segment, or the decoded peaks)
    -> (batch, groups * blocks) natural log of its RMS over both channels in each frequency group (by a short FFT
    of each block) and block of the step."""
    import tensorflow as tf

    hop = _noise_hop(blocks)
    step = tf.transpose(sound[:, SEGMENT_MARGIN:SEGMENT_MARGIN + blocks * hop], [0, 2, 1])  # (batch, 2, frames)
    bins = hop // 2 + 1
    # A Hann window (its power normalised) keeps the bass from leaking into the higher groups' measure.
    window = np.hanning(hop + 2)[1:-1]
    # In float32 (a float64 window made the FFT's input, spectrum and powers float64), and |X|^2 as re^2 + im^2:
    # 258 steps' 4 blocks 42 -> 17 ms; codes move by at most 6e-5 in log level, saved codes' samples by 1e-6.
    window = (window / np.sqrt(np.mean(window ** 2))).astype(np.float32)

    def power_spectra(frames):
        spectra = scipy.fft.rfft(frames * window, axis=-1, workers=FFT_WORKERS)
        power = np.square(spectra.real)
        power += np.square(spectra.imag)
        return power

    power = tf.reduce_sum(_fft_on_cpu(power_spectra, tf.reshape(step, [-1, CHANNELS, blocks, hop]), tf.float32, bins),
                          axis=1)
    weight = np.full(bins, 2.0)
    weight[0] = 1.0
    if hop % 2 == 0:
        weight[-1] = 1.0
    one_hot = np.eye(groups, dtype=np.float32)[noise_group_of_hertz(np.arange(bins) * SAMPLE_RATE / hop, groups)]
    energy = tf.matmul(power, tf.constant(weight[:, None] * one_hot, tf.float32)) / (hop * hop * CHANNELS)
    log_rms = tf.math.log(tf.sqrt(tf.transpose(energy, [0, 2, 1])) + 1e-12)  # (batch, groups, blocks)
    return tf.reshape(tf.maximum(log_rms, LOG_LEVEL_LIMITS[0]), [-1, groups * blocks])


def _what_the_peaks_leave(log_total, log_peaks):
    """Natural log of the RMS of what the decoded peaks leave of the whole sound's, per group and block (both
    (batch, n)): sqrt(total^2 - peaks^2) where the peaks are below the total, nothing (the floor of the log
    levels) where they reach it. The decoder then adds no noise where its peaks already carry the sound, or
    spill into a quiet block before an attack (the peaks of a long transform spread an attack over its step:
    filling the residual's level there doubled that pre-echo instead of leaving the quiet before the attack)."""
    import tensorflow as tf

    return _log_rms(tf.maximum(_power(log_total) - _power(log_peaks), 0.0))


def _steady_share_of_the_rest(log_total, log_peaks, groups, blocks):
    """Natural log of the noise's RMS per group and block (both (batch, groups * blocks)): the whole sound's
    level in each block times the share of the step's energy in that group that the decoded peaks leave,
    1 - sum(peaks^2) / sum(total^2) over the step's blocks (none where the peaks carry it all).

    Why not each block's own sqrt(total^2 - peaks^2) (_what_the_peaks_leave, what codes saved before this
    decode by): a difference of two near-equal levels swings from nothing to half the sound from one 62.5-ms
    block to the next where the peaks carry most of a held note, and those swings were the flutter of soft,
    sustained music (onsets on the noise blocks' edges: track11 154 for the original's 77, precision 0.49 ->
    0.73 with this). The noise now follows the whole sound's own level in time, which holds where the music
    does, and stays low before an attack, where the whole sound is quiet."""
    import tensorflow as tf

    total = tf.reshape(_power(log_total), [-1, groups, blocks])
    peaks = tf.reshape(_power(log_peaks), [-1, groups, blocks])
    share = tf.maximum(1.0 - tf.reduce_sum(peaks, -1, keepdims=True) / (tf.reduce_sum(total, -1, keepdims=True)
                                                                         + 1e-30), 0.0)
    return _log_rms(tf.reshape(total * share, [-1, groups * blocks]))


def _power(log_rms):
    """Power (RMS^2) of natural-log RMS levels, within LOG_LEVEL_LIMITS."""
    import tensorflow as tf

    return tf.exp(2 * tf.clip_by_value(log_rms, *LOG_LEVEL_LIMITS))


def _log_rms(power):
    """Natural-log RMS of a power of 0 or more, no lower than the floor of the log levels."""
    import tensorflow as tf

    return tf.maximum(0.5 * tf.math.log(power + 1e-30), LOG_LEVEL_LIMITS[0])


def fill_gains(hertz, noise_gain, full_fill_hz=()):
    """(len(hertz),) float32 share of the measured noise level filled at each frequency: noise_gain throughout,
    or, with full_fill_hz (low, high), noise_gain below low, 1 above high and log-linear in log frequency
    between."""
    if not full_fill_hz:
        return np.full(len(hertz), noise_gain, np.float32)
    low, high = np.log(full_fill_hz[0]), np.log(full_fill_hz[1])
    share = np.clip((np.log(np.maximum(hertz, 1.0)) - low) / (high - low), 0.0, 1.0)
    return np.exp(np.log(noise_gain) * (1 - share)).astype(np.float32)


def _band_centres_hertz(bands, transform, knee_hz=0.0):
    """(2, bands per channel) geometric centre (Hz) of each band of the mid and of the side spectrum, and
    (2,) the first band number of each channel."""
    channel_bins = bins_per_channel(transform)
    band_numbers = band_of_each_bin(bands, transform, knee_hz)
    hertz = (np.arange(channel_bins) + 0.5) * SAMPLE_RATE / 2 / channel_bins
    centres, firsts = [], []
    for channel in range(CHANNELS):
        numbers = band_numbers[channel * channel_bins:(channel + 1) * channel_bins]
        firsts.append(numbers[0])
        centres.append([np.sqrt(hertz[numbers == band].min() * hertz[numbers == band].max())
                        for band in range(numbers[0], numbers[-1] + 1)])
    return centres, firsts


def _band_edges_hertz(bands, transform, knee_hz=0.0):
    """(2, bands per channel) lowest and (2, bands per channel) highest frequency (Hz) of each band of the mid
    and of the side spectrum."""
    channel_bins = bins_per_channel(transform)
    band_numbers = band_of_each_bin(bands, transform, knee_hz)
    hertz = np.arange(channel_bins + 1) * SAMPLE_RATE / 2 / channel_bins
    lows, highs = [], []
    for channel in range(CHANNELS):
        numbers = band_numbers[channel * channel_bins:(channel + 1) * channel_bins]
        bands_here = range(numbers[0], numbers[-1] + 1)
        lows.append([hertz[np.flatnonzero(numbers == band)[0]] for band in bands_here])
        highs.append([hertz[np.flatnonzero(numbers == band)[-1] + 1] for band in bands_here])
    return lows, highs


def _cutoff_hertz(log_level, bands, transform, knee_hz, drop_db):
    """(batch, 2) frequency (Hz) of a lossy source's cut-off in the mid and in the side spectrum, from the band
    levels (batch, bands; natural logs), or the Nyquist frequency where there is none. The cut-off is in the
    last band before the first one above CUTOFF_LOWEST_HZ that lies drop_db or more under the band below it
    (the bands past a cut-off measure 30-60 dB under the music, not silence: the DCT of a segment leaks its
    content into the bins above, its edges being cut, not faded). Within that band it is where its level,
    against the band's below, says it stops: a band that holds the music over a share s of its width measures
    s times its power."""
    import tensorflow as tf

    lows, highs = _band_edges_hertz(bands, transform, knee_hz)
    firsts = np.cumsum([0] + [len(low) for low in lows[:-1]])
    cutoffs = []
    for channel in range(CHANNELS):
        count = len(lows[channel])
        own = log_level[:, firsts[channel]:firsts[channel] + count]
        if count < 3:
            cutoffs.append(tf.fill([tf.shape(own)[0]], SAMPLE_RATE / 2))
            continue
        candidate = (np.asarray(lows[channel][1:]) >= CUTOFF_LOWEST_HZ).astype(np.float32)
        drop = tf.cast(own[:, 1:] < own[:, :-1] - drop_db * np.log(10) / 20, tf.float32) * candidate
        past = tf.cumsum(drop, axis=1) > 0  # (batch, count - 1): band k + 1 is past the cut-off
        kept = count - tf.reduce_sum(tf.cast(past, tf.int32), axis=1)  # bands up to the cut-off's, >= 2
        last, before = tf.gather(own, kept - 1, batch_dims=1), tf.gather(own, tf.maximum(kept - 2, 0), batch_dims=1)
        share = tf.clip_by_value(tf.exp(2 * (last - before)), 0.0, 1.0)
        low, width = np.asarray(lows[channel], np.float32), np.asarray(highs[channel], np.float32) - lows[channel]
        cutoff = tf.gather(low, kept - 1) + share * tf.gather(width.astype(np.float32), kept - 1)
        cutoffs.append(tf.where(kept < count, cutoff, SAMPLE_RATE / 2))
    return tf.stack(cutoffs, axis=1)


def _smooth_band_weights(frame_hertz, bands, transform, knee_hz=0.0):
    """For every bin of a noise frame and each channel: the two bands whose centres are either side of it
    (2, 2, bins) and how far it is from the first to the second in log frequency (2, bins), for a level that
    goes smoothly from band centre to band centre. Above the last centre the line goes on (weight > 1), and
    _short_time_noise lets it fall but not rise: a band that spans a lossy source's cut-off (the top one spans
    17-22 kHz) then fills above the cut-off far less than a flat fill, which left 18-22 kHz 20-45 dB louder
    than the original."""
    centres, firsts = _band_centres_hertz(bands, transform, knee_hz)
    pairs, weights = [], []
    for channel in range(CHANNELS):
        log_centres = np.log(np.asarray(centres[channel]))
        log_hertz = np.log(np.maximum(frame_hertz, 1.0))
        upper = np.clip(np.searchsorted(log_centres, log_hertz), 1, max(1, len(log_centres) - 1))
        lower = upper - 1
        if len(log_centres) == 1:
            lower = upper = np.zeros_like(upper)
            weight = np.zeros(len(frame_hertz))
        else:
            weight = (log_hertz - log_centres[lower]) / (log_centres[upper] - log_centres[lower])
            weight = np.maximum(weight, 0.0)  # below the first centre: the first band's level
        pairs.append(np.stack([firsts[channel] + lower, firsts[channel] + upper]))
        weights.append(weight)
    return np.asarray(pairs, np.int32), np.asarray(weights, np.float32)


@functools.lru_cache(maxsize=8)
def noise_window(length, kind="sine"):
    """(length,) float32 window of the noise frames, power-complementary at a hop of half its length (w[n]^2 +
    w[n + length / 2]^2 = 1, so independent frames overlap-add to a steady level): "sine", or "vorbis" (Vorbis's
    sin(pi/2 sin^2), newer codes), whose sidelobes fall far faster: a sine window's spread the noise 60-70 dB under
    its level 1-3 kHz past a lossy source's cut-off, where the original is 80-90 dB under (-146 -> -177 dB at
    18-19 kHz of a noise stopping at 16.8 kHz)."""
    phase = np.pi * (np.arange(length) + 0.5) / length
    return (np.sin(np.pi / 2 * np.sin(phase) ** 2) if kind == "vorbis" else np.sin(phase)).astype(np.float32)


def _noise_synthesis_plan(blocks, groups, bands, transform, frame_hop=None, knee_hz=0.0, fine_blocks=0,
                          window="sine"):
    """Constants of the short-time noise: frames of 2 hops (frame_hop frames; None: half a block, as codes
    saved with 16 blocks had) with a sine window, from before the segment's start to after its end; each
    frame takes the level of the block its centre is in (the first or last block's in the margins). Returns a
    dict: hop, length, window, the band (2, bins) and group (bins,) of each bin of a frame, the bands either
    side and the weights of a smooth spectrum (_smooth_band_weights), the block (frames,) of each frame, and
    where the overlap-added frames start in the segment."""
    hop = frame_hop or _noise_hop(blocks) // 2
    length, bins = 2 * hop, hop + 1
    hertz = np.arange(bins) * SAMPLE_RATE / length
    channel_bins = bins_per_channel(transform)
    long_bin = np.clip(np.round(hertz / (SAMPLE_RATE / 2 / channel_bins)), 0, channel_bins - 1).astype(int)
    band_numbers = band_of_each_bin(bands, transform, knee_hz)
    smooth_pairs, smooth_weights = _smooth_band_weights(hertz, bands, transform, knee_hz)
    # Frame k covers SEGMENT_MARGIN + k * hop - hop / 2 .. + 2 hop: two frames overlap at every frame kept.
    first = -int(np.ceil((SEGMENT_MARGIN - hop // 2) / hop)) - 1
    last = int(np.ceil((SEGMENT_FRAMES - SEGMENT_MARGIN + hop // 2) / hop))
    frames = np.arange(first, last + 1)
    centres = frames * hop + hop // 2  # in the step's frames
    def block_of_each_frame(count):
        return np.clip(np.searchsorted(envelope_block_edges(count), centres, side="right") - 1, 0, count - 1)

    block = block_of_each_frame(blocks)
    fine_block = block_of_each_frame(fine_blocks) if fine_blocks else block
    return {"hop": hop, "length": length,
            "window": noise_window(length, window),
            "band": np.stack([band_numbers[long_bin], band_numbers[channel_bins + long_bin]]).astype(np.int32),
            "smooth_pairs": smooth_pairs, "smooth_weights": smooth_weights,
            "group": noise_group_of_hertz(hertz, groups), "block": block.astype(np.int32),
            "fine_block": fine_block.astype(np.int32),
            "fine_shaped": (noise_group_of_hertz(hertz, FINE_GROUPS) == FINE_GROUPS - 1).astype(np.float32),
            "start": SEGMENT_MARGIN + first * hop - hop // 2}


def _short_time_noise(level, log_targets, rotation, table, noise_gain, groups, blocks, transform, smooth=False,
                      knee_hz=0.0, log_fine=None, full_fill_hz=(), cutoff_drop_db=0.0, window="sine"):
    """(batch, SEGMENT_FRAMES, 2) noise with each band's level (level: (batch, bands), as in the band levels)
    shaping its spectrum and, in each frequency group and block of the step, the RMS noise_gain times the noise
    envelope's (log_targets: (batch, groups * blocks)): random-phase frames of a short inverse FFT,
    overlap-added. rotation (batch, 1): where in table ((2, NOISE_TABLE) float32: the real and the imaginary
    parts of NOISE_TABLE complex numbers) each step's noise starts.
    smooth: frames of NOISE_FRAME_HOP and a spectrum that goes from band centre to band centre in log level
    (codes saved before it: frames of half a block, each band's level flat across it). knee_hz: the bands'
    (band_of_each_bin). full_fill_hz: noise_gain only below the first, the full level above the second
    (fill_gains; codes saved before it: noise_gain throughout). cutoff_drop_db: no noise above a lossy
    source's cut-off (_cutoff_hertz; 0: none, as in codes saved before it). window: the frames' (noise_window)."""
    import tensorflow as tf

    fine_blocks = 0 if log_fine is None else log_fine.shape[-1]
    plan = _noise_synthesis_plan(blocks, groups, level.shape[-1], transform, NOISE_FRAME_HOP if smooth else None,
                                 knee_hz, fine_blocks, window)
    hop, length, frames = plan["hop"], plan["length"], len(plan["block"])
    bins = hop + 1
    if smooth:
        log_level = tf.math.log(level)
        lower = tf.gather(log_level, plan["smooth_pairs"][:, 0], axis=1)  # (batch, 2, bins)
        upper = tf.gather(log_level, plan["smooth_pairs"][:, 1], axis=1)
        line = lower + plan["smooth_weights"] * (upper - lower)
        shape = tf.exp(tf.maximum(tf.minimum(line, tf.maximum(lower, upper)), LOG_LEVEL_LIMITS[0]))
        if cutoff_drop_db:  # no noise above a lossy source's cut-off
            cutoff = _cutoff_hertz(log_level, level.shape[-1], transform, knee_hz, cutoff_drop_db)  # (batch, 2)
            shape *= tf.cast(np.arange(bins, dtype=np.float32) * SAMPLE_RATE / length < cutoff[..., None], tf.float32)
    else:
        shape = tf.gather(level, plan["band"], axis=1)  # (batch, 2, bins)
    one_hot = tf.constant(np.eye(groups, dtype=np.float32)[plan["group"]])  # (bins, groups)
    group_power = tf.matmul(tf.reduce_sum(tf.square(shape), axis=1), one_hot)  # (batch, groups)
    targets = tf.exp(tf.clip_by_value(tf.reshape(log_targets, [-1, groups, blocks]), *LOG_LEVEL_LIMITS))
    # E[x^2] of an inverse FFT of random-phase bins of sizes a_k is 2 sum a_k^2 / length^2 (windows overlapped).
    scale = noise_gain * targets * length / tf.sqrt(2 * group_power + 1e-30)[..., None]  # (batch, groups, blocks)
    per_frame = tf.gather(tf.gather(scale, plan["block"], axis=2), plan["group"], axis=1)  # (batch, bins, frames)
    if full_fill_hz:
        gains = fill_gains(np.arange(bins) * SAMPLE_RATE / length, noise_gain, full_fill_hz)
        per_frame *= (gains / noise_gain)[:, None]
    if fine_blocks:
        # The highs' finer shape in time: within each block, the fine blocks' levels (to FINE_SHAPE_POWER) over
        # their RMS, so a block keeps its level.
        fine = tf.exp(FINE_SHAPE_POWER * tf.clip_by_value(tf.reshape(log_fine, [-1, blocks, fine_blocks // blocks]),
                                                          *LOG_LEVEL_LIMITS))
        fine = fine / tf.sqrt(tf.reduce_mean(tf.square(fine), axis=2, keepdims=True) + 1e-30)
        shaping = tf.gather(tf.reshape(fine, [-1, fine_blocks]), plan["fine_block"], axis=1)  # (batch, frames)
        per_frame *= 1 + plan["fine_shaped"][:, None] * (shaping[:, None, :] - 1)
    # The table as complex numbers, long enough that every step's noise is one slice of it, rotated.
    table = np.resize((table[0] + 1j * table[1]).astype(np.complex64), NOISE_TABLE + frames * CHANNELS * bins)
    offset = slice(-plan["start"], -plan["start"] + SEGMENT_FRAMES)
    noise = tf.numpy_function(lambda *arrays: _noise_frames(*arrays, table, plan["window"], offset),
                              [shape, per_frame, rotation], tf.float32, stateful=False)
    return tf.ensure_shape(noise, (None, SEGMENT_FRAMES, CHANNELS))


def _noise_frames(shape, per_frame, rotation, table, window, offset):
    """numpy: the short-time noise -> (batch, SEGMENT_FRAMES, 2) left/right float32, the frames offset (a slice)
    of the overlap-added sound. Each mid/side bin of each frame has the size shape (batch, 2, bins) x per_frame
    (batch, bins, frames) and a random phase (step b's from table[rotation[b]:], complex64); inverse FFTs,
    windowed, overlap-added at half their length. One NumPy pass, each step's sizes made where they stay in the
    CPU's cache: the same samples, bit for bit, as TensorFlow's product, gather of phases, window, overlap-add
    and mid/side -> left/right stack, in about a quarter of their time (258 steps, traced, medians of 15
    interleaved: 866 -> 240 ms with the sizes still made in the graph; making them here too, 217 -> 168 ms,
    medians of 11)."""
    batch, channels, bins = shape.shape
    frames, hop = per_frame.shape[-1], bins - 1
    spectra = np.empty((batch, frames, channels, bins), np.complex64)
    sizes = np.empty((frames, channels, bins), np.float32)  # one step's
    count = frames * channels * bins
    for step, start in enumerate(np.asarray(rotation).reshape(-1)):
        np.multiply(shape[step][None], per_frame[step].T[:, None], out=sizes)
        np.multiply(sizes.reshape(-1), table[start:start + count], out=spectra[step].reshape(-1))
    waves = scipy.fft.irfft(spectra, 2 * hop, axis=-1, workers=FFT_WORKERS)
    # Each frame's first half, plus the second half of the frame before, windowed: (batch, frames + 1, 2, hop).
    halves = np.empty((batch, frames + 1, channels, hop), np.float32)
    np.multiply(waves[..., :hop], window[:hop], out=halves[:, :frames])
    halves[:, frames] = 0
    halves[:, 1:] += waves[..., hop:] * window[hop:]
    mid = halves[:, :, 0].reshape(batch, (frames + 1) * hop)[:, offset]  # sizes spelled out: a batch may be empty
    side = halves[:, :, 1].reshape(batch, (frames + 1) * hop)[:, offset]
    return interleaved_left_right(mid, side)
