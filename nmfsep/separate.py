"""Separating a mixture into stems: the nmfsep pipeline as one function.

::

    y (n_channels, n_samples) ──stft──▶ X (n_channels, n_bins, n_frames)
      ──model_spectrogram──▶ V (n_frames, n_bins), scaled to mean 1
      ──nmf──▶ W (n_frames, k) activations, H (k, n_bins) atoms
      ──groups──▶ {"piano": [...], "flute": [...], "residual": [...]}
      ──masks──▶ M (n_groups, n_frames, n_bins), Σ_g M_g = 1
      ──apply to every channel, istft──▶ stems {name: (n_channels, n_samples)}

Three modes:

* **blind**: ``n_components=k`` free atoms; one stem per component
  (``component_01`` ...), or ``n_sources=S`` stems ``source_1`` ... made by
  :func:`nmfsep.grouping.group_components`;
* **supervised**: ``dictionaries=[...]`` (fixed atoms); one stem per source name;
* **semi-supervised**: dictionaries plus ``n_free`` free atoms, whose stem is
  ``residual``.

Dictionaries whose atoms span T > 1 frames (temporal context, the default of
:func:`nmfsep.dictionary.learn_dictionary`) factorise V with every frame stacked with
its neighbours (:func:`nmfsep.context.stack_frames`); the result is then rewritten as
single-frame atoms ``H (k*T, n_bins)`` with shifted activations ``W (n_frames, k*T)``
(:func:`nmfsep.context.expand_factors`), so everything after ``nmf`` above is the same.

Masks, masked STFTs and inverse STFTs are computed a block of frames at a time
(:func:`_stem_blocks`); :func:`separate_file` writes every block of every stem as it
is computed, so it never holds all masks or all stems (its peak memory is the
mixture, its STFT and the factorization's).

:func:`separate` works on arrays; :func:`separate_file` is the file boundary
(load, separate, write every stem or none).
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nmfsep._checks import check_audio, check_rate
from nmfsep._checks import is_int as _is_int
from nmfsep._checks import is_real as _is_real
from nmfsep.dictionary import (
    Dictionary,
    atomic_savez,
    combine,
    default_power,
    fit_mismatch,
    parse_meta,
    read_npz,
)
from nmfsep.exceptions import AudioFormatError, DictionaryError, OutputError, ParameterError
from nmfsep.spectral import STFTConfig

__all__ = [
    "SeparationResult",
    "SeparationModel",
    "separate",
    "separate_file",
    "load_model",
    "stem_names",
    "DEFAULT_MASK_POWER",
    "SUPERVISED_MASK_POWER",
    "DEFAULT_GROUPING",
    "DEFAULT_COMPONENTS_PER_SOURCE",
]

#: Exponent of the α-Wiener masks of blind separation: 1 and 1.5 tie on blind duos
#: and trios (+0.07 / -0.31 dB for 1.5, benchmarks/bench_grouping.py at k=16).
DEFAULT_MASK_POWER = 1.0
#: Exponent of the α-Wiener masks with dictionaries (supervised, semi-supervised): with
#: the default dictionaries (48 atoms of 3 frames) 1.5 separated best over the four
#: benchmark tasks, between 1 (piano + flute -1.1 dB) and 2 (drums + bass -0.1 dB)
#: (benchmarks/bench_separation.py).
SUPERVISED_MASK_POWER = 1.5


def default_mask_power(supervised: bool) -> float:
    """Return the mask exponent used when none is given.

    Parameters
    ----------
    supervised : bool
        True when dictionaries are used.

    Returns
    -------
    float
        :data:`SUPERVISED_MASK_POWER` with dictionaries, else :data:`DEFAULT_MASK_POWER`.
    """
    return SUPERVISED_MASK_POWER if supervised else DEFAULT_MASK_POWER
#: Grouping of blind components into sources: "timbre" came closest to the oracle
#: grouping on duos and trios (benchmarks/bench_grouping.py).
DEFAULT_GROUPING = "timbre"
#: Blind components per source when only ``n_sources`` is given: 8 beat 4 on duos
#: and trios (benchmarks/bench_grouping.py).
DEFAULT_COMPONENTS_PER_SOURCE = 8

MODEL_FORMAT_VERSION = 1
RESIDUAL = "residual"
#: Blocks of stems computed ahead of the one being written (see :func:`_stem_blocks`).
_LOOKAHEAD = 2


# ---------------------------------------------------------------------- results


@dataclass
class SeparationResult:
    """What :func:`separate` produced.

    Attributes
    ----------
    stems : dict[str, np.ndarray]
        Stem name -> audio ``(n_channels, n_samples)`` float32, at the mixture's rate
        and length, in group order; the stems add up to the mixture.
    masks : np.ndarray [shape=(n_groups, n_frames, n_bins)], float32
        The masks applied to the mixture's STFT (computed with ``stft`` at ``sr``), in
        ``[0, 1]`` and summing to one over the groups.
    W : np.ndarray [shape=(n_frames_a, k)], float32
        Activations, on the analysis grid (``settings["analysis_sr"]``,
        ``settings["analysis_stft"]``).
    H : np.ndarray [shape=(k, n_bins_a)], float32
        Spectral atoms (fixed dictionary atoms first, then free atoms), in units of the
        analysis spectrogram scaled to mean 1.
    groups : dict[str, list[int]]
        Stem name -> indices of its components (rows of ``H``).
    sr : int
        Sample rate of the mixture and the stems, in Hz.
    stft : STFTConfig
        STFT settings of ``masks`` (at ``sr``).
    settings : dict
        Everything needed to reproduce the run (JSON-serializable): mode, k,
        n_sources, n_free, beta, power, mask kind and power, grouping, solver,
        max_iter, tol, alpha_W, l1_ratio, random_state, dictionaries, analysis rate
        and STFT, nmfsep version.
    n_iter : int
        NMF iterations run.
    loss_history : np.ndarray [shape=(n_checks,)], float64
        Objective at iteration 0 and at every check.
    converged : bool
        Whether NMF reached ``tol`` before ``max_iter``.
    warnings : list of str
        Things the user should know (e.g. a silent mixture); one line each.
    """

    stems: dict[str, np.ndarray]
    masks: np.ndarray
    W: np.ndarray
    H: np.ndarray
    groups: dict[str, list[int]]
    sr: int
    stft: STFTConfig
    settings: dict[str, Any]
    n_iter: int
    loss_history: np.ndarray
    converged: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Stem names, in group order."""
        return list(self.stems)

    def summary(self) -> dict[str, Any]:
        """Return a JSON-serializable summary (no arrays), for a one-line report or ``--json``.

        Returns
        -------
        dict
            ``stems`` (names), ``groups``, ``sr``, ``n_channels``, ``n_samples``,
            ``duration``, ``n_iter``, ``converged``, ``loss`` (last objective or None),
            ``warnings`` and ``settings``.
        """
        first = next(iter(self.stems.values()))
        return {
            "stems": self.names,
            "groups": {k: list(v) for k, v in self.groups.items()},
            "sr": self.sr,
            "n_channels": int(first.shape[0]),
            "n_samples": int(first.shape[1]),
            "duration": float(first.shape[1] / self.sr),
            "n_iter": int(self.n_iter),
            "converged": bool(self.converged),
            "loss": float(self.loss_history[-1]) if self.loss_history.size else None,
            "warnings": list(self.warnings),
            "settings": dict(self.settings),
        }

    def save_model(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Save the factorization (not the audio) as ``.npz`` + JSON, atomically, no pickle.

        The file holds ``W`` and ``H`` (float32), ``loss_history`` (float64) and ``meta``
        (JSON: ``kind="model"``, format version, groups, settings, sample rate, STFT,
        iterations, convergence, warnings). Read it back with :func:`load_model`.

        Parameters
        ----------
        path : str or os.PathLike
            Output file, e.g. ``"mix_model.npz"``, written exactly as named.
        force : bool
            Overwrite ``path`` if it exists.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        OutputError
            If ``path`` exists and ``force`` is False, or it cannot be written.
        """
        return _save_model(self, path, force=force)


def _save_model(fit: Any, path: str | os.PathLike[str], *, force: bool) -> Path:
    """Write ``fit``'s factorization (see :meth:`SeparationResult.save_model`).

    ``fit`` has the attributes ``W``, ``H``, ``groups``, ``sr``, ``stft``, ``settings``,
    ``n_iter``, ``converged``, ``warnings`` and ``loss_history`` of a result.
    """
    import json

    from nmfsep.dictionary import _jsonable

    meta = {
        "kind": "model",
        "format_version": MODEL_FORMAT_VERSION,
        "nmfsep_version": fit.settings.get("nmfsep_version", _version()),
        "sample_rate": int(fit.sr),
        "stft": fit.stft.to_dict(),
        "groups": {k: [int(i) for i in v] for k, v in fit.groups.items()},
        "settings": _jsonable(fit.settings),
        "n_iter": int(fit.n_iter),
        "converged": bool(fit.converged),
        "warnings": list(fit.warnings),
    }
    arrays: dict[str, np.ndarray] = {
        "W": np.ascontiguousarray(fit.W, dtype=np.float32),
        "H": np.ascontiguousarray(fit.H, dtype=np.float32),
        "loss_history": np.asarray(fit.loss_history, dtype=np.float64),
        "meta": np.array(json.dumps(meta, allow_nan=False), dtype=np.str_),
    }
    return atomic_savez(path, arrays, force=force)


@dataclass(frozen=True, eq=False)
class SeparationModel:
    """A factorization saved by :meth:`SeparationResult.save_model`.

    Attributes
    ----------
    W : np.ndarray [shape=(n_frames_a, k)], float32
        Activations (analysis grid).
    H : np.ndarray [shape=(k, n_bins_a)], float32
        Spectral atoms (analysis grid).
    groups : dict[str, list[int]]
        Stem name -> component indices.
    sr : int
        Sample rate of the mixture in Hz.
    stft : STFTConfig
        STFT settings of the masks at ``sr``.
    analysis_sr : int
        Sample rate of the analysis (of ``W`` and ``H``) in Hz.
    analysis_stft : STFTConfig
        STFT settings of the analysis.
    settings : dict
        The settings of the run.
    n_iter : int
        NMF iterations run.
    loss_history : np.ndarray [shape=(n_checks,)], float64
        Objective values.
    converged : bool
        Whether NMF converged.
    warnings : list of str
        Warnings of the run.
    nmfsep_version : str
        Version that wrote the file.
    """

    W: np.ndarray
    H: np.ndarray
    groups: dict[str, list[int]]
    sr: int
    stft: STFTConfig
    analysis_sr: int
    analysis_stft: STFTConfig
    settings: dict[str, Any]
    n_iter: int
    loss_history: np.ndarray
    converged: bool
    warnings: list[str]
    nmfsep_version: str

    def masks(self) -> np.ndarray:
        """Recompute the masks on the analysis grid.

        Returns
        -------
        M : np.ndarray [shape=(n_groups, n_frames_a, n_bins_a)], float32
            With the mask kind and power of the run.
        """
        from nmfsep.masks import group_models, masks

        models = group_models(self.W, self.H, self.groups)
        return masks(
            models,
            kind=self.settings.get("mask", "soft"),
            power=float(self.settings.get("mask_power", DEFAULT_MASK_POWER)),  # always saved
        )


def load_model(path: str | os.PathLike[str]) -> SeparationModel:
    """Read and check a model file written by :meth:`SeparationResult.save_model`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.

    Returns
    -------
    SeparationModel

    Raises
    ------
    DictionaryError
        One line naming the file and the problem (not an nmfsep model, pickled
        arrays, wrong shapes or dtypes, NaN or negative values, bad JSON, unknown
        format version, invalid groups, unsafe group names).
    """
    from nmfsep.io import check_name

    p = Path(path)
    arrays = read_npz(p, ("W", "H", "loss_history", "meta"), what="model")
    meta = parse_meta(p, arrays["meta"], what="model")
    if meta.get("kind") != "model":
        raise DictionaryError(
            f"{p}: is not an nmfsep model (kind={meta.get('kind')!r}); "
            "give a file written by `nmfsep separate --save-model`"
        )
    version = meta.get("format_version")
    if not _is_int(version) or version != MODEL_FORMAT_VERSION:
        raise DictionaryError(
            f"{p}: model format_version {version!r} is not supported (this nmfsep reads "
            f"{MODEL_FORMAT_VERSION}); upgrade nmfsep or save the model again"
        )
    needed = ("nmfsep_version", "sample_rate", "stft", "groups", "settings", "n_iter",
              "converged", "warnings")
    missing = [k for k in needed if k not in meta]
    if missing:
        raise DictionaryError(f"{p}: model metadata lacks {missing}; save the model again")
    W, H, loss = arrays["W"], arrays["H"], arrays["loss_history"]
    for name, arr in (("W", W), ("H", H)):
        if arr.dtype != np.float32 or arr.ndim != 2 or 0 in arr.shape:
            raise DictionaryError(
                f"{p}: {name} must be a non-empty 2-D float32 array, got {arr.dtype} {arr.shape}"
            )
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise DictionaryError(f"{p}: {name} holds NaN, Inf or negative values; corrupt file")
    if W.shape[1] != H.shape[0]:
        raise DictionaryError(
            f"{p}: W has {W.shape[1]} components but H has {H.shape[0]}; corrupt file"
        )
    if loss.dtype != np.float64 or loss.ndim != 1 or not np.isfinite(loss).all():
        raise DictionaryError(f"{p}: loss_history must be a finite 1-D float64 array")
    settings = meta["settings"]
    if not isinstance(settings, dict):
        raise DictionaryError(f"{p}: settings must be a JSON object")
    try:
        stft = STFTConfig.from_dict(meta["stft"])
        analysis_stft = STFTConfig.from_dict(settings.get("analysis_stft", meta["stft"]))
    except ParameterError as exc:
        raise DictionaryError(f"{p}: invalid STFT settings: {exc}") from None
    if H.shape[1] != analysis_stft.n_bins:
        raise DictionaryError(
            f"{p}: H has {H.shape[1]} bins but the analysis n_fft gives "
            f"{analysis_stft.n_bins}; corrupt file"
        )
    sr = meta["sample_rate"]
    analysis_sr = settings.get("analysis_sr", sr)
    for name, value in (("sample_rate", sr), ("analysis_sr", analysis_sr)):
        if not _is_int(value) or value <= 0:
            raise DictionaryError(f"{p}: {name} must be a positive int, got {value!r}")
    groups = meta["groups"]
    k = H.shape[0]
    if not isinstance(groups, dict) or not groups:
        raise DictionaryError(f"{p}: groups must be a non-empty JSON object")
    seen: set[int] = set()
    for name, idx in groups.items():
        try:
            check_name(name)
        except ParameterError as exc:
            raise DictionaryError(f"{p}: unsafe group name: {exc}") from None
        if not isinstance(idx, list) or not idx or not all(
            _is_int(i) and 0 <= i < k and i not in seen and not seen.add(i) for i in idx
        ):
            raise DictionaryError(
                f"{p}: group {name!r} must list distinct component indices in [0, {k})"
            )
    if seen != set(range(k)):
        raise DictionaryError(f"{p}: groups do not cover all {k} components; corrupt file")
    if not _is_int(meta["n_iter"]) or meta["n_iter"] < 0:
        raise DictionaryError(f"{p}: n_iter must be an int >= 0")
    if not isinstance(meta["converged"], bool):
        raise DictionaryError(f"{p}: converged must be true or false")
    warns = meta["warnings"]
    if not isinstance(warns, list) or not all(isinstance(w, str) for w in warns):
        raise DictionaryError(f"{p}: warnings must be a list of strings")
    if not isinstance(meta["nmfsep_version"], str):
        raise DictionaryError(f"{p}: nmfsep_version must be a string")
    for arr in (W, H):
        arr.flags.writeable = False
    return SeparationModel(
        W=W,
        H=H,
        groups={name: list(idx) for name, idx in groups.items()},
        sr=sr,
        stft=stft,
        analysis_sr=analysis_sr,
        analysis_stft=analysis_stft,
        settings=settings,
        n_iter=meta["n_iter"],
        loss_history=loss,
        converged=meta["converged"],
        warnings=warns,
        nmfsep_version=meta["nmfsep_version"],
    )


# ---------------------------------------------------------------------- planning


def _version() -> str:
    from nmfsep import __version__

    return __version__


@dataclass(frozen=True)
class _Plan:
    mode: str  # "blind", "supervised", "semi-supervised"
    k: int  # total components
    n_fixed: int
    names: tuple[str, ...]
    dictionary: Dictionary | None
    n_sources: int | None


def _load_dictionaries(dictionaries: object) -> list[Dictionary]:
    if dictionaries is None:
        return []
    if isinstance(dictionaries, Dictionary | str | os.PathLike):
        dictionaries = [dictionaries]
    if not isinstance(dictionaries, Sequence):
        raise ParameterError(
            f"dictionaries must be a sequence of Dictionary objects or paths, got "
            f"{type(dictionaries).__name__}"
        )
    out = []
    for d in dictionaries:
        if isinstance(d, Dictionary):
            out.append(d)
        elif isinstance(d, str | os.PathLike):
            out.append(Dictionary.load(d))
        else:
            raise ParameterError(
                f"dictionaries must hold Dictionary objects or paths, got {type(d).__name__}"
            )
    return out


def _plan(
    n_components: int | None,
    n_sources: int | None,
    dicts: list[Dictionary],
    n_free: int,
) -> _Plan:
    from nmfsep.grouping import components_groups, source_names

    if not _is_int(n_free) or n_free < 0:
        raise ParameterError(f"n_free must be an int >= 0, got {n_free!r}")
    if n_components is not None and (not _is_int(n_components) or n_components < 1):
        raise ParameterError(f"n_components must be an int >= 1, got {n_components!r}")
    if n_sources is not None and (not _is_int(n_sources) or n_sources < 1):
        raise ParameterError(f"n_sources must be an int >= 1, got {n_sources!r}")
    if dicts:
        if n_components is not None:
            raise ParameterError(
                "n_components is for blind separation; with dictionaries use n_free to add "
                "free atoms"
            )
        if n_sources is not None:
            raise ParameterError(
                "n_sources is for blind separation; with dictionaries there is one stem per "
                "source name"
            )
        combined = combine(dicts)
        names = list(combined.names)
        if n_free > 0:
            if RESIDUAL in names:
                raise DictionaryError(
                    f"a dictionary source is named {RESIDUAL!r}, the name of the free atoms' "
                    "stem; rename that source or use n_free=0"
                )
            names.append(RESIDUAL)
        return _Plan(
            mode="semi-supervised" if n_free > 0 else "supervised",
            k=combined.n_atoms + int(n_free),
            n_fixed=combined.n_atoms,
            names=tuple(names),
            dictionary=combined,
            n_sources=None,
        )
    if n_free > 0:
        raise ParameterError(
            "n_free needs dictionaries (semi-supervised); for blind separation use n_components"
        )
    if n_components is None:
        if n_sources is None:
            raise ParameterError(
                "nothing to separate with: give n_components (blind), n_sources, or dictionaries"
            )
        n_components = DEFAULT_COMPONENTS_PER_SOURCE * int(n_sources)
    k = int(n_components)
    if n_sources is not None and n_sources > k:
        raise ParameterError(
            f"n_sources={n_sources} is more than n_components={k}; use k >= {n_sources}"
        )
    names = source_names(n_sources) if n_sources is not None else list(components_groups(k))
    return _Plan(
        mode="blind", k=k, n_fixed=0, names=tuple(names), dictionary=None,
        n_sources=None if n_sources is None else int(n_sources),
    )


def stem_names(
    *,
    n_components: int | None = None,
    n_sources: int | None = None,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]] = (),
    n_free: int = 0,
) -> list[str]:
    """Names of the stems :func:`separate` will return, without computing anything.

    Parameters
    ----------
    n_components, n_sources, dictionaries, n_free
        As for :func:`separate`.

    Returns
    -------
    list of str
        In the order of the stems.

    Raises
    ------
    ParameterError, DictionaryError
        For the same invalid combinations as :func:`separate`.
    """
    return list(_plan(n_components, n_sources, _load_dictionaries(dictionaries), n_free).names)


# ---------------------------------------------------------------------- helpers


def _check_mixture(y: object, sr: object) -> tuple[np.ndarray, int]:
    y = check_audio(y, finite=False)
    if not np.isfinite(y).all():
        raise AudioFormatError(
            "the mixture contains NaN or Inf samples; replace them (e.g. np.nan_to_num) first"
        )
    return y, check_rate(sr, "sr")


def _scaled_stft(config: STFTConfig, ratio: float) -> STFTConfig:
    """Return STFT settings of the same durations at another rate (``ratio = sr_new / sr_old``)."""
    n_fft = max(16, 2 * int(round(config.n_fft * ratio / 2)))
    hop = max(1, int(round(config.hop_length * ratio)))
    win = None
    if config.win_length is not None:
        win = min(n_fft, max(hop, int(round(config.win_length * ratio))))
    hop = min(hop, win if win is not None else n_fft)
    return STFTConfig(
        n_fft=n_fft, hop_length=hop, win_length=win, window=config.window, center=config.center
    )


def _interp_axis(M: np.ndarray, x_old: np.ndarray, x_new: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``M`` along ``axis``; outside ``x_old`` the edge value is kept."""
    n = x_old.shape[0]
    if n == 1:
        return np.take(M, np.zeros(x_new.shape[0], dtype=np.intp), axis=axis)
    i0 = np.clip(np.searchsorted(x_old, x_new, side="right") - 1, 0, n - 2)
    i1 = i0 + 1
    w = np.clip((x_new - x_old[i0]) / (x_old[i1] - x_old[i0]), 0.0, 1.0)
    shape = [1] * M.ndim
    shape[axis] = -1
    w = w.reshape(shape).astype(M.dtype)
    return np.take(M, i0, axis=axis) * (1 - w) + np.take(M, i1, axis=axis) * w


def _regrid_masks(
    M: np.ndarray,
    sr_a: int,
    stft_a: STFTConfig,
    sr_n: int,
    stft_n: STFTConfig,
    n_frames_n: int,
) -> np.ndarray:
    """Bring masks ``(G, T_a, F_a)`` from the analysis grid to the native STFT grid.

    Linear interpolation over frequency (bins above the analysis Nyquist take the top
    bin's mask) and over frame time (frames beyond the ends take the edge frame's),
    then renormalisation so that the masks sum to one. One group at a time (twice:
    the sum over the groups first), so the float64 temporaries are one mask's size.
    """
    from nmfsep.spectral import fft_frequencies, frame_times

    f_a = fft_frequencies(sr_a, stft_a)
    f_n = fft_frequencies(sr_n, stft_n)
    t_a = frame_times(M.shape[1], sr_a, stft_a)
    t_n = frame_times(n_frames_n, sr_n, stft_n)

    def regrid(g: int) -> np.ndarray:
        out = _interp_axis(M[g].astype(np.float64), f_a, f_n, axis=1)
        out = _interp_axis(out, t_a, t_n, axis=0)
        np.clip(out, 0.0, 1.0, out=out)
        return out

    total = np.zeros((n_frames_n, f_n.shape[0]), dtype=np.float64)
    for g in range(M.shape[0]):
        total += regrid(g)
    np.copyto(total, 1.0, where=~(total > 0))
    out = np.empty((M.shape[0], n_frames_n, f_n.shape[0]), dtype=np.float32)
    for g in range(M.shape[0]):
        out[g] = regrid(g) / total
    return out


def _stem_blocks(
    X: np.ndarray,
    masks_of: Callable[[int, int], np.ndarray],
    y: np.ndarray,
    config: STFTConfig,
    n_groups: int,
) -> Iterator[tuple[int, np.ndarray]]:
    """Mask every channel, invert, and project onto ``Σ stems == y``, block by block.

    For each block of frames: the masks of those frames (``masks_of(t0, t1)``, shape
    ``(n_groups, t1 - t0, n_bins)``), applied to every channel of ``X``, inverted
    (:class:`nmfsep.spectral.OverlapAdd`: the samples those frames complete). ``istft``
    is linear, so the stems add up to ``istft(X) ≈ y``; the tiny remainder
    ``y - Σ stems`` (window and float rounding) is shared equally among the stems
    (Wisdom et al. 2019), which makes the sum exact to float32 rounding. Memory: a
    few blocks, never a full mask or stem.

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        STFT of the mixture (with ``config``).
    masks_of : callable(t0, t1) -> np.ndarray [shape=(n_groups, t1 - t0, n_bins)]
        Masks of frames ``t0 .. t1 - 1``, float32, summing to one over the groups;
        called for consecutive ranges from frame 0.
    y : np.ndarray [shape=(n_channels, n_samples)]
        The mixture.
    config : STFTConfig
        STFT settings of ``X``.
    n_groups : int
        Number of stems.

    Yields
    ------
    start : int
        First sample of the block.
    stems : np.ndarray [shape=(n_groups, n_channels, n)], float32
        Samples ``start .. start + n - 1`` of every stem (``n`` may be 0); the blocks
        follow each other and cover ``0 .. n_samples - 1``.
    """
    from nmfsep.spectral import OverlapAdd, _block_frames

    n_channels, n_bins, n_frames = X.shape
    if X.dtype not in (np.complex64, np.complex128):
        X = X.astype(np.complex128)
    real = np.float32 if X.dtype == np.complex64 else np.float64
    ola = OverlapAdd(config, n_frames, y.shape[1], shape=(n_groups, n_channels), dtype=real)
    frames = X.transpose(0, 2, 1)  # (n_channels, n_frames, n_bins); contiguous from stft

    def consistent(start: int, part: np.ndarray) -> tuple[int, np.ndarray]:
        part = part.astype(np.float32, copy=False)
        n = part.shape[-1]
        # (n_groups, n_channels, n) with the channels interleaved in memory, as a WAV
        # file stores them: stems[g].T is C-contiguous
        stems = np.empty((n_groups, n, n_channels), dtype=np.float32).transpose(0, 2, 1)
        if n:
            total = part.sum(axis=0, dtype=np.float64)
            share = (y[:, start : start + n].astype(np.float64) - total) / n_groups
            np.add(part, share.astype(np.float32), out=stems)
        return start, stems

    def windowed(t0: int, t1: int) -> np.ndarray:
        M = masks_of(t0, t1)
        return ola.windowed(M[:, None] * frames[None, :, t0:t1])

    # A worker thread computes the masks and inverse FFTs of the next blocks while this
    # one overlap-adds and the caller writes (numpy and soundfile release the GIL);
    # blocks are computed in order, so the result does not depend on the timing.
    step = _block_frames(n_groups * n_channels * n_bins * X.itemsize)
    pending: collections.deque[Future[np.ndarray]] = collections.deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmfsep-stems") as pool:
        for t0 in range(0, ola.n_frames, step):
            pending.append(pool.submit(windowed, t0, min(t0 + step, ola.n_frames)))
            if len(pending) > _LOOKAHEAD:
                yield consistent(*ola.add(pending.popleft().result()))
        while pending:
            yield consistent(*ola.add(pending.popleft().result()))
    yield consistent(*ola.finish())


def dictionaries_settings(dicts: Sequence[Dictionary]) -> list[dict[str, Any]]:
    """Describe each dictionary used, as the settings of a result record it (JSON values)."""
    return [
        {"names": list(d.names), "n_atoms": d.n_atoms, "sr": d.sr,
         "clips": [dict(c) for c in d.clips]}
        for d in dicts
    ]


def _fallback_groups(plan: _Plan, k: int) -> dict[str, list[int]]:
    """Return groups made without clustering (supervised, or silent mixtures)."""
    if plan.dictionary is not None:
        groups = plan.dictionary.groups
        if plan.mode == "semi-supervised":
            groups[RESIDUAL] = list(range(plan.n_fixed, k))
        return groups
    if plan.n_sources is None:
        from nmfsep.grouping import components_groups

        return components_groups(k)
    blocks = np.array_split(np.arange(k), plan.n_sources)
    return {name: [int(i) for i in b] for name, b in zip(plan.names, blocks, strict=True)}


# ---------------------------------------------------------------------- separate


def check_settings(
    *, mask: object, mask_power: object, solver: object, max_iter: object, tol: object,
    alpha_W: object, l1_ratio: object,
) -> None:
    """Validate the mask and NMF settings shared by :func:`separate` and streaming.

    Raises
    ------
    ParameterError
        Naming the first invalid setting and what it must be.
    """
    from nmfsep.nmf import SOLVERS

    if mask not in ("soft", "binary"):
        raise ParameterError(f"mask must be 'soft' or 'binary', got {mask!r}")
    if not _is_real(mask_power) or float(mask_power) <= 0:
        raise ParameterError(f"mask_power must be a finite number > 0 (1 or 2), got {mask_power!r}")
    if solver not in SOLVERS:
        raise ParameterError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if not _is_int(max_iter) or max_iter < 0:
        raise ParameterError(f"max_iter must be an int >= 0, got {max_iter!r}")
    if not _is_real(tol) or tol < 0:
        raise ParameterError(f"tol must be a finite number >= 0, got {tol!r}")
    if not _is_real(alpha_W) or alpha_W < 0:
        raise ParameterError(f"alpha_W must be a finite number >= 0, got {alpha_W!r}")
    if not _is_real(l1_ratio) or not 0 <= l1_ratio <= 1:
        raise ParameterError(f"l1_ratio must be a number in [0, 1], got {l1_ratio!r}")


def separate(
    y: np.ndarray,
    sr: int,
    *,
    n_components: int | None = None,
    n_sources: int | None = None,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]] = (),
    n_free: int = 0,
    beta: str | float | None = None,
    power: float | None = None,
    stft: STFTConfig | None = None,
    mask: Literal["soft", "binary"] = "soft",
    mask_power: float | None = None,
    grouping: str = DEFAULT_GROUPING,
    solver: str = "mu",
    max_iter: int = 200,
    tol: float = 1e-4,
    alpha_W: float = 0.0,
    l1_ratio: float = 0.0,
    random_state: int | np.random.Generator | None = 0,
    callback: Callable[[int, float | None], None] | None = None,
    n_threads: int | None = None,
) -> SeparationResult:
    """Separate a mixture into stems with spectrogram NMF and soft masks.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)], float32 or float64, finite
        The mixture at its native rate. Never modified.
    sr : int
        Sample rate of ``y`` in Hz.
    n_components : int or None
        Blind mode: number of components k, ``1 <= k <= n_frames``. With
        ``n_sources`` only, ``8 * n_sources`` (:data:`DEFAULT_COMPONENTS_PER_SOURCE`).
    n_sources : int or None
        Blind mode: group the k components into this many stems ``source_1`` ...
        (``1 <= n_sources <= k``); None gives one stem per component.
    dictionaries : sequence of Dictionary or paths
        Supervised mode: fixed atoms, one stem per source name (in order). All must
        share sample rate, STFT settings, power and β (:func:`nmfsep.dictionary.combine`).
    n_free : int
        Semi-supervised mode: number of free atoms added to the dictionaries; their
        stem is ``residual``. ``0 <= n_free <= n_frames``.
    beta : {"kullback-leibler", "itakura-saito", "frobenius"}, float or None
        β-divergence; None: the dictionaries' β, else Kullback-Leibler.
    power : float or None
        Spectrogram power; None: the dictionaries' power, else 1 for β > 0 and 2 for
        β <= 0. With dictionaries it must equal theirs.
    stft : STFTConfig or None
        STFT settings; None: the dictionaries' settings, else
        :meth:`STFTConfig.for_sample_rate` of ``sr``. With dictionaries it must equal
        theirs.
    mask : {"soft", "binary"}
        Mask kind (:func:`nmfsep.masks.masks`).
    mask_power : float or None
        Exponent of the soft (α-Wiener) mask, > 0. None (default): 1 for blind
        separation, 1.5 with dictionaries, the values that separated best
        (:func:`default_mask_power`).
    grouping : {"timbre", "activations", "combined"}
        How blind components are grouped into ``n_sources`` stems.
    solver : {"mu", "amu", "cd"}
        NMF solver (:func:`nmfsep.nmf.nmf`).
    max_iter, tol : int, float
        NMF stopping rules.
    alpha_W, l1_ratio : float
        Regularisation of the activations (scaled as in scikit-learn); with
        ``alpha_W > 0`` the free atoms are kept at unit norm in the objective.
    random_state : int, numpy generator or None
        Seed of the initialisation; an int gives bit-identical stems on one machine.
    callback : callable(iteration, loss or None), optional
        NMF progress callback.
    n_threads : int or None
        Threads of the NMF (:func:`nmfsep.nmf.nmf`); None: every core. The result does
        not depend on it (bit for bit).

    Returns
    -------
    SeparationResult
        Stems (each ``(n_channels, n_samples)`` float32, adding up to ``y``), masks,
        W, H, groups and settings.

    Raises
    ------
    ParameterError
        For invalid audio or parameters: wrong shape or dtype, ``n_components`` or
        ``n_free`` out of range (more than the mixture's STFT frames),
        ``n_sources > k``, incompatible mode options.
    AudioFormatError
        If ``y`` contains NaN or Inf.
    DictionaryError
        If dictionaries disagree with each other or with ``stft``/``power``, or a
        source is named ``residual`` while ``n_free > 0``.

    Notes
    -----
    The spectrogram ``V`` is computed from the STFT scaled to a peak of 1 and divided
    by its mean, so the absolute floors of the NMF engine act as relative ones and
    the result does not depend on the mixture's level. When the mixture's rate differs
    from the dictionaries', the analysis runs on a resampled copy at the dictionaries'
    rate; the masks are then interpolated onto the native-rate STFT (same window
    duration and hop in seconds) and applied there, so the stems keep the native rate
    and still add up to the mixture. An all-silent mixture gives silent stems and a
    warning, not an error.

    Examples
    --------
    >>> sr = 22050
    >>> t = np.arange(sr) / sr
    >>> y = (0.3 * np.sin(2 * np.pi * 440 * t) * (t < 0.5)
    ...      + 0.3 * np.sin(2 * np.pi * 660 * t) * (t >= 0.5)).astype(np.float32)[None]
    >>> res = separate(y, sr, n_components=2, max_iter=50)
    >>> list(res.stems)
    ['component_01', 'component_02']
    >>> bool(np.abs(sum(res.stems.values()) - y).max() < 1e-4)
    True
    """
    fit = _analyse(
        y, sr, n_components=n_components, n_sources=n_sources, dictionaries=dictionaries,
        n_free=n_free, beta=beta, power=power, stft=stft, mask=mask, mask_power=mask_power,
        grouping=grouping, solver=solver, max_iter=max_iter, tol=tol, alpha_W=alpha_W,
        l1_ratio=l1_ratio, random_state=random_state, callback=callback, n_threads=n_threads,
    )
    y = fit.y
    names = list(fit.groups)
    n_frames = fit.X.shape[2]
    stems = [np.empty(y.shape, dtype=np.float32) for _ in names]
    if fit.full_masks is not None:
        M, masks_of = fit.full_masks, fit.masks
    else:
        # the masks of the result are the very blocks applied to the mixture
        M = np.empty((len(names), n_frames, fit.X.shape[1]), dtype=np.float32)
        done = [0]

        def masks_of(t0: int, t1: int) -> np.ndarray:
            M[:, t0:t1] = block = fit.masks(t0, t1)
            done[0] = t1
            return block

    for start, part in _stem_blocks(fit.X, masks_of, y, fit.stft, len(names)):
        for stem, values in zip(stems, part, strict=True):
            stem[:, start : start + values.shape[-1]] = values
    if fit.full_masks is None and done[0] < n_frames:  # frames after the end of the audio
        M[:, done[0] :] = fit.masks(done[0], n_frames)
    return SeparationResult(
        stems=dict(zip(names, stems, strict=True)),
        masks=M,
        W=fit.W,
        H=fit.H,
        groups=fit.groups,
        sr=fit.sr,
        stft=fit.stft,
        settings=fit.settings,
        n_iter=fit.n_iter,
        loss_history=fit.loss_history,
        converged=fit.converged,
        warnings=fit.warnings,
    )


@dataclass
class _Analysis:
    """What :func:`separate` computes before the stems (internal).

    The mixture's STFT, the factorization and a source of masks on the native grid.
    """

    y: np.ndarray  # (n_channels, n_samples), checked
    X: np.ndarray  # (n_channels, n_bins, n_frames) STFT at ``sr`` with ``stft``
    masks: Callable[[int, int], np.ndarray]  # frames [t0, t1) -> (n_groups, t1 - t0, n_bins)
    full_masks: np.ndarray | None  # all masks, when they were computed at once (resampled)
    W: np.ndarray
    H: np.ndarray
    groups: dict[str, list[int]]
    sr: int
    stft: STFTConfig
    settings: dict[str, Any]
    n_iter: int
    loss_history: np.ndarray
    converged: bool
    warnings: list[str]

    def model(self) -> SeparationModel:
        """Return the factorization as a :class:`SeparationModel` (for a report)."""
        return SeparationModel(
            W=self.W,
            H=self.H,
            groups={name: list(idx) for name, idx in self.groups.items()},
            sr=self.sr,
            stft=self.stft,
            analysis_sr=self.settings["analysis_sr"],
            analysis_stft=STFTConfig.from_dict(self.settings["analysis_stft"]),
            settings=self.settings,
            n_iter=self.n_iter,
            loss_history=self.loss_history,
            converged=self.converged,
            warnings=self.warnings,
            nmfsep_version=self.settings["nmfsep_version"],
        )


def _analyse(
    y: np.ndarray,
    sr: int,
    *,
    n_components: int | None = None,
    n_sources: int | None = None,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]] = (),
    n_free: int = 0,
    beta: str | float | None = None,
    power: float | None = None,
    stft: STFTConfig | None = None,
    mask: Literal["soft", "binary"] = "soft",
    mask_power: float | None = None,
    grouping: str = DEFAULT_GROUPING,
    solver: str = "mu",
    max_iter: int = 200,
    tol: float = 1e-4,
    alpha_W: float = 0.0,
    l1_ratio: float = 0.0,
    random_state: int | np.random.Generator | None = 0,
    callback: Callable[[int, float | None], None] | None = None,
    n_threads: int | None = None,
) -> _Analysis:
    """Do everything :func:`separate` does but the stems (same parameters and errors)."""
    from nmfsep.context import expand_factors, expand_indices, stack_frames
    from nmfsep.divergence import beta_loss_to_float
    from nmfsep.masks import GroupMasks, group_models, masks
    from nmfsep.nmf import nmf
    from nmfsep.spectral import max_magnitude, model_spectrogram
    from nmfsep.spectral import stft as compute_stft

    y, sr = _check_mixture(y, sr)
    dicts = _load_dictionaries(dictionaries)
    plan = _plan(n_components, n_sources, dicts, n_free)
    if mask_power is None:
        mask_power = default_mask_power(plan.dictionary is not None)
    check_settings(mask=mask, mask_power=mask_power, solver=solver, max_iter=max_iter, tol=tol,
                   alpha_W=alpha_W, l1_ratio=l1_ratio)
    from nmfsep.grouping import GROUPING_METHODS

    if grouping not in GROUPING_METHODS:
        raise ParameterError(f"grouping must be one of {GROUPING_METHODS}, got {grouping!r}")
    if stft is not None and not isinstance(stft, STFTConfig):
        raise ParameterError(f"stft must be an STFTConfig or None, got {type(stft).__name__}")
    if power is not None and (not _is_real(power) or float(power) <= 0):
        raise ParameterError(f"power must be a finite number > 0 (1 or 2), got {power!r}")
    combined = plan.dictionary

    # --- settings of the analysis --------------------------------------------------
    if combined is not None:
        beta_f = combined.beta if beta is None else beta_loss_to_float(beta)
        reason = fit_mismatch(combined, None, stft, power)
        if reason is not None:
            raise DictionaryError(reason)
        power_f = combined.power
        context = combined.context_frames
        analysis_sr, analysis_stft = combined.sr, combined.stft
        native_stft = (
            analysis_stft if sr == analysis_sr else _scaled_stft(analysis_stft, sr / analysis_sr)
        )
    else:
        beta_f = 1.0 if beta is None else beta_loss_to_float(beta)
        power_f = default_power(beta_f) if power is None else float(power)
        context = 1
        analysis_sr = sr
        analysis_stft = native_stft = STFTConfig.for_sample_rate(sr) if stft is None else stft
    resampled = analysis_sr != sr

    # --- spectrogram -----------------------------------------------------------------
    if resampled:
        from nmfsep.io import resample

        y_a = resample(y, sr, analysis_sr)
        if y_a.shape[1] == 0:
            y_a = np.zeros((y.shape[0], 1), dtype=y.dtype)
    else:
        y_a = y
    X_a = compute_stft(y_a, analysis_stft)
    n_frames = X_a.shape[2]
    if plan.mode == "blind" and plan.k > n_frames:
        raise ParameterError(
            f"n_components={plan.k} is more than the {n_frames} STFT frames of the mixture "
            f"({y.shape[1] / sr:.3g} s); use n_components <= {n_frames} or a longer mixture"
        )
    n_free_atoms = plan.k - plan.n_fixed
    if plan.mode == "semi-supervised" and n_free_atoms > n_frames:
        raise ParameterError(
            f"n_free={n_free_atoms} is more than the {n_frames} STFT frames of the mixture; "
            f"use n_free <= {n_frames}"
        )

    warnings_out: list[str] = []
    peak = max_magnitude(X_a)
    V = None
    if peak > 0:
        V = model_spectrogram(X_a, power_f, scale=peak)
        mean = float(V.mean(dtype=np.float64))
        if not mean > 0 or not math.isfinite(mean):
            V = None
        else:
            V /= np.float32(mean)  # our own array
            # dictionaries with temporal context: atoms span `context` frames, so the
            # mixture's frames are stacked the same way (nmfsep.context)
            V = stack_frames(V, context)
    if V is None:
        if np.any(y):
            warnings_out.append(
                "the mixture is too quiet to analyse (its spectrogram underflows); the stems "
                "share it equally"
            )
        else:
            warnings_out.append(
                "the mixture is silent (all samples are zero); the stems are silent"
            )
        n_bins_a = analysis_stft.n_bins
        W = np.zeros((n_frames, plan.k), dtype=np.float32)
        H = np.zeros((plan.k, context * n_bins_a), dtype=np.float32)
        if combined is not None:
            H[: plan.n_fixed] = combined.atoms
        groups = _fallback_groups(plan, plan.k)
        n_iter, loss_history, converged = 0, np.zeros(0, dtype=np.float64), True
    else:
        result = nmf(
            V,
            plan.k,
            beta=beta_f,
            solver=solver,
            fixed_atoms=None if combined is None else combined.atoms,
            max_iter=max_iter,
            tol=tol,
            alpha_W=alpha_W,
            alpha_H=0.0,
            l1_ratio=l1_ratio,
            normalize_atoms=bool(alpha_W > 0 and n_free_atoms > 0),
            random_state=random_state,
            callback=callback,
            n_threads=n_threads,
            warn=False,
        )
        W = np.asarray(result.W, dtype=np.float32)
        H = np.asarray(result.H, dtype=np.float32)
        n_iter, loss_history, converged = result.n_iter, result.loss_history, result.converged
        if plan.mode == "blind":
            if plan.n_sources is None:
                from nmfsep.grouping import components_groups

                groups = components_groups(plan.k)
            else:
                from nmfsep.grouping import group_components

                groups = group_components(
                    W, H, plan.n_sources, method=grouping, sr=analysis_sr,
                    n_fft=analysis_stft.n_fft,
                )
        else:
            groups = _fallback_groups(plan, plan.k)

    del V  # only the STFT and the factorization are needed from here on
    if context > 1:
        # from here on, a factorisation of single frames: each atom of T frames becomes
        # T single-frame atoms with shifted activations, the same model averaged over
        # the T predictions of every frame (nmfsep.context.expand_factors)
        W, H = expand_factors(W, H, context)
        groups = {name: expand_indices(idx, context) for name, idx in groups.items()}

    # --- masks on the native grid ----------------------------------------------------
    full_masks = None
    masks_of: Callable[[int, int], np.ndarray]
    if resampled:
        M_a = masks(group_models(W, H, groups), kind=mask, power=float(mask_power))
        del X_a, y_a
        X = compute_stft(y, native_stft)
        full_masks = _regrid_masks(M_a, analysis_sr, analysis_stft, sr, native_stft, X.shape[2])
        del M_a
        regridded = full_masks

        def masks_of(t0: int, t1: int) -> np.ndarray:  # type: ignore[misc]
            return regridded[:, t0:t1]
    else:
        X = X_a
        masks_of = GroupMasks(W, H, groups, kind=mask, power=float(mask_power))

    settings = {
        "mode": plan.mode,
        "n_components": plan.k,
        "n_sources": plan.n_sources,
        "n_free": n_free_atoms if plan.mode != "blind" else 0,
        "beta": beta_f,
        "power": power_f,
        "mask": mask,
        "mask_power": float(mask_power),
        "grouping": grouping if plan.n_sources is not None else None,
        "solver": solver,
        "max_iter": int(max_iter),
        "tol": float(tol),
        "alpha_W": float(alpha_W),
        "l1_ratio": float(l1_ratio),
        "random_state": random_state if random_state is None or _is_int(random_state)
        else "generator",
        "dictionaries": dictionaries_settings(dicts),
        "sr": sr,
        "stft": native_stft.to_dict(),
        "analysis_sr": analysis_sr,
        "analysis_stft": analysis_stft.to_dict(),
        "context_frames": context,
        "nmfsep_version": _version(),
    }
    if isinstance(settings["random_state"], np.integer):
        settings["random_state"] = int(settings["random_state"])
    return _Analysis(
        y=y,
        X=X,
        masks=masks_of,
        full_masks=full_masks,
        W=W,
        H=H,
        groups={name: list(idx) for name, idx in groups.items()},
        sr=sr,
        stft=native_stft,
        settings=settings,
        n_iter=int(n_iter),
        loss_history=np.asarray(loss_history, dtype=np.float64),
        converged=bool(converged),
        warnings=warnings_out,
    )


# ---------------------------------------------------------------------- files


def _first_existing_parent(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def prepare_output_folder(
    folder: Path, targets: Sequence[Path], *, force: bool
) -> tuple[Path, bool]:
    """Check the outputs before any work: refuse folders in the way and existing files.

    Creates ``folder`` and proves it writable. Returns the first existing parent
    and whether the folder was created, so a failed run can remove what it made
    (:func:`_remove_created`).

    Raises
    ------
    OutputError
        A target is a folder, exists without ``force``, or the folder is not writable.
    """
    for t in targets:
        if t.is_dir():
            raise OutputError(f"{t}: is a folder; remove it or choose another output folder")
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]}: exists{more}; pass --force to overwrite")
    anchor = _first_existing_parent(folder)
    created = folder != anchor
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".nmfsep-probe.{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        _remove_created(folder, anchor, created)
        raise OutputError(
            f"{folder}: cannot write there ({exc.strerror or exc}); choose another output "
            "folder with -o or fix its permissions"
        ) from exc
    return anchor, created


def commit_outputs(staged: Sequence[tuple[Path, Path]], *, force: bool) -> None:
    """Rename every ``(temporary, final)`` pair, refusing finals that appeared meanwhile.

    Raises
    ------
    OutputError
        A final file appeared during the run and ``force`` is off.
    """
    if not force:
        late = [final for _, final in staged if final.exists()]
        if late:
            raise OutputError(f"{late[0]}: appeared while separating; pass --force to overwrite")
    for tmp, final in staged:
        os.replace(tmp, final)


def abandon_outputs(
    exc: BaseException, temporaries: Sequence[Path], folder: Path, anchor: Path, created: bool
) -> OutputError | None:
    """Clean up after a failed run: remove temporaries and any folder the run created.

    Returns
    -------
    OutputError or None
        The one-line error to raise instead of an ``OSError`` (disk full, permissions);
        None to re-raise ``exc`` as it is.
    """
    for tmp in temporaries:
        try:
            tmp.unlink()
        except OSError:
            pass
    _remove_created(folder, anchor, created)
    if isinstance(exc, OSError) and not isinstance(exc, OutputError):
        return OutputError(
            f"{folder}: cannot write the stems ({exc.strerror or exc}); check disk space "
            "and permissions"
        )
    return None


def separate_file(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "separated",
    *,
    force: bool = False,
    save_model: bool = False,
    report: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Separate an audio file and write ``out_dir/<mix stem>/<name>.wav``, all or nothing.

    Checks the names, the targets (none may exist unless ``force``) and that the output
    folder is writable before computing; writes every stem to a temporary name and
    renames them all at the end; on failure removes the temporaries (and the folder,
    if it was created here and is empty). The stems are written a block at a time as
    they are computed, so memory holds the mixture, its STFT and the factorization,
    never all masks or stems (:func:`separate` returns them all).

    Parameters
    ----------
    path : str or os.PathLike
        The mixture (any format :func:`nmfsep.io.load` reads).
    out_dir : str or os.PathLike
        Output root; the stems go to ``out_dir/<mix stem>/``.
    force : bool
        Overwrite existing stems.
    save_model : bool
        Also write the factorization to ``out_dir/<mix stem>/model.npz``
        (:meth:`SeparationResult.save_model`).
    report : bool
        Also write ``out_dir/<mix stem>/report.html`` and the mixture next to the stems
        as ``mixture.wav`` (:func:`nmfsep.report.write_report`), after the stems are in
        place. Both are checked with the stems before computing (none may exist unless
        ``force``); if writing the report fails anyway (disk full ...), the stems stay
        and the error is raised.
    **kwargs
        Passed to :func:`separate` (``n_components``, ``dictionaries`` ...).

    Returns
    -------
    summary : dict
        JSON-serializable: ``input``, ``output_dir``, ``mode``, ``stems`` (name -> path
        written), ``model`` (path or None), ``report`` (path or None), ``sr``,
        ``n_channels``, ``duration`` (seconds of audio), ``seconds`` (time taken),
        ``n_iter``, ``converged``, ``warnings`` and ``settings``.

    Raises
    ------
    AudioFormatError
        If the mixture cannot be read.
    ParameterError
        If the mixture's name or a stem name is not a safe file name, or a parameter
        is invalid.
    DictionaryError
        If a dictionary cannot be read or does not fit.
    OutputError
        If a target exists (without ``force``) or the output cannot be written.
    """
    from nmfsep import io

    start = time.perf_counter()
    src = Path(path)
    mix_name = io.check_name(src.stem)
    y, sr = io.load(src)
    if "dictionaries" in kwargs:
        kwargs["dictionaries"] = _load_dictionaries(kwargs["dictionaries"])
    names = stem_names(
        n_components=kwargs.get("n_components"),
        n_sources=kwargs.get("n_sources"),
        dictionaries=kwargs.get("dictionaries", ()),
        n_free=kwargs.get("n_free", 0),
    )
    for name in names:
        io.check_name(name)
    folder = Path(out_dir) / mix_name
    outputs = io.output_files(folder, names, model=save_model, report=report)
    targets, model_path, report_path = outputs.stems, outputs.model, outputs.report
    anchor, created = prepare_output_folder(folder, outputs.all(), force=force)

    temporaries: list[Path] = []
    writers: list[io.WavWriter] = []
    try:
        fit = _analyse(y, sr, **kwargs)
        token = secrets.token_hex(4)
        staged: list[tuple[Path, Path]] = []
        # every stem is written as its blocks are computed (to a temporary name; all are
        # renamed at the end): no stem or mask is ever held whole in memory
        for name in fit.groups:
            tmp = folder / f".{name}.{token}.partial.wav"
            temporaries.append(tmp)
            writers.append(io.WavWriter(tmp, sr, y.shape[0], y.shape[1]))
            staged.append((tmp, targets[name]))
        for _, part in _stem_blocks(fit.X, fit.masks, fit.y, fit.stft, len(writers)):
            if part.shape[-1]:
                for writer, stem in zip(writers, part, strict=True):
                    writer.write(stem)
        del fit.X  # the STFT is not needed any more (the report needs memory)
        while writers:
            writers.pop(0).close()
        if model_path is not None:
            tmp = folder / f".model.{token}.partial.npz"
            temporaries.append(tmp)
            _save_model(fit, tmp, force=True)
            staged.append((tmp, model_path))
        commit_outputs(staged, force=force)
        temporaries.clear()
        if report_path is not None:
            from nmfsep.report import write_report

            # the stems are read back from their files
            report_path = write_report(fit.model(), folder, mixture=y, force=force)
    except BaseException as exc:
        for writer in writers:
            with contextlib.suppress(Exception):
                writer.close()
        error = abandon_outputs(exc, temporaries, folder, anchor, created)
        if error is not None:
            raise error from exc
        raise

    return {
        "input": str(src),
        "output_dir": str(folder),
        "mode": fit.settings["mode"],
        "stems": {name: str(targets[name]) for name in fit.groups},
        "model": None if model_path is None else str(model_path),
        "report": None if report_path is None else str(report_path),
        "sr": int(sr),
        "n_channels": int(y.shape[0]),
        "duration": float(y.shape[1] / sr),
        "seconds": round(time.perf_counter() - start, 3),
        "n_iter": int(fit.n_iter),
        "converged": bool(fit.converged),
        "warnings": list(fit.warnings),
        "settings": fit.settings,
    }


def _remove_created(folder: Path, anchor: Path, created: bool) -> None:
    """Remove the folders created for the output, if they are still empty."""
    if not created:
        return
    p = folder
    while p != anchor:
        try:
            p.rmdir()
        except OSError:
            return
        p = p.parent
