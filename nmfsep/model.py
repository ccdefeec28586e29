"""Saved factorizations: what a separation learned, without the audio.

A :class:`Factorization` holds the activations ``W (n_frames_a, k)``, the atoms
``H (k, n_bins_a)`` (on the analysis grid), the groups, the STFT settings and the
settings of the run. :func:`save_model` writes one as ``.npz`` + JSON (no pickle)
and :func:`load_model` reads it back, checking everything it relies on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep._checks import MAX_SAMPLE_RATE
from nmfsep._checks import is_int as _is_int
from nmfsep._npz import atomic_savez, jsonable, parse_meta, read_npz
from nmfsep._version import __version__
from nmfsep.exceptions import DictionaryError, ParameterError
from nmfsep.io import check_name
from nmfsep.masks import group_models, masks
from nmfsep.spectral import STFTConfig

__all__ = ["Factorization", "SeparationModel", "save_model", "load_model",
           "MODEL_FORMAT_VERSION"]

MODEL_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class Factorization:
    """A separation's factorization: what :func:`load_model` reads and a report shows.

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
    Q : np.ndarray [shape=(n_channels, k)], float32, or None
        Gain of every component in every channel (``settings["spatial"] == "gains"``,
        :mod:`nmfsep.ntf`; each column sums to one), or None for one model of the
        channels combined.
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
    Q: np.ndarray | None = None

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write this factorization to ``path`` (:func:`save_model`)."""
        return save_model(self, path, force=force)

    def masks(self) -> np.ndarray:
        """Recompute the masks on the analysis grid (of the channels combined).

        With gains (``Q``) the model of the channels combined is ``W @ H`` (the gains
        of every component sum to one), so these are the masks of that sum.

        Returns
        -------
        M : np.ndarray [shape=(n_groups, n_frames_a, n_bins_a)], float32
            With the mask kind and power of the run.
        """
        models = group_models(self.W, self.H, self.groups)
        return masks(
            models,
            kind=self.settings.get("mask", "soft"),
            power=float(self.settings["mask_power"]),
        )


def load_model(path: str | os.PathLike[str]) -> Factorization:
    """Read and check a model file written by :func:`save_model`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.

    Returns
    -------
    Factorization

    Raises
    ------
    DictionaryError
        One line naming the file and the problem (not an nmfsep model, pickled
        arrays, wrong shapes or dtypes, NaN or negative values, bad JSON, unknown
        format version, invalid groups, unsafe group names).
    """
    p = Path(path)
    arrays = read_npz(p, ("W", "H", "loss_history", "meta"), what="model")
    meta = _checked_meta(p, parse_meta(p, arrays["meta"], what="model"))
    W, H, loss = _checked_arrays(p, arrays)
    settings = meta["settings"]
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
        if not _is_int(value) or not 0 < value <= MAX_SAMPLE_RATE:
            raise DictionaryError(
                f"{p}: {name} must be an int from 1 to {MAX_SAMPLE_RATE} Hz, got {value!r:.40}"
            )
    groups = _checked_groups(p, meta["groups"], H.shape[0])
    warns = meta["warnings"]
    Q = _checked_gains(p, H.shape[0]) if settings.get("spatial") == "gains" else None
    for arr in (W, H, *([] if Q is None else [Q])):
        arr.flags.writeable = False
    return Factorization(
        W=W,
        H=H,
        groups=groups,
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
        Q=Q,
    )


def _checked_gains(p: Path, k: int) -> np.ndarray:
    """Return the gains ``Q (n_channels, k)`` of a model, refusing wrong shapes or values."""
    Q = read_npz(p, ("Q",), what="model")["Q"]
    if Q.dtype != np.float32 or Q.ndim != 2 or Q.shape[1] != k or not 2 <= Q.shape[0] <= 64:
        raise DictionaryError(
            f"{p}: Q must be a float32 array of shape (n_channels, {k}) with 2 to 64 "
            f"channels, got {Q.dtype} {Q.shape}; corrupt file"
        )
    if not np.isfinite(Q).all() or (Q < 0).any():
        raise DictionaryError(f"{p}: Q holds NaN, Inf or negative values; corrupt file")
    return Q


def _checked_meta(p: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Refuse model metadata of another kind or version, or lacking or mistyped fields."""
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
    if not isinstance(meta["settings"], dict):
        raise DictionaryError(f"{p}: settings must be a JSON object")
    if not _is_int(meta["n_iter"]) or meta["n_iter"] < 0:
        raise DictionaryError(f"{p}: n_iter must be an int >= 0")
    if not isinstance(meta["converged"], bool):
        raise DictionaryError(f"{p}: converged must be true or false")
    warns = meta["warnings"]
    if not isinstance(warns, list) or not all(isinstance(w, str) for w in warns):
        raise DictionaryError(f"{p}: warnings must be a list of strings")
    if not isinstance(meta["nmfsep_version"], str):
        raise DictionaryError(f"{p}: nmfsep_version must be a string")
    return meta


def _checked_arrays(p: Path, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Return W, H and the loss history, refusing wrong dtypes, shapes or values."""
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
    return W, H, loss


def _checked_groups(p: Path, groups: object, k: int) -> dict[str, list[int]]:
    """Return the groups: safe names, distinct indices covering every component once."""
    if not isinstance(groups, dict) or not groups:
        raise DictionaryError(f"{p}: groups must be a non-empty JSON object")
    seen: set[int] = set()
    for name, idx in groups.items():
        try:
            check_name(name)
        except ParameterError as exc:
            raise DictionaryError(f"{p}: unsafe group name: {exc}") from None
        in_range = isinstance(idx, list) and all(_is_int(i) and 0 <= i < k for i in idx)
        if not in_range or not idx or len(set(idx)) != len(idx) or not seen.isdisjoint(idx):
            raise DictionaryError(
                f"{p}: group {name!r} must list distinct component indices in [0, {k})"
            )
        seen.update(idx)
    if seen != set(range(k)):
        raise DictionaryError(f"{p}: groups do not cover all {k} components; corrupt file")
    return {name: list(idx) for name, idx in groups.items()}


#: The name of :class:`Factorization` in nmfsep 0.1 (what ``load_model`` returned).
SeparationModel = Factorization


def save_model(fit: Any, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Save a factorization (not the audio) as ``.npz`` + JSON, atomically, no pickle.

    The file holds ``W`` and ``H`` (float32), the gains ``Q`` (float32, only with
    ``spatial="gains"``), ``loss_history`` (float64) and ``meta``
    (JSON: ``kind="model"``, format version, groups, settings, sample rate, STFT,
    iterations, convergence, warnings). Read it back with :func:`load_model`.

    Parameters
    ----------
    fit : Factorization, SeparationResult or alike
        Has ``W``, ``H``, ``groups``, ``sr``, ``stft``, ``settings``, ``n_iter``,
        ``converged``, ``warnings`` and ``loss_history``.
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
    meta = {
        "kind": "model",
        "format_version": MODEL_FORMAT_VERSION,
        "nmfsep_version": fit.settings.get("nmfsep_version", __version__),
        "sample_rate": int(fit.sr),
        "stft": fit.stft.to_dict(),
        "groups": {k: [int(i) for i in v] for k, v in fit.groups.items()},
        "settings": jsonable(fit.settings),
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
    if getattr(fit, "Q", None) is not None:
        arrays["Q"] = np.ascontiguousarray(fit.Q, dtype=np.float32)
    return atomic_savez(path, arrays, force=force)

