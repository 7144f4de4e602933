"""Looking at a dataset and at what the model sees: the helpers of notebooks 01 and 02.

Data: :func:`metadata_table` flattens FMA metadata (the official
``tracks.csv`` or a flat export) to one row per track with duration (s) and
bit rate (bit/s); :func:`genre_hierarchy` summarises ``genres.csv`` per
top-level genre; :func:`clip_durations` measures the audio itself.

Spectrograms: :func:`frontend_variants` and :func:`log_variants` show what
each front-end parameter does; :func:`mean_spectrograms` averages a genre's
cached windows; :func:`genre_distances` and :func:`distinct_order` turn the
per-genre mean spectra into the "most distinct first" order that the
genre-growth experiment (:mod:`utils.evaluation.growth`) follows.

Figures are bare :class:`matplotlib.figure.Figure` objects (no pyplot state),
saved with :func:`utils.evaluation.plots.save_figure`.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from utils import audio

from utils.data import fma
from utils.data.cache import Cache, Windows
from utils.audio.frontend import FrontEnd, LogMel

_CHUNK = 256  # windows read from the cache at once (8 MiB of float32 at the defaults)


# --- metadata --------------------------------------------------------------------------------

def metadata_table(path: str | os.PathLike, subset: str = "medium") -> pd.DataFrame:
    """One row per FMA track: ``track_id``, ``label`` (genre_top), ``split``, ``duration``
    (s, of the full track, not the 30 s clip) and ``bit_rate`` (bit/s, NA if unknown).

    ``path`` is the official ``tracks.csv`` (restricted to ``subset``, with
    its split) or a flat export such as ``fma-rock-vs-hiphop.csv.gz`` (no split).
    """
    if _is_tracks_csv(path):
        raw = fma.load_tracks(path)
        kept, _ = fma.subset(raw, subset)
        rates = raw["track", "bit_rate"] if ("track", "bit_rate") in raw.columns else pd.Series(dtype=float)
        rate = rates.reindex(kept.track_id.astype(int)).to_numpy()
    else:
        kept, _ = fma.load_export(path)
        rate = kept["bit_rate"].to_numpy() if "bit_rate" in kept else np.full(len(kept), np.nan)
    return pd.DataFrame({"track_id": kept.track_id, "label": kept.label, "split": kept.split,
                         "duration": kept.duration.astype(float), "bit_rate": pd.array(rate, dtype="Float64")})


def _is_tracks_csv(path: str | os.PathLike) -> bool:
    from utils.data.catalog import is_official_tracks_csv

    return is_official_tracks_csv(path)


def genre_hierarchy(genres: pd.DataFrame) -> pd.DataFrame:
    """Per top-level genre of ``genres.csv`` (:func:`utils.data.fma.load_genres`): ``tracks`` (its
    ``#tracks``), ``subgenres`` (genres below it), ``depth`` (levels below it) and
    ``examples`` (up to three direct children), largest first."""
    depth = {}

    def level(gid: int) -> int:  # 0 for a root
        if gid not in depth:
            parent = int(genres.parent[gid])
            depth[gid] = 0 if parent == 0 else 1 + level(parent)
        return depth[gid]

    levels = pd.Series({gid: level(gid) for gid in genres.index})
    rows = []
    for gid, root in fma.top_level_genres(genres).iterrows():
        below = genres[(genres.top_level == gid) & (genres.index != gid)]
        children = genres[genres.parent == gid].sort_values("#tracks", ascending=False).title
        rows.append({"genre": root.title, "tracks": int(root["#tracks"]), "subgenres": len(below),
                     "depth": int(levels[below.index].max()) if len(below) else 0,
                     "examples": ", ".join(children.head(3))})
    return pd.DataFrame(rows).sort_values("tracks", ascending=False, ignore_index=True)


def clip_durations(paths: Sequence[str | os.PathLike], limit: int | None = 200,
                   seed: int = 0) -> pd.Series:
    """Measured length in seconds of (at most ``limit``, drawn with ``seed``) audio files,
    indexed by path; files that cannot be decoded are NaN (their error is the cache's business)."""
    paths = [str(p) for p in paths]
    if limit is not None and len(paths) > limit:
        paths = sorted(np.random.default_rng(seed).choice(paths, limit, replace=False))
    seconds = {}
    for p in paths:
        try:
            y, sr = audio.decode(p)
            seconds[p] = len(y) / sr
        except audio.AudioError:
            seconds[p] = np.nan
    return pd.Series(seconds, name="seconds", dtype=float)


def examples(tracks: pd.DataFrame, per_label: int = 1) -> pd.DataFrame:
    """The first ``per_label`` labelled tracks (by track id) of each label, labels sorted."""
    labelled = tracks[tracks.label.notna() & tracks.path.notna()].sort_values(["label", "track_id"])
    return labelled.groupby("label", sort=True).head(per_label).reset_index(drop=True)


def listen(path: str | os.PathLike, seconds: float = 5.0, sr: int = 22050):
    """An ``IPython.display.Audio`` player for ``seconds`` from the middle of ``path``.

    The excerpt is embedded in the notebook as 16-bit WAV (``2 * sr * seconds``
    bytes, 220 kB for 5 s at 22,050 Hz), so an executed notebook stays small.
    """
    from IPython.display import Audio

    y, native = audio.decode(path)
    start = max(0.0, (len(y) / native - seconds) / 2)
    return Audio(data=audio.load(path, sr, offset=start, duration=seconds), rate=sr)


# --- figures of the data ---------------------------------------------------------------------

def plot_per_genre(table: pd.DataFrame, column: str, xlabel: str, title: str, log: bool = False) -> Figure:
    """Horizontal box plot of ``table[column]`` per ``label`` (outliers hidden, median marked)."""
    import seaborn as sns

    data = table.dropna(subset=[column, "label"]).astype({column: float})
    order = data.groupby("label")[column].median().sort_values().index
    fig = Figure(figsize=(7, 1.2 + 0.45 * len(order)), layout="constrained")
    ax = fig.subplots()
    sns.boxplot(data, x=column, y="label", order=order, showfliers=False, log_scale=log, ax=ax)
    ax.set(xlabel=xlabel, ylabel="", title=title)
    return fig


def plot_bit_rates(table: pd.DataFrame, top: int = 6) -> Figure:
    """Share of each genre's tracks at the ``top`` most common bit rates (kbit/s)."""
    import seaborn as sns

    data = table.dropna(subset=["bit_rate", "label"])
    kbps = (data.bit_rate.astype(float) // 1000).astype(int)
    common = kbps.value_counts().head(top).index
    share = (pd.crosstab(data.label, kbps.where(kbps.isin(common), -1), normalize="index")
             .rename(columns={-1: "other"}).reset_index()
             .melt("label", var_name="kbit/s", value_name="share"))
    share["kbit/s"] = share["kbit/s"].astype(str)
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.subplots()
    sns.barplot(share, x="kbit/s", y="share", hue="label", ax=ax)
    ax.set(ylabel="share of the genre's tracks", title=f"MP3 bit rates ({len(data):,} tracks)")
    return fig


def plot_genre_hierarchy(hierarchy: pd.DataFrame) -> Figure:
    """Tracks per top-level genre (log scale), each bar labelled with its number of sub-genres."""
    fig = Figure(figsize=(7, 1.2 + 0.35 * len(hierarchy)), layout="constrained")
    ax = fig.subplots()
    ax.barh(hierarchy.genre, hierarchy.tracks, color="steelblue")
    for y, (n, sub) in enumerate(zip(hierarchy.tracks, hierarchy.subgenres)):
        ax.text(n, y, f" {sub} sub-genres", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlabel="tracks (genres.csv #tracks)",
           title=f"FMA genre tree: {len(hierarchy)} top-level genres, "
                 f"{int(hierarchy.subgenres.sum())} below them")
    return fig


def plot_waveforms(clips: Mapping[str, tuple[np.ndarray, int]], seconds: float = 5.0) -> Figure:
    """The first ``seconds`` of each clip (``label -> (samples, Hz)``), one panel each."""
    import librosa.display

    fig = Figure(figsize=(9, 1.1 * len(clips) + 0.6), layout="constrained")
    axes = fig.subplots(len(clips), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, (y, sr)) in zip(axes, clips.items()):
        librosa.display.waveshow(y[: int(seconds * sr)], sr=sr, ax=ax, color="steelblue")
        ax.set(ylabel="", xlabel="")
        ax.set_title(label, loc="left", fontsize=9)
    axes[-1].set_xlabel("time (s)")
    return fig


# --- spectrograms ----------------------------------------------------------------------------

def frontend_variants(base: FrontEnd, parameter: str, values: Sequence) -> dict[str, FrontEnd]:
    """``base`` with ``parameter`` set to each of ``values``: ``{"n_fft = 512": FrontEnd, ...}``;
    a value that does not fit ``base`` (an ``n_fft`` below its hop) is left out."""
    variants = {}
    for v in values:
        try:
            variants[f"{parameter} = {v}"] = dataclasses.replace(base, **{parameter: v})
        except ValueError:  # FrontEnd refuses the combination
            continue
    return variants


def log_variants(y: np.ndarray, fe: FrontEnd = FrontEnd()) -> dict[str, np.ndarray]:
    """The Mel power of ``y`` without a log, in dB, and as musicnn's ``log10(1 + 10000 S)``:
    why the log matters (time-major, ``(n_frames, n_mels)``)."""
    db = LogMel(dataclasses.replace(fe, log="db"))(y)
    return {"power (no log)": np.power(10.0, db / 10.0), "dB: 10 log10(S)": db,
            "log10(1 + 10000 S)": LogMel(dataclasses.replace(fe, log="log10_1p"))(y)}


def plot_spectrograms(panels: Mapping[str, tuple[np.ndarray, FrontEnd]], ncols: int = 2,
                      title: str = "", colorbar: str = "dB", shared_scale: bool = False) -> Figure:
    """Log-Mel spectrograms side by side: ``title -> (S (n_frames, n_mels), its FrontEnd)``.

    Axes in seconds and Hz (Mel scale), so panels made with different front
    ends compare. Each panel has its own colour scale, or with
    ``shared_scale`` one for all (to compare levels, e.g. of mean spectrograms).
    """
    import librosa.display

    values = np.concatenate([S.ravel() for S, _ in panels.values()]) if shared_scale else None
    limits = {} if values is None else {"vmin": float(values.min()), "vmax": float(values.max())}
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 2.8 * nrows + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, (S, fe)) in zip(axes, panels.items()):
        image = librosa.display.specshow(S.T, sr=fe.sample_rate, hop_length=fe.hop_length,
                                         x_axis="time", y_axis="mel", fmin=fe.fmin,
                                         fmax=fe.fmax or fe.sample_rate / 2, cmap="magma", ax=ax, **limits)
        fig.colorbar(image, ax=ax, label=colorbar, pad=0.01)
        ax.set_title(name, fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def mean_spectrograms(cache: Cache, windows: Windows, max_windows: int | None = 2000,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Mean window ``(window_frames, n_mels)`` in dB of each label's windows (sorted by label).

    At most ``max_windows`` windows per label are read, drawn with ``seed``,
    so the cost is bounded on fma_medium (25,000 tracks, 500,000 windows).
    """
    rng = np.random.default_rng(seed)
    means = {}
    for label in sorted(set(windows.label)):
        idx = np.flatnonzero(windows.label == label)
        if max_windows is not None and len(idx) > max_windows:
            idx = np.sort(rng.choice(idx, max_windows, replace=False))
        total = np.zeros((cache.fe.window_frames, cache.fe.n_mels))
        for s in range(0, len(idx), _CHUNK):
            total += cache.read(windows, idx[s:s + _CHUNK]).sum(axis=0)
        means[label] = (total / len(idx)).astype(np.float32)
    return means


def mean_spectra(means: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Each label's mean spectrum in dB (mean over time of its mean window): labels x Mel bands."""
    return pd.DataFrame({label: m.mean(axis=0) for label, m in means.items()}).T.rename_axis("label")


def genre_distances(spectra: pd.DataFrame) -> pd.DataFrame:
    """Euclidean distance (dB) between the mean spectra of every pair of labels."""
    x = spectra.to_numpy(np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1))
    return pd.DataFrame(d, index=spectra.index, columns=spectra.index)


def distinct_order(distances: pd.DataFrame) -> list[str]:
    """Labels ordered "most distinct first": the farthest pair, then each time the label
    whose nearest already-chosen label is farthest (greedy max-min). Ties go to the
    label first in ``distances``' order, so the order is deterministic."""
    labels = list(distances.index)
    if len(labels) < 2:
        return labels
    d = distances.to_numpy()
    i, j = np.unravel_index(np.argmax(d), d.shape)
    chosen = [min(i, j), max(i, j)]
    while len(chosen) < len(labels):
        rest = [k for k in range(len(labels)) if k not in chosen]
        chosen.append(max(rest, key=lambda k: (d[k, chosen].min(), -k)))
    return [labels[k] for k in chosen]


def plot_mean_spectra(spectra: pd.DataFrame, fe: FrontEnd) -> Figure:
    """Each label's mean spectrum (dB) against Mel-band centre frequency (Hz, log axis)."""
    import librosa

    hz = librosa.mel_frequencies(fe.n_mels + 2, fmin=fe.fmin, fmax=fe.fmax or fe.sample_rate / 2)[1:-1]
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, row in spectra.iterrows():
        ax.plot(hz, row.to_numpy(), label=label, lw=1.2)
    ax.set_xscale("log")
    ax.set(xlabel="Mel band centre (Hz)", ylabel="mean level (dB)", title="Mean spectrum per genre")
    ax.legend(fontsize=8, ncols=2)
    return fig


def plot_distances(distances: pd.DataFrame, order: Sequence[str]) -> Figure:
    """Heatmap of :func:`genre_distances`, rows and columns in ``order``."""
    import seaborn as sns

    d = distances.loc[list(order), list(order)]
    size = 2.5 + 0.5 * len(d)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(d, annot=len(d) <= 12, fmt=".0f", cmap="viridis", square=True,
                cbar_kws={"label": "distance between mean spectra (dB)"}, ax=ax)
    ax.set(xlabel="", ylabel="", title="How far apart the genres sound (most distinct first)")
    return fig
