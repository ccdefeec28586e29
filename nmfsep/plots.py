"""Figures: spectral atoms, activations, spectrograms, masks, loss curves and rank searches.

This is the only module of nmfsep that imports matplotlib, and it does so lazily
(inside the functions), so ``import nmfsep.plots`` costs nothing. Nothing here calls
``plt.show()``: every axes-level function takes ``ax=None`` (a new figure is created
when it is None) and returns the axes it drew on; the figure builders return a
:class:`matplotlib.figure.Figure`; :func:`save_figure` writes PNG or SVG atomically and
closes the figure.

Shapes follow the rest of nmfsep (``V ≈ W @ H``):

* ``V`` ``(n_frames, n_bins)`` — one row per STFT frame; a complex STFT ``X`` is
  ``(n_channels, n_bins, n_frames)`` as :func:`nmfsep.spectral.stft` returns it;
* ``H`` ``(k, n_bins)`` — spectral atoms, one per row;
* ``W`` ``(n_frames, k)`` — activations, one column per atom;
* ``masks`` ``(n_groups, n_frames, n_bins)``.

Frequencies are in Hz (``n_fft`` defaults to ``2 * (n_bins - 1)``), times in seconds;
frame ``t`` is drawn centred on ``t * hop_length / sr`` (``center=True`` STFT).
Long signals are averaged over blocks of frames before drawing (at most
``max_frames`` columns), so a figure of an hour of audio stays fast and small.

The figure builders are written against attribute names (duck typing), so they accept
:class:`nmfsep.dictionary.Dictionary`, the separation result and saved model of
:mod:`nmfsep.separate`, or any object with the same attributes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nmfsep._checks import check_choice, check_int, check_real
from nmfsep._checks import check_sr as _check_sr
from nmfsep._checks import is_int as _is_int
from nmfsep.exceptions import OutputError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FIGURE_FORMATS",
    "plot_atoms",
    "plot_activations",
    "plot_spectrogram",
    "plot_masks",
    "plot_loss",
    "dictionary_figure",
    "separation_figure",
    "rank_figure",
    "check_figure_path",
    "save_figure",
    "plot_file",
    "use_headless_backend",
    "png_base64",
    "spectrogram_strip",
]

#: Figure file suffixes that :func:`save_figure` writes, and their matplotlib format.
FIGURE_FORMATS: dict[str, str] = {".png": "png", ".svg": "svg"}

_FREQ_SCALES = ("log", "linear")
_MAX_FRAMES = 1500  # columns drawn per time panel; longer signals are block-averaged
_AMIN = 1e-10
_MAX_LEGEND = 12  # more sources than this: no legend (the y tick labels name them)
_MAX_NAMED_TICKS = 24  # more sources than this: atom indices on the y axis instead of names


# ---------------------------------------------------------------------- checks


def _check_hop(hop_length: object) -> int:
    return check_int(hop_length, "hop_length", 1)


def _check_n_fft(n_fft: object, n_bins: int) -> int:
    if n_fft is None:
        if n_bins < 2:
            raise ParameterError(f"cannot infer n_fft from {n_bins} frequency bin; pass n_fft")
        return 2 * (n_bins - 1)
    size = check_int(n_fft, "n_fft", 2)
    if size // 2 + 1 != n_bins:
        raise ParameterError(
            f"n_fft={size} gives {size // 2 + 1} frequency bins but the data has {n_bins}; "
            "pass the n_fft the data was computed with"
        )
    return size


def _all_finite(arr: np.ndarray) -> bool:
    if arr.size <= 1 << 22:
        return bool(np.isfinite(arr).all())
    return all(bool(np.isfinite(part).all()) for part in arr)  # row by row: no big temporary


def _check_array(x: object, name: str, ndim: int, shape_doc: str) -> np.ndarray:
    """Return ``x`` as a real finite array (no copy when possible; never written to)."""
    arr = np.asarray(x)
    if arr.ndim != ndim or 0 in arr.shape:
        raise ParameterError(f"{name} must be a non-empty array {shape_doc}, got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise ParameterError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not _all_finite(arr):
        raise ParameterError(f"{name} contains NaN or Inf values; they cannot be plotted")
    return arr


def _check_freq_scale(freq_scale: object) -> str:
    return str(check_choice(freq_scale, "freq_scale", _FREQ_SCALES))


def _check_duration(duration: object) -> float | None:
    return check_real(duration, "duration", 0.0, strict=True, none_ok=True)


# ---------------------------------------------------------------------- helpers


def _plt() -> Any:
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        from matplotlib.axes import Axes as _Axes

        if not isinstance(ax, _Axes):
            raise ParameterError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    _, ax = _plt().subplots(figsize=figsize, layout="constrained")
    return ax


def _pool_frames(A: np.ndarray, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Average blocks of consecutive frames (axis 0) so that at most ``max_frames`` remain.

    Returns the pooled float array (a new array, or ``A`` itself when nothing is pooled)
    and the frame index edges of the blocks ``(n_blocks + 1,)``.
    """
    n = A.shape[0]
    factor = max(1, -(-n // max(1, int(max_frames))))
    if factor == 1:
        return A, np.arange(n + 1)
    starts = np.arange(0, n, factor)
    sums = np.add.reduceat(A, starts, axis=0, dtype=np.float64)  # no full float64 copy
    counts = np.diff(np.r_[starts, n]).reshape((-1,) + (1,) * (A.ndim - 1))
    return sums / counts, np.r_[starts, n]


def _time_edges(frame_edges: np.ndarray, sr: float, hop_length: int) -> np.ndarray:
    """Edges in seconds of the cells of frame blocks; frame t is centred on t * hop / sr."""
    edges = (frame_edges.astype(np.float64) - 0.5) * hop_length / sr
    edges[0] = 0.0
    return edges


def _freq_edges(n_bins: int, sr: float, n_fft: int) -> np.ndarray:
    """Edges in Hz of the frequency bins (bin j centred on j * sr / n_fft), within [0, sr/2]."""
    freqs = np.arange(n_bins) * (sr / n_fft)
    half = 0.5 * sr / n_fft
    edges = np.r_[freqs - half, freqs[-1] + half]
    return np.clip(edges, 0.0, sr / 2.0)


def _time_freq_image(
    ax: Axes, data: np.ndarray, frame_edges: np.ndarray, sr: float, hop_length: int,
    n_fft: int, freq_scale: str, duration: float | None, **style: Any,
) -> Any:
    """Draw ``data`` ``(n_bins, n_blocks)`` on time (s) by frequency (Hz) axes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    data : np.ndarray [shape=(n_bins, n_blocks)]
        One column per block of frames (see :func:`_pool_frames`).
    frame_edges : np.ndarray [shape=(n_blocks + 1,)]
        First frame of each block, and the number of frames.
    sr, hop_length, n_fft : float, int, int
        Sample rate, hop and FFT size of the frames.
    freq_scale : {"log", "linear"}
        Frequency axis scale.
    duration : float or None
        Length of the time axis in seconds; None: up to the last frame.
    **style
        Passed to :func:`librosa.display.specshow` (``cmap``, ``vmin``/``vmax``, ``norm``).

    Returns
    -------
    matplotlib.collections.QuadMesh
        The image, e.g. for a colour bar.
    """
    import librosa.display

    t_edges = _time_edges(frame_edges, sr, hop_length)
    mesh = librosa.display.specshow(
        data,
        x_axis="s",
        y_axis="log" if freq_scale == "log" else "linear",
        x_coords=t_edges,
        y_coords=_freq_edges(data.shape[0], sr, n_fft),
        sr=sr,
        hop_length=hop_length,
        n_fft=n_fft,
        ax=ax,
        **style,
    )
    _set_freq_axis(ax, "y", freq_scale, sr)
    _set_time_axis(ax, duration if duration is not None else float(t_edges[-1]))
    return mesh


def _db(A: np.ndarray, *, power: float, top_db: float, per_row: bool) -> np.ndarray:
    """``(20 / power) * log10(A / ref)`` clipped to ``[-top_db, 0]``; ref is the max (per row)."""
    A = np.maximum(A.astype(np.float64, copy=False), 0.0)
    ref = A.max(axis=1, keepdims=True) if per_row else np.full((1, 1), A.max())
    ok = ref > 0
    safe_ref = np.where(ok, ref, 1.0)
    out = (20.0 / power) * np.log10(np.maximum(A, _AMIN) / safe_ref)
    out = np.where(ok, out, -top_db)
    return np.clip(out, -top_db, 0.0)


def _normalize_rows(A: np.ndarray) -> np.ndarray:
    """Scale every row to a maximum of 1 (rows of zeros stay zero)."""
    A = np.maximum(A.astype(np.float64, copy=False), 0.0)
    peak = A.max(axis=1, keepdims=True)
    return A / np.where(peak > 0, peak, 1.0)


def _source_colors(names: Sequence[str | None]) -> dict[Any, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(names) <= 10 else colormaps["tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _ramp(color: Any, name: str) -> Any:
    """Return a colormap from white to ``color``."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(f"nmfsep_{name}", ["white", color])


def _layout(
    k: int, labels: Sequence[str] | None, groups: Mapping[str, Sequence[int]] | None
) -> tuple[np.ndarray, list[tuple[str | None, int, int]]]:
    """Order the k components by source.

    Returns
    -------
    order : np.ndarray [shape=(k,)]
        Component indices, source by source.
    spans : list of (name, start, stop)
        Rows ``start:stop`` of the ordered components belong to source ``name``
        (a single span with name None when neither labels nor groups are given).
    """
    if labels is not None and groups is not None:
        raise ParameterError("give labels or groups, not both")
    if labels is not None:
        if isinstance(labels, str):
            raise ParameterError("labels must be a sequence of source names, one per component")
        names = [str(x) for x in labels]
        if len(names) != k:
            raise ParameterError(f"{len(names)} labels for {k} components; give one per component")
        by_name: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            by_name.setdefault(name, []).append(i)
        groups = by_name
    if groups is None:
        return np.arange(k), [(None, 0, k)]
    if not isinstance(groups, Mapping):
        raise ParameterError(f"groups must map source names to component indices, got {groups!r}")
    order: list[int] = []
    spans: list[tuple[str | None, int, int]] = []
    seen: set[int] = set()
    for name, idx in groups.items():
        members = []
        for i in np.atleast_1d(np.asarray(idx)).tolist():
            if not _is_int(i) or not 0 <= i < k or i in seen:
                raise ParameterError(
                    f"groups[{name!r}] must hold distinct component indices in [0, {k}), "
                    f"got {idx!r}"
                )
            seen.add(i)
            members.append(i)
        if members:
            spans.append((str(name), len(order), len(order) + len(members)))
            order.extend(members)
    rest = [i for i in range(k) if i not in seen]
    if rest:
        spans.append(("other", len(order), len(order) + len(rest)))
        order.extend(rest)
    if len(spans) > _MAX_NAMED_TICKS or (
        len(spans) > _MAX_LEGEND and all(stop - start == 1 for _, start, stop in spans)
    ):
        # e.g. blind NMF, one group per component: colours and separators would be noise
        spans = [(None, 0, k)]
    return np.asarray(order, dtype=np.intp), spans


def _limit(
    order: np.ndarray, spans: list[tuple[str | None, int, int]], max_atoms: int | None
) -> tuple[np.ndarray, list[tuple[str | None, int, int]]]:
    """Keep at most ``max_atoms`` components, taking them round-robin over the sources."""
    if max_atoms is None or max_atoms >= len(order):
        return order, spans
    check_int(max_atoms, "max_atoms", 1, none_ok=True)
    quota = [0] * len(spans)
    left = int(max_atoms)
    while left:
        for s, (_, start, stop) in enumerate(spans):
            if left and quota[s] < stop - start:
                quota[s] += 1
                left -= 1
    new_order: list[int] = []
    new_spans: list[tuple[str | None, int, int]] = []
    for (name, start, _), q in zip(spans, quota, strict=True):
        if q:
            new_spans.append((name, len(new_order), len(new_order) + q))
            new_order.extend(order[start : start + q].tolist())
    return np.asarray(new_order, dtype=np.intp), new_spans


def _decorate_sources(
    ax: Axes,
    spans: list[tuple[str | None, int, int]],
    colors: Mapping[Any, Any],
    *,
    what: str,
) -> None:
    """Separators between sources, source names as coloured y ticks, first row on top."""
    n = spans[-1][2]
    ax.set_ylim(n - 0.5, -0.5)
    named = spans[0][0] is not None
    for _, start, _ in spans[1:]:
        ax.axhline(start - 0.5, color="black", linewidth=0.8)
    if named and len(spans) <= _MAX_NAMED_TICKS:
        ax.set_yticks([(start + stop - 1) / 2 for _, start, stop in spans])
        ax.set_yticklabels([str(name) for name, _, _ in spans])
        for tick, (name, _, _) in zip(ax.get_yticklabels(), spans, strict=True):
            tick.set_color(colors[name])
        ax.set_ylabel(f"{what} by source")
    else:
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.set_ylabel(what if not named else f"{what} (grouped by source)")


def _source_legend(ax: Axes, spans: list[tuple[str | None, int, int]], colors: Any) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[name], label=str(name)) for name, _, _ in spans]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        frameon=False,
        fontsize="small",
        title="source",
        title_fontsize="small",
    )


def _hz_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    def fmt(x: float, _pos: int | None = None) -> str:
        if abs(x) >= 1000:
            return f"{x / 1000:g}k"
        return f"{x:g}"

    return FuncFormatter(fmt)


# Round frequencies in the order they earn a tick on a log axis; a candidate is skipped
# when it would sit too close to one already chosen (narrow panels get fewer ticks).
_HZ_TICKS = (1000, 100, 10000, 0, 5000, 500, 2000, 200, 20000, 50, 300, 3000)


def _hz_locator(which: str) -> Any:
    from matplotlib.ticker import Locator

    min_px = 38.0 if which == "x" else 16.0

    class _HzLocator(Locator):
        """Round frequencies, as many as fit without overlapping labels."""

        def __call__(self) -> list[float]:
            axis: Any = self.axis
            if axis is None:
                return []
            lo, hi = sorted(axis.get_view_interval())
            bbox = axis.axes.bbox
            length = bbox.width if which == "x" else bbox.height
            transform = axis.get_transform()
            t_lo, t_hi = transform.transform(np.array([lo, hi], dtype=float))
            if not np.isfinite([t_lo, t_hi]).all() or t_hi == t_lo or length <= 0:
                return []
            scale = length / (t_hi - t_lo)
            chosen: list[float] = []
            taken: list[float] = []
            for f in _HZ_TICKS:
                if not lo <= f <= hi:
                    continue
                px = float(transform.transform(np.array([float(f)]))[0] - t_lo) * scale
                if all(abs(px - q) >= min_px for q in taken):
                    chosen.append(float(f))
                    taken.append(px)
            return sorted(chosen)

        def tick_values(self, vmin: float, vmax: float) -> list[float]:
            return [float(f) for f in sorted(_HZ_TICKS) if vmin <= f <= vmax]

    return _HzLocator()


def _set_freq_axis(ax: Axes, which: str, freq_scale: str, sr: float) -> None:
    """Frequency scale (log: librosa's symlog base 2 with a linear part below C2), Hz ticks."""
    from matplotlib.ticker import MaxNLocator, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    setter = ax.set_xscale if which == "x" else ax.set_yscale
    if freq_scale == "log":
        setter("symlog", base=2, linthresh=65.40639132514966, linscale=0.5)  # C2, as librosa
        axis.set_major_locator(_hz_locator(which))
        axis.set_minor_locator(NullLocator())
    else:
        setter("linear")
        axis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(_hz_formatter())
    axis.set_label_text("Frequency (Hz)")
    (ax.set_xlim if which == "x" else ax.set_ylim)(0.0, sr / 2.0)


def _set_time_axis(ax: Axes, right: float) -> None:
    ax.set_xlim(0.0, right)
    ax.set_xlabel("Time (s)")


def _note_axis(ax: Axes, freq_scale: str, sr: float) -> Axes:
    """Add a second x axis on top of a frequency axis, ticked at the C of every octave."""
    import librosa

    top = ax.twiny()
    _set_freq_axis(top, "x", freq_scale, sr)
    top.set_xlim(ax.get_xlim())
    lo, hi = ax.get_xlim()
    octaves = [f"C{o}" for o in range(0, 11)]
    freqs = np.asarray(librosa.note_to_hz(octaves), dtype=float)
    keep = (freqs > max(lo, 20.0)) & (freqs < hi)
    freqs = freqs[keep]
    # drop labels that would overlap (linear scale crowds the low octaves)
    transform = top.xaxis.get_transform()
    t_lo, t_hi = transform.transform(np.array([lo, hi]))
    pos = (transform.transform(freqs) - t_lo) / (t_hi - t_lo)
    chosen, last = [], -1.0
    for f, p in zip(freqs.tolist(), pos.tolist(), strict=True):
        if p - last >= 0.05:
            chosen.append(f)
            last = p
    top.set_xticks(chosen)
    top.set_xticklabels([librosa.hz_to_note(f, unicode=False) for f in chosen], fontsize="small")
    top.minorticks_off()
    top.set_xlabel("Note")
    ax.callbacks.connect("xlim_changed", lambda a: top.set_xlim(a.get_xlim()))
    return top


# ---------------------------------------------------------------------- axes level


def plot_atoms(
    H: np.ndarray,
    sr: float,
    n_fft: int | None = None,
    *,
    ax: Axes | None = None,
    freq_scale: str = "log",
    db: bool = True,
    labels: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
    note_names: bool = False,
    max_atoms: int | None = None,
    style: str = "image",
    top_db: float = 60.0,
    legend: bool = True,
    title: str | None = None,
) -> Axes:
    """Plot spectral atoms (rows of ``H``) against frequency in Hz, coloured by source.

    Each atom is one row of an image (frequency on x, atoms on y, first atom on top),
    scaled to its own maximum, in dB by default. With ``labels`` or ``groups`` the atoms
    are ordered source by source (sources in order of first appearance), every source
    is drawn with its own colour ramp, separated by a line, named on the y axis and
    listed in a legend.

    Parameters
    ----------
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms, one per row.
    sr : float
        Sample rate in Hz.
    n_fft : int or None
        FFT size; None means ``2 * (n_bins - 1)``.
    ax : matplotlib.axes.Axes or None
        Axes to draw on; None creates a figure.
    freq_scale : {"log", "linear"}
        Frequency axis scale ("log" is librosa's: linear below C2, log above).
    db : bool
        Show every atom in dB relative to its maximum (floor ``-top_db``); otherwise
        linear, scaled to a maximum of 1.
    labels : sequence of str [length k] or None
        Source name of every atom.
    groups : dict[str, list[int]] or None
        Alternatively, source name -> atom indices (atoms in no group go to "other").
    note_names : bool
        Add a second x axis on top with note names (C of every octave).
    max_atoms : int or None
        Draw at most this many atoms, taken in turn from every source.
    style : {"image", "lines"}
        ``"image"`` (readable up to ~100 atoms) or one line per atom, stacked.
    top_db : float
        Dynamic range in dB for ``db=True``.
    legend : bool
        Add a legend of the sources (at most 12) outside the axes, on the right.
    title : str or None
        Axes title.

    Returns
    -------
    ax : matplotlib.axes.Axes
        With one QuadMesh per source (``style="image"``) or one line per atom.
    """
    H = _check_array(H, "H", 2, "(k, n_bins)")
    sr = _check_sr(sr)
    freq_scale = _check_freq_scale(freq_scale)
    check_choice(style, "style", ("image", "lines"))
    k, n_bins = H.shape
    n_fft = _check_n_fft(n_fft, n_bins)
    order, spans = _limit(*_layout(k, labels, groups), max_atoms)
    names = [name for name, _, _ in spans]
    colors = _source_colors(names)
    ax = _new_axes(ax, (8.0, max(3.0, min(9.0, 1.5 + 0.1 * len(order)))))

    rows = H[order]
    if db:
        data, vmin, vmax = _db(rows, power=1.0, top_db=float(top_db), per_row=True), -top_db, 0.0
    else:
        data, vmin, vmax = _normalize_rows(rows), 0.0, 1.0
    f_edges = _freq_edges(n_bins, sr, n_fft)
    if style == "image":
        _draw_atom_images(ax, data, spans, colors, f_edges, sr, n_fft, freq_scale, (vmin, vmax))
    else:
        _draw_atom_lines(ax, data, spans, colors, sr, n_fft, (vmin, vmax))
    _set_freq_axis(ax, "x", freq_scale, sr)
    _decorate_sources(ax, spans, colors, what="atom")
    if legend and names[0] is not None and len(spans) <= _MAX_LEGEND:
        _source_legend(ax, spans, colors)
    if note_names:
        _note_axis(ax, freq_scale, sr)
    scale = f"dB re. each atom's max, floor -{top_db:g} dB" if db else "linear, max 1"
    if title is None:
        shown = f"{len(order)} of {k}" if len(order) < k else f"k={k}"
        title = f"Spectral atoms H ({shown}; {scale})"
    ax.set_title(title, fontsize="medium")
    return ax


def _draw_atom_images(
    ax: Axes, data: np.ndarray, spans: list[tuple[str | None, int, int]], colors: Any,
    f_edges: np.ndarray, sr: float, n_fft: int, freq_scale: str, limits: tuple[float, float],
) -> None:
    """Draw atoms as images, one colour ramp per source (``style="image"``).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    data : np.ndarray [shape=(n_shown, n_bins)]
        The atoms shown, scaled (dB or normalized), in display order.
    spans : list of (name, start, stop)
        Rows of ``data`` per source.
    colors : dict
        Colour per source name.
    f_edges : np.ndarray [shape=(n_bins + 1,)]
        Frequency bin edges in Hz.
    sr, n_fft, freq_scale
        As in :func:`plot_atoms`.
    limits : (float, float)
        ``vmin, vmax`` of the colour scale.
    """
    import librosa.display

    vmin, vmax = limits
    x_axis = "log" if freq_scale == "log" else "linear"
    for name, start, stop in spans:
        cmap = "magma" if name is None else _ramp(colors[name], str(name))
        librosa.display.specshow(
            data[start:stop],
            x_axis=x_axis,
            x_coords=f_edges,
            y_coords=np.arange(start, stop + 1) - 0.5,
            sr=sr,
            n_fft=n_fft,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            ax=ax,
        )


def _draw_atom_lines(
    ax: Axes, data: np.ndarray, spans: list[tuple[str | None, int, int]], colors: Any,
    sr: float, n_fft: int, limits: tuple[float, float],
) -> None:
    """Draw atoms as stacked lines, one colour per source (``style="lines"``).

    Parameters are those of :func:`_draw_atom_images`; atom ``r`` is drawn around
    ``y = r``, its top at ``r - 0.45``.
    """
    vmin, vmax = limits
    n_bins = data.shape[1]
    freqs = np.arange(n_bins) * (sr / n_fft)
    height = (data - vmin) / (vmax - vmin)
    for name, start, stop in spans:
        color = "black" if name is None else colors[name]
        for r in range(start, stop):
            ax.plot(
                freqs,
                r + 0.45 - 0.9 * height[r],
                color=color,
                linewidth=0.8,
                label=str(name) if (r == start and name is not None) else "_nolegend_",
            )


def plot_activations(
    W: np.ndarray,
    sr: float,
    hop_length: int,
    *,
    ax: Axes | None = None,
    labels: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
    duration: float | None = None,
    legend: bool = False,
    max_frames: int = _MAX_FRAMES,
    title: str | None = None,
) -> Axes:
    """Plot activations (columns of ``W``) over time in seconds, grouped by source.

    One row per atom (first atom on top), each scaled to its own maximum and shown with
    a square-root colour scale so that quiet onsets stay visible; with ``labels`` or
    ``groups`` rows are ordered source by source, each source in its own colour,
    separated by lines and named on the y axis.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)], non-negative
        Activations, one column per atom.
    sr : float
        Sample rate in Hz of the analysis.
    hop_length : int
        STFT hop in samples; frame ``t`` is centred on ``t * hop_length / sr``.
    ax : matplotlib.axes.Axes or None
        Axes to draw on; None creates a figure.
    labels : sequence of str [length k] or None
        Source name of every atom.
    groups : dict[str, list[int]] or None
        Alternatively, source name -> atom indices.
    duration : float or None
        Length of the clip in seconds: the x axis spans ``[0, duration]``. None spans
        the frames (``(n_frames - 0.5) * hop_length / sr``, within half a hop of the
        clip length for a ``center=True`` STFT).
    legend : bool
        Add a legend of the sources (at most 12) outside the axes, on the right.
    max_frames : int
        Average blocks of frames so that at most this many columns are drawn.
    title : str or None
        Axes title.

    Returns
    -------
    ax : matplotlib.axes.Axes
        With one QuadMesh per source.
    """
    import librosa.display
    from matplotlib.colors import PowerNorm

    W = _check_array(W, "W", 2, "(n_frames, k)")
    sr = _check_sr(sr)
    hop_length = _check_hop(hop_length)
    duration = _check_duration(duration)
    n_frames, k = W.shape
    order, spans = _layout(k, labels, groups)
    colors = _source_colors([name for name, _, _ in spans])
    ax = _new_axes(ax, (10.0, max(3.0, min(9.0, 1.5 + 0.1 * k))))

    pooled, frame_edges = _pool_frames(W, max_frames)
    data = _normalize_rows(np.asarray(pooled)[:, order].T)  # (k, n_blocks)
    t_edges = _time_edges(frame_edges, sr, hop_length)
    for name, start, stop in spans:
        cmap = "gray_r" if name is None else _ramp(colors[name], str(name))
        librosa.display.specshow(
            data[start:stop],
            x_axis="s",
            x_coords=t_edges,
            y_coords=np.arange(start, stop + 1) - 0.5,
            sr=sr,
            hop_length=hop_length,
            cmap=cmap,
            norm=PowerNorm(0.5, vmin=0.0, vmax=1.0),
            ax=ax,
        )
    _set_time_axis(ax, duration if duration is not None else float(t_edges[-1]))
    _decorate_sources(ax, spans, colors, what="atom")
    if legend and spans[0][0] is not None and len(spans) <= _MAX_LEGEND:
        _source_legend(ax, spans, colors)
    ax.set_title(
        title if title is not None else "Activations W (each row scaled to its max, √ scale)",
        fontsize="medium",
    )
    return ax


def _as_spectrogram(S: object) -> np.ndarray:
    """V (n_frames, n_bins) from V itself or from a complex STFT."""
    arr = np.asarray(S)
    if np.iscomplexobj(arr):
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        if arr.ndim != 3 or 0 in arr.shape:
            raise ParameterError(
                "a complex STFT must have shape (n_channels, n_bins, n_frames) or "
                f"(n_bins, n_frames), got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ParameterError("the STFT contains NaN or Inf values; they cannot be plotted")
        energy = (np.abs(arr).astype(np.float64) ** 2).mean(axis=0)  # (n_bins, n_frames)
        return np.sqrt(energy).T
    if arr.ndim != 2:
        raise ParameterError(
            "S must be a spectrogram V (n_frames, n_bins) or a complex STFT X "
            f"(n_channels, n_bins, n_frames), got a real array of shape {arr.shape}"
        )
    return _check_array(arr, "V", 2, "(n_frames, n_bins)")


def plot_spectrogram(
    S: np.ndarray,
    sr: float,
    hop_length: int,
    *,
    ax: Axes | None = None,
    db: bool = True,
    freq_scale: str = "log",
    title: str | None = None,
    n_fft: int | None = None,
    power: float = 1.0,
    top_db: float = 80.0,
    duration: float | None = None,
    colorbar: bool = True,
    max_frames: int = _MAX_FRAMES,
) -> Axes:
    """Plot a spectrogram: time in seconds on x, frequency in Hz on y, in dB.

    Parameters
    ----------
    S : np.ndarray
        Either a non-negative spectrogram ``V`` [shape=(n_frames, n_bins)] (magnitude
        raised to ``power``), or a complex STFT ``X`` [shape=(n_channels, n_bins,
        n_frames)] or [shape=(n_bins, n_frames)], shown as the magnitude of the channel
        mix, ``sqrt(mean over channels of |X|**2)`` (``power`` is then ignored).
    sr : float
        Sample rate in Hz.
    hop_length : int
        STFT hop in samples.
    ax : matplotlib.axes.Axes or None
        Axes to draw on; None creates a figure.
    db : bool
        dB relative to the maximum (floor ``-top_db``); otherwise linear magnitude.
    freq_scale : {"log", "linear"}
        Frequency axis scale.
    title : str or None
        Axes title.
    n_fft : int or None
        FFT size; None means ``2 * (n_bins - 1)``.
    power : float
        Exponent of ``V`` (1 magnitude, 2 power), for the dB conversion.
    top_db : float
        Dynamic range in dB.
    duration : float or None
        Clip length in seconds for the x range (see :func:`plot_activations`).
    colorbar : bool
        Add a colorbar (one more axes in the figure).
    max_frames : int
        Average blocks of frames so that at most this many columns are drawn.

    Returns
    -------
    ax : matplotlib.axes.Axes
        With one QuadMesh.
    """
    complex_input = np.iscomplexobj(np.asarray(S))
    V = _as_spectrogram(S)
    sr = _check_sr(sr)
    hop_length = _check_hop(hop_length)
    freq_scale = _check_freq_scale(freq_scale)
    duration = _check_duration(duration)
    if isinstance(power, bool) or not isinstance(power, Real) or not float(power) > 0:
        raise ParameterError(f"power must be a number > 0, got {power!r}")
    p = 1.0 if complex_input else float(power)
    n_frames, n_bins = V.shape
    n_fft = _check_n_fft(n_fft, n_bins)
    ax = _new_axes(ax, (10.0, 4.0))

    pooled, frame_edges = _pool_frames(V, max_frames)
    return _draw_spectrogram(
        ax, np.asarray(pooled), frame_edges, sr, hop_length, n_fft, db=db, power=p,
        top_db=float(top_db), freq_scale=freq_scale, duration=duration, colorbar=colorbar,
        title=title,
    )


def _draw_spectrogram(
    ax: Axes, pooled: np.ndarray, frame_edges: np.ndarray, sr: float, hop_length: int,
    n_fft: int, *, db: bool, power: float, top_db: float, freq_scale: str,
    duration: float | None, colorbar: bool, title: str | None,
) -> Axes:
    """Draw a frame-pooled spectrogram ``(n_blocks, n_bins)`` whose blocks span ``frame_edges``."""
    if db:
        data = _db(pooled.T, power=power, top_db=top_db, per_row=False)
        vmin, vmax, unit = -top_db, 0.0, "dB re. max"
    else:
        data = np.maximum(pooled.astype(np.float64).T, 0.0) ** (1.0 / power)
        vmin, vmax, unit = 0.0, float(data.max()) or 1.0, "magnitude"
    mesh = _time_freq_image(
        ax, data, frame_edges, sr, hop_length, n_fft, freq_scale, duration,
        cmap="magma", vmin=vmin, vmax=vmax,
    )
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, format="%+.0f" if db else None, pad=0.01)
        cb.set_label(unit)
    ax.set_title(title if title is not None else "Spectrogram", fontsize="medium")
    return ax


def _plot_mask(
    ax: Axes, M: np.ndarray, sr: float, hop_length: int, n_fft: int, freq_scale: str,
    duration: float | None, max_frames: int, cmap: str,
) -> Any:
    pooled, frame_edges = _pool_frames(M, max_frames)
    data = np.clip(np.asarray(pooled, dtype=np.float64).T, 0.0, 1.0)
    return _time_freq_image(
        ax, data, frame_edges, sr, hop_length, n_fft, freq_scale, duration,
        cmap=cmap, vmin=0.0, vmax=1.0,
    )


def plot_masks(
    masks: np.ndarray,
    sr: float,
    hop_length: int,
    *,
    names: Sequence[str] | None = None,
    axes: Sequence[Axes] | None = None,
    freq_scale: str = "log",
    n_fft: int | None = None,
    duration: float | None = None,
    colorbar: bool = True,
    cmap: str = "viridis",
    max_frames: int = _MAX_FRAMES,
) -> list[Axes]:
    """Plot one mask per group: time in seconds on x, frequency in Hz on y, values 0..1.

    Parameters
    ----------
    masks : np.ndarray [shape=(n_groups, n_frames, n_bins)], values in [0, 1]
        Soft or binary masks, one per group.
    sr : float
        Sample rate in Hz of the masks' STFT.
    hop_length : int
        STFT hop in samples.
    names : sequence of str [length n_groups] or None
        Group names, used as panel titles (None: "group 1", ...).
    axes : sequence of matplotlib.axes.Axes [length n_groups] or None
        One axes per group; None creates a figure with one row per group.
    freq_scale : {"log", "linear"}
        Frequency axis scale.
    n_fft : int or None
        FFT size; None means ``2 * (n_bins - 1)``.
    duration : float or None
        Clip length in seconds for the x range (see :func:`plot_activations`).
    colorbar : bool
        Add one colorbar (0..1) shared by all panels.
    cmap : str
        Colormap, drawn with the fixed range 0..1.
    max_frames : int
        Average blocks of frames so that at most this many columns are drawn.

    Returns
    -------
    axes : list of matplotlib.axes.Axes
        One per group, in order.
    """
    masks = _check_array(masks, "masks", 3, "(n_groups, n_frames, n_bins)")
    sr = _check_sr(sr)
    hop_length = _check_hop(hop_length)
    freq_scale = _check_freq_scale(freq_scale)
    duration = _check_duration(duration)
    n_groups, _, n_bins = masks.shape
    n_fft = _check_n_fft(n_fft, n_bins)
    if names is None:
        names = [f"group {g + 1}" for g in range(n_groups)]
    names = [str(n) for n in names]
    if len(names) != n_groups:
        raise ParameterError(f"{len(names)} names for {n_groups} masks; give one name per mask")
    if axes is None:
        _, grid = _plt().subplots(
            n_groups, 1, sharex=True, sharey=True, squeeze=False, layout="constrained",
            figsize=(10.0, 1.0 + 2.0 * n_groups),
        )
        axes = list(grid[:, 0])
    else:
        axes = list(np.ravel(np.asarray(axes, dtype=object)))
        if len(axes) != n_groups:
            raise ParameterError(f"{len(axes)} axes for {n_groups} masks; give one per mask")
    mesh = None
    for g, ax in enumerate(axes):
        mesh = _plot_mask(ax, masks[g], sr, hop_length, n_fft, freq_scale, duration, max_frames,
                          cmap)
        ax.set_title(f"Mask: {names[g]}", fontsize="medium")
    if colorbar and mesh is not None:
        cb = axes[0].figure.colorbar(mesh, ax=axes, pad=0.01)
        cb.set_label("mask value")
    return axes


def _plot_dominant(
    ax: Axes, masks: np.ndarray, names: Sequence[str], sr: float, hop_length: int, n_fft: int,
    freq_scale: str, duration: float | None, max_frames: int,
) -> Any:
    """One panel for many groups: the colour of the group with the largest mask per bin."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    G = masks.shape[0]
    pooled, frame_edges = _pool_frames(np.moveaxis(masks, 0, -1), max_frames)  # (t, f, G)
    winner = np.argmax(pooled, axis=-1).T  # (n_bins, n_blocks)
    if G <= 20:
        colors = _source_colors(list(names))
        cmap: Any = ListedColormap([colors[n] for n in names])
    else:
        from matplotlib import colormaps

        cmap = colormaps["turbo"].resampled(G)
    mesh = _time_freq_image(
        ax, winner, frame_edges, sr, hop_length, n_fft, freq_scale, duration,
        cmap=cmap, norm=BoundaryNorm(np.arange(G + 1) - 0.5, G),
    )
    ax.set_title(f"Dominant mask per bin ({G} groups)", fontsize="medium")
    cb = ax.figure.colorbar(mesh, ax=ax, pad=0.01)
    if G <= 20:
        cb.set_ticks(list(range(G)))
        cb.set_ticklabels([str(n) for n in names], fontsize="small")
        cb.set_label("group")
    else:
        from matplotlib.ticker import MaxNLocator

        cb.locator = MaxNLocator(nbins=8, integer=True)
        cb.update_ticks()
        cb.set_label("group index")
    return mesh


def plot_loss(
    loss_history: Sequence[float] | np.ndarray,
    iterations: Sequence[int] | np.ndarray | None = None,
    *,
    ax: Axes | None = None,
    log: bool = True,
    title: str | None = None,
) -> Axes:
    """Plot the objective against the iteration (or the check number).

    Parameters
    ----------
    loss_history : sequence of float [length n_checks]
        Objective values (non-finite values are skipped).
    iterations : sequence of int [length n_checks] or None
        Iteration of every value; None numbers the checks 0, 1, ...
    ax : matplotlib.axes.Axes or None
        Axes to draw on; None creates a figure.
    log : bool
        Logarithmic y axis (only when every value is > 0).
    title : str or None
        Axes title.

    Returns
    -------
    ax : matplotlib.axes.Axes
        With one line (none when the history is empty).
    """
    y = np.asarray(loss_history, dtype=np.float64).ravel()
    if iterations is None:
        x = np.arange(y.size, dtype=np.float64)
        xlabel = "loss check"
    else:
        x = np.asarray(iterations, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ParameterError(
                f"{x.size} iterations for {y.size} loss values; give one iteration per value"
            )
        xlabel = "iteration"
    ax = _new_axes(ax, (5.0, 3.5))
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if y.size == 0:
        ax.text(0.5, 0.5, "no loss recorded", transform=ax.transAxes, ha="center", va="center")
    else:
        ax.plot(x, y, color="C0", marker="o" if y.size <= 60 else None, markersize=3)
        if log and (y > 0).all():
            ax.set_yscale("log")
        ax.text(0.97, 0.95, f"final {y[-1]:.4g}", transform=ax.transAxes, ha="right",
                va="top", fontsize="small")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("objective (β-divergence)")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title if title is not None else "Convergence", fontsize="medium")
    return ax


# ---------------------------------------------------------------------- figures


def _figure(figsize: tuple[float, float]) -> Figure:
    return _plt().figure(figsize=figsize, layout="constrained")


def dictionary_figure(
    dictionary: Any,
    *,
    freq_scale: str = "log",
    note_names: bool = True,
    max_atoms: int | None = None,
) -> Figure:
    """Figure of a dictionary: its atoms coloured by source and each source's mean spectrum.

    Parameters
    ----------
    dictionary : nmfsep.dictionary.Dictionary or alike
        Any object with ``atoms`` (k, n_bins), ``labels`` (k names), ``sr`` and ``stft``
        (with ``n_fft``); ``power`` and ``beta`` are shown when present. Atoms that
        span ``context_frames`` > 1 frames ((k, T * n_bins)) are drawn as the mean of
        their frames.
    freq_scale : {"log", "linear"}
        Frequency axis scale.
    note_names : bool
        Note names on a second x axis on top.
    max_atoms : int or None
        Draw at most this many atoms, taken in turn from every source.

    Returns
    -------
    matplotlib.figure.Figure
        Axes: atoms (+ a note axis when ``note_names``), mean spectra.
    """
    H = _check_array(dictionary.atoms, "atoms", 2, "(k, n_bins)")
    context = int(getattr(dictionary, "context_frames", 1) or 1)
    if context > 1 and H.shape[1] % context == 0:
        # atoms spanning several frames (temporal context): draw each atom's mean spectrum
        H = H.reshape(H.shape[0], context, -1).mean(axis=1)
    labels = [str(x) for x in dictionary.labels]
    sr = _check_sr(dictionary.sr)
    n_fft = getattr(getattr(dictionary, "stft", None), "n_fft", None)
    k, n_bins = H.shape
    n_fft = _check_n_fft(n_fft, n_bins)
    order, spans = _layout(k, labels, None)
    shown = k if max_atoms is None else min(k, int(max_atoms))
    atoms_h = max(2.5, min(9.0, 1.0 + 0.1 * shown))
    fig = _figure((11.0, atoms_h + 3.2))
    gs = fig.add_gridspec(2, 1, height_ratios=[atoms_h, 2.2])
    ax_atoms = fig.add_subplot(gs[0])
    ax_mean = fig.add_subplot(gs[1], sharex=ax_atoms)
    plot_atoms(H, sr, n_fft, ax=ax_atoms, freq_scale=freq_scale, labels=labels,
               note_names=note_names, max_atoms=max_atoms)
    ax_atoms.set_xlabel("")
    ax_atoms.tick_params(labelbottom=False)

    colors = _source_colors([name for name, _, _ in spans])
    freqs = np.arange(n_bins) * (sr / n_fft)
    means = np.stack([H[order[a:b]].astype(np.float64).mean(axis=0) for _, a, b in spans])
    means_db = _db(means.reshape(1, -1), power=1.0, top_db=60.0, per_row=False).reshape(
        means.shape
    )  # dB re. the loudest source's peak
    for (name, _, _), curve in zip(spans, means_db, strict=True):
        ax_mean.plot(freqs, curve, color=colors[name], linewidth=1.2, label=str(name))
    ax_mean.set_ylim(-62.0, 3.0)
    ax_mean.set_ylabel("mean atom (dB)")
    _set_freq_axis(ax_mean, "x", freq_scale, sr)
    ax_mean.grid(True, alpha=0.3)
    ax_mean.set_title("Mean spectrum of each source's atoms", fontsize="medium")

    names = ", ".join(str(n) for n, _, _ in spans[:6]) + (" …" if len(spans) > 6 else "")
    extra = []
    if getattr(dictionary, "beta", None) is not None:
        extra.append(f"β={float(dictionary.beta):g}")
    if getattr(dictionary, "power", None) is not None:
        extra.append(f"power={float(dictionary.power):g}")
    fig.suptitle(
        f"Dictionary: {k} atoms, {len(spans)} source{'s' if len(spans) != 1 else ''} ({names})"
        f" · {sr:g} Hz · n_fft={n_fft}" + (" · " + ", ".join(extra) if extra else ""),
        fontsize="large",
    )
    return fig


def _stft_of(obj: Any, attr: str, settings: Mapping[str, Any]) -> Any:
    value = getattr(obj, attr, None)
    if value is None and isinstance(settings.get(attr), Mapping):
        from nmfsep.spectral import STFTConfig

        value = STFTConfig.from_dict(settings[attr])
    return value


def separation_figure(
    model: Any,
    *,
    mixture: np.ndarray | None = None,
    freq_scale: str = "log",
    max_mask_panels: int = 6,
) -> Figure:
    """Overview of a separation: spectrogram, atoms and activations by group, masks, loss.

    Layout (rows): the mixture spectrogram (or, without one, the NMF model ``W @ H``)
    next to the loss curve; the atoms next to their activations, sharing the atom axis
    and grouped by source; one mask per group (up to ``max_mask_panels``, three per row),
    or, for more groups, a single map of the dominant group per time-frequency bin.

    Parameters
    ----------
    model : separation result, saved model or alike
        Any object with ``W`` (n_frames, k), ``H`` (k, n_bins), ``groups`` (name ->
        component indices), ``sr`` and ``stft``; optional: ``masks`` (array, or a method
        returning one on the analysis grid), ``loss_history`` (+ ``loss_iterations``),
        ``stems`` (for the clip length), ``analysis_sr``/``analysis_stft`` or
        ``settings["analysis_sr"]``/``settings["analysis_stft"]`` (the grid of W and H;
        default ``sr``/``stft``), ``settings``.
    mixture : np.ndarray or None
        The mixture's complex STFT (n_channels, n_bins, n_frames) or spectrogram V
        (n_frames, n_bins) computed with ``model.stft`` at ``model.sr``. None uses an
        attribute ``mixture``, ``X`` or ``V`` of ``model`` if any, else ``W @ H``.
    freq_scale : {"log", "linear"}
        Frequency axis scale.
    max_mask_panels : int
        Most groups drawn as separate mask panels.

    Returns
    -------
    matplotlib.figure.Figure
        Axes labelled (``Axes.get_label()``) "spectrogram", "loss", "atoms",
        "activations" and "mask:<name>" (or "mask:dominant"), plus colorbars.
    """
    settings = getattr(model, "settings", None) or {}
    W = _check_array(model.W, "W", 2, "(n_frames, k)")
    H = _check_array(model.H, "H", 2, "(k, n_bins)")
    if W.shape[1] != H.shape[0]:
        raise ParameterError(f"W has {W.shape[1]} components but H has {H.shape[0]}")
    freq_scale = _check_freq_scale(freq_scale)
    groups = dict(getattr(model, "groups", None) or {})
    grid = _grids_of(model, settings, H.shape[1])
    duration = _clip_duration(model, grid.sr)
    masks, m_sr, m_hop = _masks_of(model, grid, H.shape[1])
    names = list(groups) if groups else [f"group {g + 1}" for g in range(
        0 if masks is None else masks.shape[0])]
    if masks is not None and masks.shape[0] != len(names):
        raise ParameterError(f"{masks.shape[0]} masks for {len(names)} groups")
    if mixture is None:
        for attr in ("mixture", "X", "V"):
            if getattr(model, attr, None) is not None:
                mixture = getattr(model, attr)
                break

    # ---- layout
    k = H.shape[0]
    G = 0 if masks is None else masks.shape[0]
    mask_panels = G if G <= max_mask_panels else (1 if G else 0)
    ncols_m = 1 if mask_panels <= 1 else (2 if mask_panels in (2, 4) else 3)
    mask_rows = -(-mask_panels // ncols_m) if mask_panels else 0
    comp_h = max(2.8, min(8.0, 1.2 + 0.1 * k))
    heights = [2.8, comp_h] + [2.2] * mask_rows
    fig = _figure((15.0, sum(heights) + 0.8))
    gs = fig.add_gridspec(len(heights), 6, height_ratios=heights)

    ax_spec = fig.add_subplot(gs[0, 0:4], label="spectrogram")
    _draw_mixture(ax_spec, mixture, W, H, grid, settings, freq_scale, duration)
    ax_loss = fig.add_subplot(gs[0, 4:6], label="loss")
    loss = getattr(model, "loss_history", None)
    plot_loss([] if loss is None else loss, getattr(model, "loss_iterations", None), ax=ax_loss)
    _draw_components(fig, gs, ax_spec, W, H, grid, groups or None, freq_scale, duration)
    if mask_panels and masks is not None:
        m_n_fft = grid.stft.n_fft if masks.shape[2] == grid.stft.n_bins and m_sr == grid.sr else (
            grid.a_n_fft if masks.shape[2] == H.shape[1] else None)
        _draw_masks(fig, gs, ax_spec, masks, names, (m_sr, m_hop, m_n_fft), ncols_m,
                    max_mask_panels, freq_scale, duration, _pans(model, groups, names))
    fig.suptitle(_separation_title(settings, k, names, grid.sr), fontsize="large")
    return fig


@dataclass(frozen=True)
class _Grids:
    """The time-frequency grids of a separation: output (``sr``, ``stft``) and analysis."""

    sr: float
    stft: Any
    a_sr: float
    a_stft: Any
    a_n_fft: int


def _grids_of(model: Any, settings: Mapping[str, Any], n_bins_a: int) -> _Grids:
    """Read the output and analysis grids of ``model`` (W and H are on the analysis grid).

    ``n_bins_a`` is the number of bins of ``H``; the analysis ``n_fft`` is inferred
    from it when the analysis STFT does not match it.
    """
    sr = _check_sr(model.sr)
    stft = model.stft
    a_sr = _check_sr(getattr(model, "analysis_sr", None) or settings.get("analysis_sr") or sr)
    a_stft = _stft_of(model, "analysis_stft", settings) or stft
    a_n_fft = a_stft.n_fft if a_stft.n_fft // 2 + 1 == n_bins_a else None
    return _Grids(sr, stft, a_sr, a_stft, _check_n_fft(a_n_fft, n_bins_a))


def _clip_duration(model: Any, sr: float) -> float | None:
    """Length in seconds of ``model.stems`` (None without stems)."""
    stems = getattr(model, "stems", None)
    if isinstance(stems, Mapping) and stems:
        n_samples = np.shape(next(iter(stems.values())))[-1]
        return n_samples / sr if n_samples else None
    return None


def _masks_of(
    model: Any, grid: _Grids, n_bins_a: int
) -> tuple[np.ndarray | None, float, int]:
    """Return the masks of ``model`` and their grid.

    ``model.masks`` is an array on the ``(sr, stft)`` grid (or the analysis grid when
    its bins say so), or a method giving them on the analysis grid.

    Returns
    -------
    masks : np.ndarray [shape=(n_groups, n_frames, n_bins)] or None
        Per-channel masks ``(n_groups, n_channels, n_frames, n_bins)`` are averaged
        over the channels.
    m_sr : float
        Their sample rate.
    m_hop : int
        Their hop length.
    """
    masks = getattr(model, "masks", None)
    m_sr, m_hop = grid.sr, grid.stft.hop_length
    if callable(masks):
        masks = masks()
        m_sr, m_hop = grid.a_sr, grid.a_stft.hop_length
    elif masks is not None:
        masks = np.asarray(masks)
        if masks.ndim == 3 and masks.shape[2] != grid.stft.n_bins and masks.shape[2] == n_bins_a:
            m_sr, m_hop = grid.a_sr, grid.a_stft.hop_length
    if masks is not None and np.ndim(masks) == 4:  # every channel its own: their mean
        masks = np.asarray(masks).mean(axis=1)
    if masks is not None:
        masks = _check_array(masks, "masks", 3, "(n_groups, n_frames, n_bins)")
    return masks, m_sr, m_hop


def _draw_mixture(
    ax: Axes, mixture: Any, W: np.ndarray, H: np.ndarray, grid: _Grids,
    settings: Mapping[str, Any], freq_scale: str, duration: float | None,
) -> None:
    """Draw the mixture's spectrogram, or without one the model ``W @ H``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    mixture : np.ndarray or None
        Complex STFT (n_channels, n_bins, n_frames) or V (n_frames, n_bins).
    W : np.ndarray [shape=(n_frames, k)]
    H : np.ndarray [shape=(k, n_bins)]
    grid : _Grids
    settings : Mapping
        The model's settings; ``settings["power"]`` is the exponent of a real
        spectrogram and of ``W @ H``.
    freq_scale, duration
        As in :func:`plot_spectrogram`.
    """
    if mixture is not None:
        V = _as_spectrogram(mixture)
        stft = grid.stft
        plot_spectrogram(V, grid.sr, stft.hop_length, ax=ax, freq_scale=freq_scale,
                         n_fft=stft.n_fft if V.shape[1] == stft.n_bins else None,
                         power=1.0 if np.iscomplexobj(mixture) else float(
                             settings.get("power", 1.0) or 1.0),
                         duration=duration, title="Mixture")
    else:
        # block means of W times H = block means of W @ H: no (n_frames, n_bins) temporary
        pooled, frame_edges = _pool_frames(W, _MAX_FRAMES)
        WH = np.asarray(pooled, dtype=np.float64) @ H.astype(np.float64)
        _draw_spectrogram(ax, WH, frame_edges, grid.a_sr, grid.a_stft.hop_length, grid.a_n_fft,
                          db=True, power=float(settings.get("power", 1.0) or 1.0), top_db=80.0,
                          freq_scale=freq_scale, duration=duration, colorbar=True,
                          title="NMF model W·H (the mixture as the model sees it)")


def _draw_components(
    fig: Figure, gs: Any, ax_spec: Axes, W: np.ndarray, H: np.ndarray, grid: _Grids,
    groups: Mapping[str, Any] | None, freq_scale: str, duration: float | None,
) -> None:
    """Draw the atoms next to their activations (row 1 of :func:`separation_figure`)."""
    ax_atoms = fig.add_subplot(gs[1, 0:2], label="atoms")
    ax_act = fig.add_subplot(gs[1, 2:6], sharey=ax_atoms, label="activations", sharex=ax_spec)
    plot_atoms(H, grid.a_sr, grid.a_n_fft, ax=ax_atoms, freq_scale=freq_scale, groups=groups,
               legend=False, title=f"Atoms H (k={H.shape[0]})")
    plot_activations(W, grid.a_sr, grid.a_stft.hop_length, ax=ax_act, groups=groups,
                     duration=duration, legend=True,
                     title="Activations W (rows scaled to their max)")
    ax_act.set_ylabel("")
    ax_act.tick_params(labelleft=False)


def _pans(model: Any, groups: dict, names: list[str]) -> list[float] | None:
    """Return each group's pan for a stereo factorization with gains (``model.Q``), or None."""
    Q = getattr(model, "Q", None)
    if Q is None or np.shape(Q)[0] != 2 or list(groups) != names:
        return None
    from nmfsep.ntf import group_positions

    power = float((getattr(model, "settings", None) or {}).get("power") or 1.0)
    found = group_positions(model.W, model.H, Q, groups, power)
    return [float(found[n][1]) for n in names]  # type: ignore[arg-type]


def _draw_masks(
    fig: Figure, gs: Any, ax_spec: Axes, masks: np.ndarray, names: list[str],
    mask_grid: tuple[float, int, int | None], ncols: int, max_panels: int, freq_scale: str,
    duration: float | None, pans: list[float] | None = None,
) -> None:
    """Draw one panel per mask (rows 2+), or the dominant group when there are too many.

    ``pans``: each group's stereo position (:func:`nmfsep.ntf.group_positions`), shown
    in the panel titles.

    Parameters
    ----------
    masks : np.ndarray [shape=(n_groups, n_frames, n_bins)]
    names : list of str
        One per group.
    mask_grid : (float, int, int or None)
        Sample rate, hop length and n_fft of the masks.
    ncols : int
        Mask panels per row.
    max_panels : int
        Most groups drawn as separate panels.
    """
    m_sr, m_hop, m_n_fft = mask_grid
    G = masks.shape[0]
    if G > max_panels:
        ax = fig.add_subplot(gs[2, :], label="mask:dominant", sharex=ax_spec)
        _plot_dominant(ax, masks, names, m_sr, m_hop, _check_n_fft(m_n_fft, masks.shape[2]),
                       freq_scale, duration, _MAX_FRAMES)
        return
    span = 6 // ncols
    mask_rows = -(-G // ncols)
    axes = []
    for g in range(G):
        r, c = divmod(g, ncols)
        axes.append(fig.add_subplot(gs[2 + r, c * span:(c + 1) * span],
                                    label=f"mask:{names[g]}", sharex=ax_spec))
    plot_masks(masks, m_sr, m_hop, names=names, axes=axes, freq_scale=freq_scale,
               n_fft=m_n_fft, duration=duration, max_frames=800)
    if pans is not None:  # where each stem sits (spatial="gains")
        for g, ax in enumerate(axes):
            ax.set_title(f"Mask: {names[g]} (pan {pans[g]:+.2f})", fontsize="medium")
    for g, ax in enumerate(axes):
        r, c = divmod(g, ncols)
        if c:
            ax.set_ylabel("")
        if r < mask_rows - 1 and g + ncols < G:
            ax.set_xlabel("")


def _separation_title(settings: Mapping[str, Any], k: int, names: list[str], sr: float) -> str:
    """Return the title of :func:`separation_figure`: k, groups, mode, β, mask and rate."""
    parts = []
    for key, fmt in (("mode", "{}"), ("beta", "β={:g}"), ("mask", "{} masks")):
        if settings.get(key) is not None:
            try:
                parts.append(fmt.format(settings[key]))
            except (TypeError, ValueError):
                pass
    return (
        f"Separation: k={k} components, {len(names)} group{'s' if len(names) != 1 else ''}"
        + (f" ({', '.join(names[:6])}{' …' if len(names) > 6 else ''})" if names else "")
        + (" · " + ", ".join(parts) if parts else "") + f" · {sr:g} Hz"
    )


def rank_figure(rank_result: Any) -> Figure:
    """Reconstruction error and stability against the number of components k.

    Parameters
    ----------
    rank_result : object
        With ``ks`` (n_k,), ``errors`` (n_k, n_seeds) or (n_k,), ``stability`` (n_k,)
        and ``suggested_k`` (int or None). ``mean_error``/``error`` and
        ``stabilities`` are accepted as alternative names.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing x: error (mean ± std over seeds, every seed as a dot) and
        stability, each with the suggested k marked by a dashed vertical line.
    """
    def first(*attrs: str) -> Any:
        for a in attrs:
            v = getattr(rank_result, a, None)
            if v is not None:
                return v
        raise ParameterError(f"rank_result has none of the attributes {attrs}")

    ks = np.asarray(first("ks"), dtype=np.float64).ravel()
    errors = np.asarray(first("errors", "mean_error", "error"), dtype=np.float64)
    if errors.ndim == 1:
        errors = errors[:, np.newaxis]
    if errors.shape[0] != ks.size:
        raise ParameterError(f"errors has {errors.shape[0]} rows for {ks.size} values of k")
    stability = getattr(rank_result, "stability", None)
    if stability is None:
        stability = getattr(rank_result, "stabilities", None)
    suggested = getattr(rank_result, "suggested_k", None)

    fig = _figure((7.0, 6.0))
    ax_err, ax_stab = fig.subplots(2, 1, sharex=True)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(errors, axis=1) if errors.size else errors
        std = np.nanstd(errors, axis=1) if errors.shape[1] > 1 else np.zeros_like(mean)
    if errors.shape[1] > 1:
        ax_err.fill_between(ks, mean - std, mean + std, color="C0", alpha=0.2, label="± 1 std")
        ax_err.plot(np.repeat(ks, errors.shape[1]), errors.ravel(), "o", color="C0",
                    alpha=0.35, markersize=3, label="seeds")
    ax_err.plot(ks, mean, "-o", color="C0", markersize=4, label="mean error")
    ax_err.set_ylabel("reconstruction error")
    ax_err.set_title("Error and stability against k", fontsize="medium")
    if stability is not None:
        stability = np.asarray(stability, dtype=np.float64).ravel()
        if stability.size != ks.size:
            raise ParameterError(f"stability has {stability.size} values for {ks.size} ks")
        ax_stab.plot(ks, stability, "-o", color="C1", markersize=4, label="stability")
    else:
        ax_stab.text(0.5, 0.5, "no stability recorded", transform=ax_stab.transAxes,
                     ha="center", va="center")
    ax_stab.set_ylabel("stability")
    ax_stab.set_xlabel("number of components k")
    if suggested is not None:
        for ax in (ax_err, ax_stab):
            ax.axvline(float(suggested), color="C3", linestyle="--", linewidth=1.2,
                       label=f"suggested k = {suggested}")
    from matplotlib.ticker import MaxNLocator

    ax_stab.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_err, ax_stab):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return fig


# ---------------------------------------------------------------------- files


def check_figure_path(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Check that ``path`` names a figure format nmfsep writes.

    Parameters
    ----------
    path : str or os.PathLike
        Output file name ending in ``.png`` or ``.svg`` (any case).

    Returns
    -------
    (pathlib.Path, str)
        The path and the matplotlib format (``"png"`` or ``"svg"``).

    Raises
    ------
    ParameterError
        If the suffix is not ``.png`` or ``.svg`` (the message names it).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in FIGURE_FORMATS:
        shown = repr(p.suffix) if p.suffix else "no suffix"
        raise ParameterError(
            f"{p}: cannot write a figure with {shown}; name the file .png or .svg"
        )
    return p, FIGURE_FORMATS[suffix]


def save_figure(
    fig: Figure, path: str | os.PathLike[str], *, force: bool = False, dpi: float = 120
) -> Path:
    """Write a figure as PNG or SVG (by suffix), atomically, then close it.

    The figure is written to a hidden temporary file in the target folder and renamed
    over ``path``, so ``path`` is never half-written. The figure is closed in every case
    (also when an error is raised), so figures never pile up.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or os.PathLike
        ``*.png`` or ``*.svg``; missing parent folders are created.
    force : bool
        Overwrite ``path`` if it exists.
    dpi : float
        Resolution of a PNG.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ParameterError
        If the suffix is neither ``.png`` nor ``.svg``.
    OutputError
        If ``path`` exists and ``force`` is False, is a folder, or cannot be written.
    """
    from nmfsep.io import atomic_output

    plt = _plt()
    try:
        p, fmt = check_figure_path(path)
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        with atomic_output(
            p, force=force, example="figure.png", hint="choose another output path with -o"
        ) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
        return p
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------- for reports


def use_headless_backend() -> None:
    """Select matplotlib's Agg backend (no window), unless pyplot is already loaded.

    Called before drawing figures that are only written to files or strings, so no
    display is needed; a program that already uses pyplot keeps its backend.
    """
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")


def png_base64(fig: Figure, *, dpi: float) -> str:
    """Render a figure as PNG, return it base64-encoded (ASCII), and close the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; closed in every case.
    dpi : float
        Resolution.

    Returns
    -------
    str
        The PNG bytes in base64, for a ``data:image/png;base64,`` URI. No date or
        software is stored, so the same figure gives the same string.
    """
    import base64
    import io as _stdio

    try:
        buf = _stdio.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
        return base64.b64encode(buf.getvalue()).decode("ascii")
    finally:
        _plt().close(fig)


def spectrogram_strip(X: np.ndarray, sr: float, stft: Any, duration: float) -> Figure:
    """Return a short, wide figure of one spectrogram (a report's thumbnail).

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        The STFT, as :func:`nmfsep.spectral.stft` returns it.
    sr : float
        Sample rate in Hz.
    stft : object
        Its settings (``hop_length`` and ``n_fft`` attributes).
    duration : float
        Length of the audio in seconds (the x range).

    Returns
    -------
    matplotlib.figure.Figure
        7.6 x 1.9 inches, at most 700 columns, small axis labels.
    """
    fig = _plt().figure(figsize=(7.6, 1.9), layout="constrained")
    ax = fig.add_subplot()
    plot_spectrogram(
        X, sr, stft.hop_length, ax=ax, n_fft=stft.n_fft, duration=duration, max_frames=700, title=""
    )
    ax.set_xlabel("time (s)", fontsize="small")
    ax.set_ylabel("Hz", fontsize="small")
    ax.tick_params(labelsize="small")
    return fig


def plot_file(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    force: bool = False,
    freq_scale: str = "log",
) -> Path:
    """Draw a dictionary file or a saved separation model and write the figure.

    What ``nmfsep plot D.npz|MODEL.npz -o fig.png|svg`` does: the file's metadata
    says which it is (:func:`dictionary_figure` or :func:`separation_figure`). When
    pyplot has not been imported yet, the non-interactive Agg backend is selected.

    Parameters
    ----------
    source : str or os.PathLike
        A dictionary (``nmfsep learn``) or a model (``nmfsep separate --save-model``).
    output : str or os.PathLike
        ``*.png`` or ``*.svg``.
    force : bool
        Overwrite ``output`` if it exists.
    freq_scale : {"log", "linear"}
        Frequency axis scale.

    Returns
    -------
    pathlib.Path
        The figure written.

    Raises
    ------
    ParameterError
        Bad output suffix or ``freq_scale``.
    DictionaryError
        ``source`` is not a readable nmfsep dictionary or model.
    OutputError
        ``output`` exists (without ``force``) or cannot be written.
    """
    out, _ = check_figure_path(output)
    _check_freq_scale(freq_scale)
    if out.exists() and not force and not out.is_dir():
        raise OutputError(f"{out}: exists; pass force=True to overwrite")
    from nmfsep._npz import parse_meta, read_npz
    from nmfsep.dictionary import Dictionary

    src = Path(source)
    meta = parse_meta(src, read_npz(src, ("meta",), what="dictionary or model")["meta"],
                      what="dictionary or model")
    use_headless_backend()
    if meta.get("kind") == "model":
        from nmfsep.model import load_model

        fig = separation_figure(load_model(src), freq_scale=freq_scale)
    else:
        fig = dictionary_figure(Dictionary.load(src), freq_scale=freq_scale)
    return save_figure(fig, out, force=force)
