"""Listening figures for the benchmarks: pure functions on (frames, 2) float arrays at 44.1 kHz.

Used by bench/musicality.py (does a continuation sound like the music it continues?) and bench/fidelity.py
(does the round trip keep the rhythm?). Every figure works on the channel mix and needs librosa, scikit-learn
and mir_eval (bench/requirements.txt), which the pipeline itself does not.

  tonalness         1 - (entropy of each frame's chroma distribution / log 12), mean over frames (1 = one
                    pitch class, 0 = all twelve alike, as in noise)
  chroma_flux       1 - cosine of successive 1-s mean chroma vectors, mean (0 = the harmony never moves)
  key_agreement     cosine of two excerpts' mean chroma (1 = the same pitch classes in the same shares)
  pulse             highest normalised autocorrelation of the onset-strength envelope at lags of 0.25-1.5 s
  clip_features     one row of timbre, rhythm and harmony statistics per 3-s clip, for classifier_accuracy
  classifier_accuracy  a classifier two-sample test: logistic regression, leave-one-song-out accuracy
  classifier_cues   the same on each group of clip_features alone and without it: what tells two kinds apart
  step_vectors / longest_copy_seconds  the longest stretch of 1/4-s steps that repeats consecutive steps of a
                    reference (the copy guard); longest_self_repeat_seconds: the same against the excerpt's
                    own steps at least 4 s earlier (the loop guard)
  onset_agreement   mir_eval's onset F-measure, precision and recall (50 ms window) of one excerpt's onsets
                    against another's, and the count of each's (onset_f_measure: the F-measure alone); the
                    same with the estimate's onsets picked on the reference's scale, and how strong the
                    reference's strongest attacks come out in the estimate (attack_strength)
  band_level_differences_db  one excerpt's level minus another's in 5 bands from 20 Hz to 16 kHz (Welch)
  share_like_the_seed_end  how many of an excerpt's steps sound most like its seed's last 2.5 s (where it went on from)
"""
import numpy as np

SAMPLE_RATE = 44100  # common.audio.SAMPLE_RATE, repeated so that this module loads without the pipeline
STEP_SECONDS = 0.25  # common.audio.STEP_SECONDS
HOP = 441  # 10 ms: a whole number of frames per second and per 1/4-s step, so beat periods land on whole lags
FRAMES_PER_SECOND = SAMPLE_RATE // HOP
CHROMA_FFT = 4096  # 10.8 Hz bins: neighbouring semitones are apart from about 90 Hz up
MEL_BANDS = 64
EPSILON = 1e-10
FLOOR_DB = -80.0  # log-mel floor (dB re full scale): silence and near-silence compare alike
PULSE_LAGS_SECONDS = (0.25, 1.5)  # 40-240 beats per minute
ATTACK_COUNT = 10  # attack_strength looks at the reference's 10 strongest onset-envelope frames
CLIP_SECONDS = 3.0
COPY_COSINE = 0.95
STEP_SUBFRAMES = 5  # each step's log-mel is pooled to 5 times of 50 ms, so a step is a sound and its motion
COPY_MAX_HZ = 8000.0  # the copy guard compares bands below this: a lossy copy (a codec, a low-pass) keeps them
SELF_REPEAT_LAG_STEPS = 16  # the loop guard looks 4 s back and more: the generator never replays a step sooner,
# and nearer than that a held sound matches itself
SEED_END_STEPS = 10  # common.step_choice.SEED_END_STEPS: a seed's last 2.5 s, where its music went on from
# The spectral balance's bands (Hz): bass, low mids, the presence region, the lower and the upper highs.
LEVEL_BANDS_HZ = ((20, 200), (200, 1000), (1000, 4000), (4000, 8000), (8000, 16000))
WELCH_FRAMES = 4096  # 10.8 Hz bins: the bass band is 17 bins wide


def mono(samples):
    """Channel mix as float32 (frames,); a 1-D array is taken as mono already."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def chroma(samples):
    """(frames, 12) chroma energies of the channel mix, 100 frames per second (tuning fixed at A440, so the
    same signal always gives the same figure)."""
    import librosa

    return librosa.feature.chroma_stft(y=mono(samples), sr=SAMPLE_RATE, n_fft=CHROMA_FFT, hop_length=HOP,
                                       norm=None, tuning=0.0).T


def chroma_distributions(samples):
    """Each frame's chroma as a distribution over the 12 pitch classes; frames with no energy are left out."""
    energies = chroma(samples)
    totals = energies.sum(axis=1)
    keep = totals > EPSILON * max(totals.max(initial=0.0), EPSILON)
    return energies[keep] / totals[keep, None]


def tonalness(samples):
    """1 - (entropy of each frame's chroma distribution / log 12), mean over frames: 0 for noise."""
    shares = chroma_distributions(samples)
    if not len(shares):
        return float("nan")
    entropy = -np.sum(shares * np.log(shares + EPSILON), axis=1)
    return float(1.0 - np.mean(entropy / np.log(12)))


def cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + EPSILON))


def chroma_flux(samples):
    """1 - cosine of successive 1-s mean chroma vectors (each frame weighed alike), mean over the seconds."""
    shares = chroma_distributions(samples)
    seconds = len(shares) // FRAMES_PER_SECOND
    if seconds < 2:
        return float("nan")
    means = shares[:seconds * FRAMES_PER_SECOND].reshape(seconds, FRAMES_PER_SECOND, 12).mean(axis=1)
    return float(np.mean([1.0 - cosine(a, b) for a, b in zip(means[:-1], means[1:])]))


def key_agreement(samples, reference):
    """Cosine of the two excerpts' mean chroma distributions: near 1 when they use the same pitch classes."""
    return cosine(chroma_distributions(samples).mean(axis=0), chroma_distributions(reference).mean(axis=0))


def onset_envelope(samples):
    """librosa's onset strength of the channel mix, 100 values per second."""
    import librosa

    return librosa.onset.onset_strength(y=mono(samples), sr=SAMPLE_RATE, hop_length=HOP)


def autocorrelation(envelope, max_lag):
    """Normalised autocorrelation of an envelope (its mean removed) at lags 0..max_lag: 1 at lag 0."""
    centred = np.asarray(envelope, np.float64) - np.mean(envelope)
    size = 1 << int(np.ceil(np.log2(2 * len(centred) + 1)))
    spectrum = np.fft.rfft(centred, size)
    full = np.fft.irfft(spectrum * np.conj(spectrum), size)[:max_lag + 1]
    if full[0] <= EPSILON:
        return np.zeros(max_lag + 1)
    return full / full[0]


def pulse_of_envelope(envelope):
    low, high = (int(round(seconds * FRAMES_PER_SECOND)) for seconds in PULSE_LAGS_SECONDS)
    if len(envelope) <= high:
        return float("nan")
    return float(autocorrelation(envelope, high)[low:].max())


def pulse(samples):
    """Highest normalised autocorrelation of the onset-strength envelope at lags of 0.25-1.5 s: near 1 for a
    steady beat, low for music with no regular pulse."""
    return pulse_of_envelope(onset_envelope(samples))


def onset_times(samples):
    """Onset times (s) librosa's peak picking finds in the onset-strength envelope."""
    return onsets_of_envelope(onset_envelope(samples))


def onsets_of_envelope(envelope, scale=None):
    """Onset times (s) librosa's peak picking finds in an onset-strength envelope, scaled (its threshold is a
    share of that range) by its own minimum and maximum, or by scale (low, high): another envelope's."""
    import librosa

    envelope = np.asarray(envelope)
    low, high = (float(np.min(envelope)), float(np.max(envelope))) if scale is None else scale
    scaled = (envelope - low) / (high - low + np.finfo(envelope.dtype).tiny)  # as librosa's own normalize
    return librosa.onset.onset_detect(onset_envelope=scaled, sr=SAMPLE_RATE, hop_length=HOP, units="time",
                                      normalize=False)


def attack_strength(reference_envelope, estimate_envelope, count=ATTACK_COUNT, window=0.05):
    """Median over the reference's `count` strongest onset-envelope frames of the estimate's highest value within
    +/- window s over the reference's: 1.0 where its strongest attacks are as sharp, 0.5 where they come out
    half as strong (smeared, or with a pre-echo before them)."""
    reference, estimate = np.asarray(reference_envelope), np.asarray(estimate_envelope)
    reach = int(round(window * FRAMES_PER_SECOND))
    strongest = np.argsort(-reference)[:count]
    around = [estimate[max(frame - reach, 0):frame + reach + 1] for frame in strongest]  # empty past its end
    return float(np.median([(part.max() if len(part) else 0.0) / max(reference[frame], EPSILON)
                            for part, frame in zip(around, strongest)]))


def onset_agreement(reference, estimate, window=0.05):
    """mir_eval's onset figures of estimate's onsets against reference's (hits within +/- window s): a dict of
    f, precision (the share of estimate's onsets that are reference's: low where it adds onsets), recall (the
    share of reference's it keeps), and the count of onsets in each; the same three and the count with the
    estimate's onsets picked on the reference's scale (suffix _on_reference_scale); and attack_strength.

    Why both: librosa's peak picking scales each envelope by its own range, so an estimate whose strongest
    attacks come out at half their strength has every small fluctuation of its envelope counted as an onset
    (a soft orchestral round trip: 52 -> 278 onsets on its own scale, 47 on the original's, its strongest
    attacks at 0.4x). Picked on the reference's scale, added onsets are the estimate's own."""
    reference_envelope, estimate_envelope = onset_envelope(reference), onset_envelope(estimate)
    scale = (float(np.min(reference_envelope)), float(np.max(reference_envelope)))  # the reference's own
    reference_onsets = onsets_of_envelope(reference_envelope, scale)
    figures = {"attack_strength": attack_strength(reference_envelope, estimate_envelope)}
    for suffix, estimated_onsets in (("", onsets_of_envelope(estimate_envelope)),
                                     ("_on_reference_scale", onsets_of_envelope(estimate_envelope, scale))):
        figures.update({f"{key}{suffix}": value for key, value in
                        _onset_match(reference_onsets, estimated_onsets, window).items()})
    figures["reference_count"] = len(reference_onsets)
    return figures


def _onset_match(reference_onsets, estimated_onsets, window):
    """f, precision, recall and estimate_count of onset times against reference onset times."""
    import mir_eval

    count = {"estimate_count": len(estimated_onsets)}
    if not len(reference_onsets) and not len(estimated_onsets):
        return {"f": 1.0, "precision": 1.0, "recall": 1.0, **count}  # both silent of onsets: they agree
    if not len(reference_onsets) or not len(estimated_onsets):
        return {"f": 0.0, "precision": float(not len(estimated_onsets)), "recall": float(not len(reference_onsets)),
                **count}
    f, precision, recall = mir_eval.onset.f_measure(reference_onsets, estimated_onsets, window=window)
    return {"f": float(f), "precision": float(precision), "recall": float(recall), **count}


def onset_f_measure(reference, estimate, window=0.05):
    """mir_eval's onset F-measure of estimate's onsets against reference's (hits within +/- window s)."""
    return onset_agreement(reference, estimate, window)["f"]


def band_levels_db(samples, bands_hz=LEVEL_BANDS_HZ):
    """(len(bands_hz),) level in dB of the channel mix in each band (low, high) in Hz: its Welch power spectrum
    (Hann frames of WELCH_FRAMES, half overlapping) summed over the band."""
    import scipy.signal

    frequencies, power = scipy.signal.welch(mono(samples), SAMPLE_RATE, nperseg=WELCH_FRAMES)
    return np.array([10 * np.log10(np.sum(power[(frequencies >= low) & (frequencies < high)]) + EPSILON)
                     for low, high in bands_hz])


def band_level_differences_db(reference, estimate, bands_hz=LEVEL_BANDS_HZ):
    """(len(bands_hz),) estimate's level minus reference's in each band, dB (band_levels_db): its spectral
    balance, e.g. negative in the highs for a duller sound."""
    return band_levels_db(estimate, bands_hz) - band_levels_db(reference, bands_hz)


def log_mel(samples):
    """(frames, 64) log-mel energies in dB of the channel mix, floored at -80 dB, 100 frames per second."""
    import librosa

    power = librosa.feature.melspectrogram(y=mono(samples), sr=SAMPLE_RATE, n_fft=2048, hop_length=HOP,
                                           n_mels=MEL_BANDS)
    return np.maximum(10 * np.log10(power + EPSILON), FLOOR_DB).T


def clip_features(samples, clip_seconds=CLIP_SECONDS):
    """(clips, features): one row per whole clip_seconds clip of the excerpt (a shorter rest is left out).

    Per clip: log-mel mean, std and mean |change| from frame to frame (timbre, dynamics, motion); the onset
    envelope's normalised autocorrelation at lags of 50 ms up to 1.5 s (rhythm); the chroma distribution's mean
    and std (harmony); spectral flatness mean and std (noise vs tone); onset strength mean and std.
    """
    import librosa

    mels, envelope = log_mel(samples), onset_envelope(samples)
    shares = chroma(samples)
    shares = shares / (shares.sum(axis=1, keepdims=True) + EPSILON)
    flatness = librosa.feature.spectral_flatness(y=mono(samples), n_fft=2048, hop_length=HOP)[0]
    length = min(len(mels), len(envelope), len(shares), len(flatness))
    clip = int(round(clip_seconds * FRAMES_PER_SECOND))
    lags = clip_rhythm_lags()
    rows = []
    for start in range(0, length - clip + 1, clip):
        part = slice(start, start + clip)
        mel = mels[part]
        rows.append(np.concatenate([
            mel.mean(axis=0), mel.std(axis=0), np.abs(np.diff(mel, axis=0)).mean(axis=0),
            autocorrelation(envelope[part], lags[-1])[lags],
            shares[part].mean(axis=0), shares[part].std(axis=0),
            [flatness[part].mean(), flatness[part].std(), envelope[part].mean(), envelope[part].std()]]))
    width = list(clip_feature_groups().values())[-1].stop
    return np.asarray(rows, np.float64).reshape(-1, width)


def clip_rhythm_lags():
    """The onset envelope's lags (frames) whose autocorrelation clip_features keeps: every 50 ms up to 1.5 s."""
    return np.arange(5, int(round(PULSE_LAGS_SECONDS[1] * FRAMES_PER_SECOND)) + 1, 5)


def clip_feature_groups():
    """{name: slice} of clip_features' columns by what they describe, in its order: what a classifier can be
    asked to tell two kinds of clips apart by (classifier_cues)."""
    widths = {"level (log-mel mean)": MEL_BANDS, "spread (log-mel std)": MEL_BANDS,
              "motion (log-mel change a frame)": MEL_BANDS, "rhythm (onset autocorrelation)": len(clip_rhythm_lags()),
              "harmony (chroma)": 24, "noisiness (flatness)": 2, "attacks (onset strength)": 2}
    edges = np.cumsum([0, *widths.values()])
    return {name: slice(int(start), int(end)) for name, start, end in zip(widths, edges[:-1], edges[1:])}


def classifier_cues(features_a, groups_a, features_b, groups_b):
    """{group name: (accuracy on that group of clip_features alone, accuracy on all the others)}: which
    statistics tell a's clips from b's (a group far above 0.5 alone, and the rest near 0.5 without it, is the
    cue; classifier_accuracy, leave one song out)."""
    features_a, features_b = np.asarray(features_a), np.asarray(features_b)
    cues = {}
    for name, columns in clip_feature_groups().items():
        rest = np.ones(features_a.shape[1], bool)
        rest[columns] = False
        cues[name] = (classifier_accuracy(features_a[:, columns], groups_a, features_b[:, columns], groups_b),
                      classifier_accuracy(features_a[:, rest], groups_a, features_b[:, rest], groups_b))
    return cues


def classifier_predictions(features_a, groups_a, features_b, groups_b, random_seed=0):
    """Leave-one-group-out predictions of a logistic regression on standardised features telling sample a
    (label 0) from sample b (label 1): (labels, predictions, groups). Groups are songs: clips of a song are
    never in training and test at once, so the test cannot be passed by recognising a song."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.concatenate([features_a, features_b])
    labels = np.concatenate([np.zeros(len(features_a), int), np.ones(len(features_b), int)])
    groups = np.concatenate([np.asarray(groups_a), np.asarray(groups_b)])
    if len(np.unique(groups)) < 2:
        raise ValueError("the classifier test needs clips of at least two groups (songs)")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=random_seed))
    predictions = cross_val_predict(model, features, labels, groups=groups, cv=LeaveOneGroupOut())
    return labels, predictions, groups


def classifier_accuracy(features_a, groups_a, features_b, groups_b):
    """Accuracy of telling a's clips from b's, leave-one-song-out: 0.5 = cannot tell them apart, 1.0 = always."""
    labels, predictions, _ = classifier_predictions(features_a, groups_a, features_b, groups_b)
    return float(np.mean(labels == predictions))


def classifier_accuracy_per_group(features_a, groups_a, features_b, groups_b):
    """{group: accuracy on that group's clips when it was the one left out}."""
    labels, predictions, groups = classifier_predictions(features_a, groups_a, features_b, groups_b)
    return {group: float(np.mean(labels[groups == group] == predictions[groups == group]))
            for group in np.unique(groups)}


def band_statistics(samples_list):
    """(mean, std) of each log-mel band over a list of excerpts: the typical spectrum step_vectors removes."""
    mels = np.concatenate([log_mel(samples) for samples in samples_list])
    return mels.mean(axis=0), mels.std(axis=0) + 1.0  # +1 dB: a band silent throughout does not blow up


def step_vectors(samples, bands=None):
    """(steps, 5 x bands up to 8 kHz) one vector per whole 1/4-s step: its log-mel at 5 times, each band
    standardised by bands (band_statistics of the music compared, so every excerpt is measured alike; None: the
    excerpt's own), centred and of unit length: the dot product of two is the cosine of their log-mel patterns.
    Standardised, as music's spectral tilt (loud bass, quiet treble) otherwise makes any two steps' cosines
    about 0.98."""
    import librosa

    kept = librosa.mel_frequencies(MEL_BANDS + 2, fmax=SAMPLE_RATE / 2)[2:] <= COPY_MAX_HZ  # bands' upper edges
    mels = log_mel(samples)
    mean, std = (mels.mean(axis=0), mels.std(axis=0) + 1.0) if bands is None else bands
    mels, mean, std = mels[:, kept], mean[kept], std[kept]
    per_step = int(round(STEP_SECONDS * FRAMES_PER_SECOND))
    steps = min(len(mels) // per_step, int(len(mono(samples)) / SAMPLE_RATE / STEP_SECONDS))
    pooled = ((mels - mean) / std)[:steps * per_step].reshape(steps, STEP_SUBFRAMES, per_step // STEP_SUBFRAMES,
                                                              mels.shape[1])
    vectors = pooled.mean(axis=2).reshape(steps, -1)
    vectors = vectors - vectors.mean(axis=1, keepdims=True)
    return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + EPSILON)


def longest_run(candidate, reference, threshold=COPY_COSINE):
    """Longest run of consecutive candidate steps i, i+1, ... that match consecutive reference steps j, j+1, ...
    (cosine >= threshold), in steps."""
    if not len(candidate) or not len(reference):
        return 0
    return _longest_diagonal_run(candidate @ reference.T >= threshold)


def _longest_diagonal_run(matches):
    """The longest run of True along any diagonal of a (rows, columns) bool matrix: rows i, i+1, ... matching
    columns j, j+1, ...; 0 for none."""
    best, run = 0, np.zeros(matches.shape[1], int)
    for row in matches:
        run = np.where(row, np.concatenate([[0], run[:-1]]) + 1, 0)
        best = max(best, int(run.max(initial=0)))
    return best


def longest_self_repeat_seconds(vectors, min_lag=SELF_REPEAT_LAG_STEPS, threshold=COPY_COSINE):
    """The loop guard: the longest stretch (s) of an excerpt's steps (step_vectors) that repeats consecutive steps
    of its own at least min_lag steps earlier. Real music comes back to its bars with variations (0-6.25 s of
    the real next minutes of bench/musicality.py's held-out songs repeated this closely); a continuation that
    cycles through the same few runs repeats whole seconds of itself."""
    # Step i against steps j <= i - min_lag only: a diagonal keeps its lag, so no run crosses that bound.
    return STEP_SECONDS * _longest_diagonal_run(np.tril(vectors @ vectors.T >= threshold, -min_lag))


def share_like_the_seed_end(vectors, seed_vectors, end_steps=SEED_END_STEPS):
    """The share of an excerpt's steps (step_vectors) whose most similar seed step lies in the seed's last
    end_steps. A real next minute goes on from where its seed ended: after a seed that changes (an intro, then
    the band) most of its steps sound like the seed's end; an excerpt that plays every part of the seed alike
    scores end_steps / len(seed_vectors) (0.25 for a 10-s seed)."""
    if not len(vectors) or not len(seed_vectors):
        return 0.0
    nearest = np.argmax(vectors @ seed_vectors.T, axis=1)
    return float(np.mean(nearest >= len(seed_vectors) - end_steps))


def longest_copy_seconds(candidate_vectors, reference_vectors, threshold=COPY_COSINE):
    """The copy guard: the longest stretch (s) of candidate steps that repeats consecutive steps of any one of
    reference_vectors (a list of step_vectors arrays: the seed, each training song)."""
    return STEP_SECONDS * max([longest_run(candidate_vectors, reference, threshold)
                               for reference in reference_vectors] or [0])
