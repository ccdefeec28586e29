"""Dictionaries of spectral atoms: learning them from clips, combining, saving, loading.

A dictionary is a set of spectral atoms ``atoms (k, n_bins)`` (the rows of
``H`` in ``V ≈ W @ H``, one per line, as scikit-learn's ``components_``), each
labelled with the name of the source it belongs to, plus every setting needed
to use them on a mixture: the sample rate, the STFT settings, the spectrogram
power and the β of the divergence they were learned with.

File format (version 1), an ``.npz`` archive read with ``allow_pickle=False``:

* ``atoms``: ``(k, n_bins)`` float32, finite, non-negative, one spectrum per row. With
  temporal context (``context_frames`` T > 1 in the metadata) every atom spans T
  consecutive frames (:mod:`nmfsep.context`) and is stored as T consecutive rows, one
  per frame, each labelled with the atom's source: a reader that knows nothing of
  context still gets valid single-frame spectra (the frames of the atoms);
* ``labels``: ``(k,)`` unicode strings, each a safe file name (it becomes ``<label>.wav``);
* ``meta``: a 0-d unicode array holding a JSON object with ``kind="dictionary"``,
  ``format_version=1``, ``nmfsep_version``, ``sample_rate``, ``n_fft``,
  ``hop_length``, ``win_length``, ``window``, ``center``, ``power``, ``beta``,
  ``normalization`` (``"l2"`` or ``"none"``), ``clips`` (``[{"name", "duration"}]``)
  and optionally ``context_frames`` (T, 1 when absent, so files written before it
  load unchanged) and ``training`` (how the atoms were learned).

:func:`learn_dictionary` touches no audio file: the caller loads clips (see
:mod:`nmfsep.io`). :func:`learn_dictionary_online` reads files itself, block by
block, so that hours of training audio fit in bounded memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep._checks import check_rate
from nmfsep._checks import is_int as _is_int
from nmfsep._checks import is_real as _is_real
from nmfsep._npz import atomic_savez, jsonable, parse_meta, read_npz
from nmfsep._version import __version__
from nmfsep.exceptions import DictionaryError, ParameterError
from nmfsep.spectral import STFTConfig

__all__ = [
    "FORMAT_VERSION",
    "Dictionary",
    "combine",
    "learn_dictionary",
    "learn_dictionary_online",
    "fit_mismatch",
    "default_power",
    "DEFAULT_ATOMS_PER_SOURCE",
    "DEFAULT_BETA",
    "DEFAULT_CONTEXT_FRAMES",
    "default_learning_stft",
]

#: Version of the dictionary file format written by :meth:`Dictionary.save`.
FORMAT_VERSION = 1

#: Atoms per source recommended for supervised separation. With temporal context and
#: the longer window below, 48 separated best over the four benchmark tasks
#: (benchmarks/bench_separation.py): more atoms help pitched instruments (64-100
#: gained on piano, flute, violin) but cost drums + bass, and 48 balanced the two.
DEFAULT_ATOMS_PER_SOURCE = 48

#: Frames each atom spans (temporal context, :mod:`nmfsep.context`). Three frames
#: (the frame and its two neighbours) gained 0.5-2 dB median SDR on the trio and on
#: drums + bass, where single-frame spectra of different instruments look alike;
#: five frames did no better.
DEFAULT_CONTEXT_FRAMES = 3

#: Dictionaries are learned, by default, with a window this many times longer than
#: :meth:`STFTConfig.for_sample_rate` (about 186 ms): finer frequency resolution
#: separates harmonic instruments better (+0.3 to +3.5 dB in the benchmark).
LEARNING_WINDOW_SCALE = 2

#: β of learned dictionaries. Kullback-Leibler on the magnitude spectrogram separated
#: best over the four benchmark tasks; Itakura-Saito on the power spectrogram was as
#: good on piano + flute but 1-3 dB worse with bass and drums.
DEFAULT_BETA = "kullback-leibler"

_NORMALIZATIONS = ("l2", "none")
_STFT_FIELDS = ("n_fft", "hop_length", "win_length", "window", "center")
_META_FIELDS = (
    "format_version",
    "nmfsep_version",
    "sample_rate",
    "n_fft",
    "hop_length",
    "win_length",
    "window",
    "center",
    "power",
    "beta",
    "normalization",
    "clips",
)


def default_learning_stft(sr: int) -> STFTConfig:
    """STFT settings a dictionary is learned with when none are given.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.

    Returns
    -------
    STFTConfig
        :meth:`STFTConfig.for_sample_rate` with ``n_fft`` and ``hop_length``
        :data:`LEARNING_WINDOW_SCALE` times longer (4096 / 1024 at 22.05 kHz,
        8192 / 2048 at 44.1 kHz).

    Examples
    --------
    >>> default_learning_stft(22050).n_fft
    4096
    """
    base = STFTConfig.for_sample_rate(sr)
    return STFTConfig(
        n_fft=LEARNING_WINDOW_SCALE * base.n_fft,
        hop_length=LEARNING_WINDOW_SCALE * base.hop_length,
    )


def default_power(beta: float) -> float:
    """Spectrogram power that suits a β-divergence.

    Parameters
    ----------
    beta : float
        The β of the divergence.

    Returns
    -------
    float
        1 (magnitude spectrogram) for β > 0 (Kullback-Leibler, Frobenius), 2 (power
        spectrogram) for β <= 0 (Itakura-Saito and below, which model power).
    """
    return 2.0 if float(beta) <= 0 else 1.0


@dataclass(frozen=True, eq=False)
class Dictionary:
    """Labelled spectral atoms and the settings they were learned with.

    Parameters
    ----------
    atoms : np.ndarray [shape=(k, context_frames * n_bins)], float32, non-negative, finite
        Spectral atoms, one per row (``H`` of ``V ≈ W @ H``). Copied, stored read-only.
    labels : tuple of str [length k]
        Source name of each atom; every label must be a safe file name
        (:func:`nmfsep.io.check_name`).
    sr : int
        Sample rate in Hz the atoms were learned at.
    stft : STFTConfig
        STFT settings the atoms were learned with; ``stft.n_bins == n_bins``.
    power : float
        Spectrogram power (1: magnitude, 2: power).
    beta : float
        β of the divergence the atoms were learned with.
    normalization : {"l2", "none"}
        ``"l2"``: every atom has unit Euclidean norm.
    clips : tuple of dict
        Training clips, ``{"name": str, "duration": float seconds}`` each.
    nmfsep_version : str
        Version of nmfsep that learned the atoms.
    training : dict
        How the atoms were learned (iterations, loss, sparsity...); informative only.
    context_frames : int
        Frames each atom spans (1: plain spectra). Separation stacks the mixture's
        frames the same way (:func:`nmfsep.context.stack_frames`).

    Raises
    ------
    ParameterError
        If a field has the wrong type, shape or value.

    See Also
    --------
    learn_dictionary : learns a dictionary from clips.
    combine : joins dictionaries of several sources.
    """

    atoms: np.ndarray
    labels: tuple[str, ...]
    sr: int
    stft: STFTConfig
    power: float = 1.0
    beta: float = 1.0
    normalization: str = "l2"
    clips: tuple[dict[str, Any], ...] = ()
    nmfsep_version: str = __version__
    training: dict[str, Any] = field(default_factory=dict)
    context_frames: int = 1

    def __post_init__(self) -> None:
        from nmfsep.io import check_name

        if not isinstance(self.stft, STFTConfig):
            raise ParameterError(f"stft must be an STFTConfig, got {type(self.stft).__name__}")
        atoms = np.asarray(self.atoms)
        if atoms.ndim != 2 or atoms.shape[0] < 1:
            raise ParameterError(
                f"atoms must have shape (k, n_bins) with k >= 1, got {atoms.shape}"
            )
        if atoms.dtype.kind not in "fiu":
            raise ParameterError(f"atoms must be real numbers, got dtype {atoms.dtype}")
        if not _is_int(self.context_frames) or self.context_frames < 1:
            raise ParameterError(
                f"context_frames must be an int >= 1, got {self.context_frames!r}"
            )
        object.__setattr__(self, "context_frames", int(self.context_frames))
        if atoms.shape[1] != self.context_frames * self.stft.n_bins:
            raise ParameterError(
                f"atoms have {atoms.shape[1]} columns but n_fft={self.stft.n_fft} gives "
                f"{self.stft.n_bins} bins x context_frames={self.context_frames} = "
                f"{self.context_frames * self.stft.n_bins}"
            )
        atoms = np.array(atoms, dtype=np.float32, copy=True, order="C")
        if not np.isfinite(atoms).all():
            raise ParameterError("atoms contain NaN or Inf values")
        if (atoms < 0).any():
            raise ParameterError(f"atoms must be non-negative, got a minimum of {atoms.min()}")
        atoms.flags.writeable = False
        object.__setattr__(self, "atoms", atoms)

        if isinstance(self.labels, str) or not isinstance(self.labels, Sequence | np.ndarray):
            raise ParameterError(f"labels must be a sequence of strings, got {self.labels!r}")
        labels = tuple(self.labels)
        if len(labels) != atoms.shape[0]:
            raise ParameterError(
                f"{len(labels)} labels for {atoms.shape[0]} atoms; give one label per atom"
            )
        for label in labels:
            check_name(label)
        object.__setattr__(self, "labels", tuple(str(label) for label in labels))

        object.__setattr__(self, "sr", check_rate(self.sr, "sr"))
        if not _is_real(self.power) or float(self.power) <= 0:
            raise ParameterError(f"power must be a finite number > 0 (1 or 2), got {self.power!r}")
        object.__setattr__(self, "power", float(self.power))
        if not _is_real(self.beta):
            raise ParameterError(f"beta must be a finite number, got {self.beta!r}")
        object.__setattr__(self, "beta", float(self.beta))
        if self.normalization not in _NORMALIZATIONS:
            raise ParameterError(
                f"normalization must be one of {_NORMALIZATIONS}, got {self.normalization!r}"
            )
        clips = []
        for clip in self.clips:
            if not isinstance(clip, Mapping) or set(clip) != {"name", "duration"}:
                raise ParameterError(
                    f"each clip must be a mapping with keys 'name' and 'duration', got {clip!r}"
                )
            if not isinstance(clip["name"], str):
                raise ParameterError(f"clip name must be a string, got {clip['name']!r}")
            if not _is_real(clip["duration"]) or float(clip["duration"]) < 0:
                raise ParameterError(
                    f"clip duration must be a number of seconds >= 0, got {clip['duration']!r}"
                )
            clips.append({"name": clip["name"], "duration": float(clip["duration"])})
        object.__setattr__(self, "clips", tuple(clips))
        if not isinstance(self.nmfsep_version, str):
            raise ParameterError(f"nmfsep_version must be a string, got {self.nmfsep_version!r}")
        if not isinstance(self.training, Mapping):
            raise ParameterError(f"training must be a mapping, got {self.training!r}")
        object.__setattr__(self, "training", dict(self.training))

    # ------------------------------------------------------------------ views

    @property
    def names(self) -> tuple[str, ...]:
        """Distinct source names, in the order of their first atom."""
        return tuple(dict.fromkeys(self.labels))

    @property
    def n_atoms(self) -> int:
        """Number of atoms k."""
        return int(self.atoms.shape[0])

    @property
    def n_bins(self) -> int:
        """Number of frequency bins of every frame of an atom."""
        return int(self.atoms.shape[1] // self.context_frames)

    @property
    def groups(self) -> dict[str, list[int]]:
        """Indices of the atoms of every source, ``{name: [i, ...]}`` in :attr:`names` order."""
        out: dict[str, list[int]] = {name: [] for name in self.names}
        for i, label in enumerate(self.labels):
            out[label].append(i)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dictionary):
            return NotImplemented
        return (
            np.array_equal(self.atoms, other.atoms)
            and self.labels == other.labels
            and self.sr == other.sr
            and self.stft == other.stft
            and self.power == other.power
            and self.beta == other.beta
            and self.normalization == other.normalization
            and self.clips == other.clips
            and self.nmfsep_version == other.nmfsep_version
            and self.training == other.training
            and self.context_frames == other.context_frames
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Dictionary(names={list(self.names)}, k={self.n_atoms}, n_bins={self.n_bins}, "
            f"sr={self.sr}, n_fft={self.stft.n_fft}, hop_length={self.stft.hop_length}, "
            f"power={self.power:g}, beta={self.beta:g}, context_frames={self.context_frames})"
        )

    def meta(self) -> dict[str, Any]:
        """Return the JSON metadata written to the file.

        Returns
        -------
        dict
            JSON-serializable; see the module documentation for the fields.
        """
        meta: dict[str, Any] = {
            "kind": "dictionary",
            "format_version": FORMAT_VERSION,
            "nmfsep_version": self.nmfsep_version,
            "sample_rate": self.sr,
            **self.stft.to_dict(),
            "power": self.power,
            "beta": self.beta,
            "normalization": self.normalization,
            "clips": [dict(c) for c in self.clips],
            "names": list(self.names),
            "n_atoms": self.n_atoms,
            "context_frames": self.context_frames,
        }
        if self.training:
            meta["training"] = jsonable(self.training)
        return meta

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the dictionary as an ``.npz`` file, atomically.

        The archive is written to a hidden temporary file next to ``path`` and renamed
        over it, so ``path`` is never half-written. No pickle is involved.

        Parameters
        ----------
        path : str or os.PathLike
            Output file, e.g. ``"piano.npz"`` (written exactly as named, no suffix is
            added). Missing parent folders are created.
        force : bool
            Overwrite ``path`` if it exists.

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        OutputError
            If ``path`` exists and ``force`` is False, is a folder, or cannot be written.
        """
        T = self.context_frames
        arrays = {  # one row per frame of every atom (see the module documentation)
            "atoms": np.ascontiguousarray(self.atoms, dtype=np.float32).reshape(-1, self.n_bins),
            "labels": np.array([lab for lab in self.labels for _ in range(T)], dtype=np.str_),
            "meta": np.array(json.dumps(self.meta(), allow_nan=False), dtype=np.str_),
        }
        return atomic_savez(path, arrays, force=force)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Dictionary:
        """Read and check a dictionary file.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save`.

        Returns
        -------
        Dictionary

        Raises
        ------
        DictionaryError
            One line naming the file and the problem: missing or unreadable file, not
            an ``.npz`` archive, pickled (object) arrays, missing or malformed arrays,
            NaN or negative atoms, a label count that does not match the atoms, labels
            that are not safe file names, bad JSON, an unknown format version or
            missing or invalid metadata.
        """
        p = Path(path)
        arrays = read_npz(p, ("atoms", "labels", "meta"), what="dictionary")
        meta = parse_meta(p, arrays["meta"], what="dictionary")
        if meta.get("kind", "dictionary") != "dictionary":
            raise DictionaryError(
                f"{p}: is an nmfsep {meta.get('kind')!s} file, not a dictionary; "
                "give a file written by `nmfsep learn`"
            )
        missing = [name for name in _META_FIELDS if name not in meta]
        if missing:
            raise DictionaryError(f"{p}: metadata lacks {missing}; learn the dictionary again")
        if meta["format_version"] != FORMAT_VERSION or not _is_int(meta["format_version"]):
            raise DictionaryError(
                f"{p}: format_version {meta['format_version']!r} is not supported (this nmfsep "
                f"reads version {FORMAT_VERSION}); upgrade nmfsep or learn the dictionary again"
            )

        atoms = arrays["atoms"]
        if atoms.dtype != np.float32:
            raise DictionaryError(f"{p}: atoms have dtype {atoms.dtype}, expected float32")
        if atoms.ndim != 2 or atoms.shape[0] < 1 or atoms.shape[1] < 1:
            raise DictionaryError(
                f"{p}: atoms have shape {atoms.shape}, expected (k, n_bins) with k >= 1"
            )
        if not np.isfinite(atoms).all():
            raise DictionaryError(f"{p}: atoms contain NaN or Inf values; the file is corrupt")
        if (atoms < 0).any():
            raise DictionaryError(f"{p}: atoms contain negative values; the file is corrupt")
        labels = arrays["labels"]
        if labels.dtype.kind != "U" or labels.ndim != 1:
            raise DictionaryError(
                f"{p}: labels must be a 1-D array of strings, got dtype {labels.dtype} "
                f"and shape {labels.shape}"
            )
        if labels.shape[0] != atoms.shape[0]:
            raise DictionaryError(
                f"{p}: {labels.shape[0]} labels for {atoms.shape[0]} atoms; the file is corrupt"
            )
        from nmfsep.io import check_name

        for label in labels.tolist():
            try:
                check_name(label)
            except ParameterError as exc:
                raise DictionaryError(f"{p}: unsafe source label: {exc}") from None

        try:
            stft = STFTConfig.from_dict({k: meta[k] for k in _STFT_FIELDS})
        except ParameterError as exc:
            raise DictionaryError(f"{p}: invalid STFT settings in metadata: {exc}") from None
        context = meta.get("context_frames", 1)
        if not _is_int(context) or not 1 <= context <= 64:
            raise DictionaryError(
                f"{p}: context_frames must be an int from 1 to 64, got {context!r:.50}"
            )
        if atoms.shape[1] != stft.n_bins:
            raise DictionaryError(
                f"{p}: atoms have {atoms.shape[1]} bins but n_fft={stft.n_fft} gives "
                f"{stft.n_bins}; the file is corrupt"
            )
        if atoms.shape[0] % context:
            raise DictionaryError(
                f"{p}: {atoms.shape[0]} rows of atoms are not whole atoms of "
                f"context_frames={context} rows each; the file is corrupt"
            )
        # rows -> atoms of `context` frames; every frame of an atom has the atom's label
        atoms = atoms.reshape(-1, context * stft.n_bins)
        row_labels = labels.tolist()
        labels = np.array(row_labels[::context])
        if [lab for lab in labels.tolist() for _ in range(context)] != row_labels:
            raise DictionaryError(
                f"{p}: the {context} rows of an atom (context_frames={context}) must share "
                "one label; the file is corrupt"
            )
        sr = meta["sample_rate"]
        if not _is_int(sr) or sr <= 0:
            raise DictionaryError(f"{p}: sample_rate must be a positive int, got {sr!r}")
        for name in ("power", "beta"):
            if not _is_real(meta[name]):
                raise DictionaryError(f"{p}: {name} must be a finite number, got {meta[name]!r}")
        if meta["power"] <= 0:
            raise DictionaryError(f"{p}: power must be > 0, got {meta['power']!r}")
        if meta["normalization"] not in _NORMALIZATIONS:
            raise DictionaryError(
                f"{p}: normalization must be one of {_NORMALIZATIONS}, "
                f"got {meta['normalization']!r}"
            )
        if meta["normalization"] == "l2":
            norms = np.linalg.norm(atoms.astype(np.float64), axis=1)
            if not np.allclose(norms, 1.0, atol=1e-3):
                raise DictionaryError(
                    f"{p}: metadata says the atoms have unit norm but they do not; "
                    "the file is corrupt"
                )
        if not isinstance(meta["nmfsep_version"], str):
            raise DictionaryError(f"{p}: nmfsep_version must be a string")
        clips = meta["clips"]
        if not isinstance(clips, list) or not all(
            isinstance(c, dict)
            and set(c) == {"name", "duration"}
            and isinstance(c["name"], str)
            and _is_real(c["duration"])
            and c["duration"] >= 0
            for c in clips
        ):
            raise DictionaryError(
                f"{p}: clips must be a list of {{name, duration}} objects, got {clips!r:.200}"
            )
        training = meta.get("training", {})
        if not isinstance(training, dict):
            raise DictionaryError(f"{p}: training must be a JSON object, got {training!r:.200}")
        try:
            return cls(
                atoms=atoms,
                labels=tuple(labels.tolist()),
                sr=sr,
                stft=stft,
                power=meta["power"],
                beta=meta["beta"],
                normalization=meta["normalization"],
                clips=tuple(clips),
                nmfsep_version=meta["nmfsep_version"],
                training=training,
                context_frames=context,
            )
        except ParameterError as exc:  # pragma: no cover - every field is checked above
            raise DictionaryError(f"{p}: {exc}") from None


# ---------------------------------------------------------------------- combining


def fit_mismatch(
    dictionary: Dictionary,
    sr: int | None,
    stft: STFTConfig | None,
    power: float | None,
) -> str | None:
    """Say why a dictionary cannot be used with given analysis settings.

    Parameters
    ----------
    dictionary : Dictionary
        The dictionary.
    sr : int or None
        Analysis sample rate in Hz; None skips the check (nmfsep resamples a mixture
        to the dictionary's rate).
    stft : STFTConfig or None
        Analysis STFT settings; None skips the check.
    power : float or None
        Analysis spectrogram power; None skips the check.

    Returns
    -------
    str or None
        None if the dictionary fits, else a one-line reason naming the setting, both
        values and the fix.
    """
    names = ", ".join(dictionary.names)
    if sr is not None and int(sr) != dictionary.sr:
        return (
            f"dictionary {names!r} was learned at {dictionary.sr} Hz but the analysis runs at "
            f"{sr} Hz; resample the mixture to {dictionary.sr} Hz"
        )
    if stft is not None:
        mine = dictionary.stft
        for key in ("n_fft", "hop_length", "window", "center"):
            a, b = getattr(mine, key), getattr(stft, key)
            if a != b:
                return (
                    f"dictionary {names!r} was learned with {key}={a!r} but the analysis uses "
                    f"{key}={b!r}; drop the STFT option to use the dictionary's settings"
                )
        if mine.effective_win_length != stft.effective_win_length:
            return (
                f"dictionary {names!r} was learned with win_length="
                f"{mine.effective_win_length} but the analysis uses win_length="
                f"{stft.effective_win_length}; drop the STFT option to use the dictionary's"
            )
    if power is not None and float(power) != dictionary.power:
        return (
            f"dictionary {names!r} was learned on a spectrogram of power {dictionary.power:g} "
            f"but the analysis uses power {float(power):g}; use power={dictionary.power:g}"
        )
    return None


def combine(dicts: Sequence[Dictionary]) -> Dictionary:
    """Concatenate the dictionaries of several sources for one separation.

    Parameters
    ----------
    dicts : sequence of Dictionary
        At least one; all learned with the same sample rate, STFT settings,
        spectrogram power and β, and with distinct source names.

    Returns
    -------
    Dictionary
        Atoms stacked in the order given, labels kept; ``normalization`` is ``"l2"``
        only if every input has it.

    Raises
    ------
    DictionaryError
        If a setting differs (the message names it and both values) or two
        dictionaries hold the same source name.
    ParameterError
        If ``dicts`` is empty or holds something that is not a Dictionary.
    """
    if isinstance(dicts, Dictionary):
        dicts = [dicts]
    dicts = list(dicts)
    if not dicts:
        raise ParameterError("no dictionaries given; give at least one (e.g. --dict piano.npz)")
    for d in dicts:
        if not isinstance(d, Dictionary):
            raise ParameterError(f"expected Dictionary objects, got {type(d).__name__}")
    if len(dicts) == 1:
        return dicts[0]
    first = dicts[0]

    def settings(d: Dictionary) -> dict[str, Any]:
        return {
            "sample rate": d.sr,
            "n_fft": d.stft.n_fft,
            "hop_length": d.stft.hop_length,
            "win_length": d.stft.effective_win_length,
            "window": d.stft.window,
            "center": d.stft.center,
            "power": d.power,
            "beta": d.beta,
            "context_frames": d.context_frames,
        }

    ref = settings(first)
    seen: dict[str, int] = {name: 0 for name in first.names}
    for j, d in enumerate(dicts[1:], start=1):
        for key, value in settings(d).items():
            if value != ref[key]:
                raise DictionaryError(
                    f"dictionaries {list(first.names)} and {list(d.names)} differ in {key} "
                    f"({ref[key]!r} vs {value!r}); learn them with the same settings"
                )
        for name in d.names:
            if name in seen:
                raise DictionaryError(
                    f"source name {name!r} is in dictionaries {seen[name] + 1} and {j + 1}; "
                    "give each source one dictionary (or learn them under different names)"
                )
            seen[name] = j
    return Dictionary(
        atoms=np.concatenate([d.atoms for d in dicts], axis=0),
        labels=tuple(label for d in dicts for label in d.labels),
        sr=first.sr,
        stft=first.stft,
        power=first.power,
        beta=first.beta,
        normalization="l2" if all(d.normalization == "l2" for d in dicts) else "none",
        clips=tuple(c for d in dicts for c in d.clips),
        nmfsep_version=first.nmfsep_version,
        context_frames=first.context_frames,
    )


# ---------------------------------------------------------------------- learning


def unit_atoms(H: np.ndarray) -> np.ndarray:
    """Learned atoms scaled to unit L2 norm, as dictionaries store them.

    Parameters
    ----------
    H : np.ndarray [shape=(k, n_bins)], non-negative

    Returns
    -------
    np.ndarray [shape=(k, n_bins)], float32
        An atom that died in training (all zeros) carries nothing; it gets a flat
        spectrum so it stays a valid unit-norm atom (its activations stay near zero).
    """
    H = np.array(H, dtype=np.float64)
    norms = np.linalg.norm(H, axis=1)
    dead = norms <= 0
    if dead.any():
        H[dead] = 1.0
        norms[dead] = np.sqrt(H.shape[1])
    return (H / norms[:, None]).astype(np.float32)


def learn_dictionary(
    clips: Sequence[tuple[np.ndarray, int]],
    name: str,
    n_components: int,
    *,
    sr: int | None = None,
    stft: STFTConfig | None = None,
    beta: str | float = DEFAULT_BETA,
    power: float | None = None,
    normalize_atoms: bool | None = None,
    alpha_W: float = 0.0,
    l1_ratio: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    random_state: int | None = 0,
    callback: Callable[[int, float | None], None] | None = None,
    clip_names: Sequence[str] | None = None,
    context_frames: int = DEFAULT_CONTEXT_FRAMES,
) -> Dictionary:
    """Learn the spectral atoms of one source from example clips.

    All clips are brought to one sample rate, their spectrograms ``V``
    ``(n_frames_i, n_bins)`` are joined along frames (each clip's frames stacked
    with their neighbours when ``context_frames`` > 1), and blind β-NMF learns
    ``n_components`` atoms; the atoms are returned with unit L2 norm.

    Parameters
    ----------
    clips : sequence of (y, sr)
        Training audio of the source alone: ``y`` ``(n_channels, n_samples)`` real
        floating, finite; ``sr`` its sample rate in Hz. Never modified.
    name : str
        Source name, the label of every atom; must be a safe file name
        (:func:`nmfsep.io.check_name`), since separation writes ``<name>.wav``.
    n_components : int
        Number of atoms k, ``1 <= k <=`` total number of STFT frames;
        :data:`DEFAULT_ATOMS_PER_SOURCE` (48) separated best in the benchmark.
    sr : int or None
        Sample rate to learn at; None uses the first clip's rate. Other clips are
        resampled (:func:`nmfsep.io.resample`).
    stft : STFTConfig or None
        STFT settings; None uses :func:`default_learning_stft` (a window twice as
        long as :meth:`STFTConfig.for_sample_rate`'s). Mixtures are analysed with
        the dictionary's settings.
    beta : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        β-divergence (see :data:`DEFAULT_BETA`).
    power : float or None
        Spectrogram power; None: 1 (magnitude) for β > 0, 2 (power) for β <= 0.
    normalize_atoms : bool or None
        Keep the atoms at unit norm inside the objective (Le Roux et al. 2015), so
        that ``alpha_W`` makes the activations sparse rather than the atoms large.
        None (default): only when ``alpha_W > 0``, where it is needed; without
        sparsity, plain updates followed by normalisation separated better (+0.5 to
        +1.2 dB median SDR in benchmarks/bench_separation.py). The returned atoms have
        unit L2 norm either way.
    alpha_W : float
        Regularisation of the activations (scaled as in scikit-learn); the atoms are
        not regularised.
    l1_ratio : float
        Share of L1 in that regularisation (1: pure sparsity).
    max_iter, tol : int, float
        Stopping rules of :func:`nmfsep.nmf.nmf`.
    random_state : int or None
        Seed; the same seed gives bit-identical atoms.
    callback : callable(iteration, loss or None), optional
        Progress callback, passed to :func:`nmfsep.nmf.nmf`.
    clip_names : sequence of str or None
        Names of the clips for the metadata (e.g. file names); default
        ``clip_1``, ``clip_2``...
    context_frames : int
        Consecutive frames each atom spans (:data:`DEFAULT_CONTEXT_FRAMES`); 1 learns
        plain single-frame spectra.

    Returns
    -------
    Dictionary
        ``atoms (n_components, context_frames * n_bins)`` float32 unit-norm, every
        label ``name``;
        ``training`` holds the iterations, final loss, convergence and frame count.

    Raises
    ------
    ParameterError
        If ``name`` is unsafe, ``clips`` is empty or holds invalid audio or rates,
        ``n_components`` is out of range, or all the training audio is silent.

    See Also
    --------
    combine : joins the dictionaries of several sources.
    nmfsep.separate.separate : uses them.
    """
    from nmfsep.context import stack_frames
    from nmfsep.divergence import beta_loss_to_float
    from nmfsep.io import check_name, resample
    from nmfsep.nmf import nmf
    from nmfsep.spectral import model_spectrogram
    from nmfsep.spectral import stft as compute_stft

    check_name(name)
    if isinstance(clips, tuple) and len(clips) == 2 and isinstance(clips[0], np.ndarray):
        raise ParameterError("clips must be a sequence of (y, sr) pairs, e.g. [(y, sr)]")
    clips = list(clips)
    if not clips:
        raise ParameterError("no training clips given; give at least one clip of the source")
    if clip_names is None:
        clip_names = [f"clip_{i + 1}" for i in range(len(clips))]
    clip_names = list(clip_names)
    if len(clip_names) != len(clips) or not all(isinstance(c, str) for c in clip_names):
        raise ParameterError(f"give one clip name (a string) per clip, got {clip_names!r}")
    if not _is_int(n_components) or n_components < 1:
        raise ParameterError(f"n_components must be an int >= 1, got {n_components!r}")
    beta_f = beta_loss_to_float(beta)
    if power is None:
        power = default_power(beta_f)
    if not _is_real(power) or float(power) <= 0:
        raise ParameterError(f"power must be a finite number > 0 (1 or 2), got {power!r}")
    if stft is not None and not isinstance(stft, STFTConfig):
        raise ParameterError(f"stft must be an STFTConfig or None, got {type(stft).__name__}")
    if normalize_atoms is None:
        normalize_atoms = _is_real(alpha_W) and float(alpha_W) > 0
    if not _is_int(context_frames) or not 1 <= context_frames <= 64:
        raise ParameterError(f"context_frames must be an int from 1 to 64, got {context_frames!r}")

    checked: list[tuple[np.ndarray, int]] = []
    for i, pair in enumerate(clips):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ParameterError(f"clip {i + 1} must be a (y, sr) pair, got {type(pair).__name__}")
        y, clip_sr = pair
        if not _is_real(clip_sr) or clip_sr <= 0 or not float(clip_sr).is_integer():
            raise ParameterError(
                f"clip {i + 1}: sample rate must be a positive whole number of Hz, got {clip_sr!r}"
            )
        checked.append((_check_clip(y, i + 1), int(clip_sr)))
    target_sr = checked[0][1] if sr is None else sr
    target_sr = check_rate(target_sr, "sr")
    config = default_learning_stft(target_sr) if stft is None else stft

    spectrograms = []
    durations = []
    for y, clip_sr in checked:
        durations.append(y.shape[1] / clip_sr)
        y_r = resample(y, clip_sr, target_sr) if clip_sr != target_sr else y
        if y_r.shape[1] == 0:
            continue
        X = compute_stft(y_r, config)
        peak = float(np.abs(X).max())
        if peak > 0:
            X = X / peak  # relative levels within a clip; V is rescaled below anyway
        # frames are stacked within a clip, never across two clips
        spectrograms.append(stack_frames(model_spectrogram(X, power), context_frames))
    if not spectrograms:
        raise ParameterError("the training clips hold no audio; give clips of the source playing")
    V = np.concatenate(spectrograms, axis=0)
    n_frames = V.shape[0]
    if n_components > n_frames:
        raise ParameterError(
            f"n_components={n_components} is more than the {n_frames} STFT frames of the "
            f"training audio ({sum(durations):.2f} s); use fewer atoms or longer clips"
        )
    mean = float(V.mean(dtype=np.float64))
    if not mean > 0:
        raise ParameterError(
            f"the training audio of {name!r} is silent (all samples are zero); "
            "give clips in which the source plays"
        )
    V = V / np.float32(mean)

    result = nmf(
        V,
        int(n_components),
        beta=beta_f,
        solver="mu",
        max_iter=max_iter,
        tol=tol,
        alpha_W=alpha_W,
        alpha_H=0.0,
        l1_ratio=l1_ratio,
        normalize_atoms=normalize_atoms,
        random_state=random_state,
        callback=callback,
        warn=False,
    )
    atoms = unit_atoms(result.H)
    training = {
        "n_frames": int(n_frames),
        "n_iter": int(result.n_iter),
        "converged": bool(result.converged),
        "loss": float(result.loss),
        "max_iter": int(max_iter),
        "tol": float(tol),
        "alpha_W": float(alpha_W),
        "l1_ratio": float(l1_ratio),
        "normalize_atoms": bool(normalize_atoms),
        "random_state": random_state if random_state is None or _is_int(random_state) else None,
        "dead_atoms": int(np.sum(~result.H.any(axis=1))),
    }
    return Dictionary(
        context_frames=int(context_frames),
        atoms=atoms,
        labels=(name,) * int(n_components),
        sr=target_sr,
        stft=config,
        power=float(power),
        beta=beta_f,
        normalization="l2",
        clips=tuple(
            {"name": n, "duration": round(float(d), 6)}
            for n, d in zip(clip_names, durations, strict=True)
        ),
        training=training,
    )


def _check_clip(y: object, index: int) -> np.ndarray:
    if not isinstance(y, np.ndarray):
        raise ParameterError(f"clip {index}: audio must be a numpy array, got {type(y).__name__}")
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 1:
        raise ParameterError(
            f"clip {index}: audio must have shape (n_channels, n_samples) with at least one "
            f"sample, got {y.shape}; for mono audio pass y[np.newaxis]"
        )
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(
            f"clip {index}: audio must be float32 or float64, got {y.dtype}; "
            "convert with y.astype(np.float32)"
        )
    if not np.isfinite(y).all():
        raise ParameterError(f"clip {index}: audio contains NaN or Inf samples; clean it first")
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float32)
    return y


# ---------------------------------------------------------------------- online learning

#: Seconds of audio per block of :func:`learn_dictionary_online`.
DEFAULT_ONLINE_BLOCK_SECONDS = 30.0


def learn_dictionary_online(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    name: str,
    n_components: int,
    *,
    sr: int | None = None,
    stft: STFTConfig | None = None,
    beta: str | float = DEFAULT_BETA,
    power: float | None = None,
    block_seconds: float = DEFAULT_ONLINE_BLOCK_SECONDS,
    passes: int = 1,
    random_state: int | None = 0,
    callback: Callable[[float, float], None] | None = None,
) -> Dictionary:
    """Learn the spectral atoms of one source from audio files of any length, block by block.

    The streaming counterpart of :func:`learn_dictionary`: the same spectrogram
    (sample rate, STFT settings, power, level normalisation) is computed block by
    block and factorised by the online β-NMF of :func:`nmfsep.online.online_nmf`,
    so memory depends on ``block_seconds`` and ``n_components``, not on the total
    duration of the training audio: neither the audio nor the spectrogram of a
    whole file is ever held.

    How it relates to :func:`learn_dictionary`
    ------------------------------------------
    * **Frames.** Blocks are cut on the whole-file STFT hop grid (as
      :func:`nmfsep.stream.separate_stream` does), so every frame is the frame
      the whole-file STFT of the (resampled) file gives.
    * **Levels.** :func:`learn_dictionary` divides each clip's STFT by the clip's
      peak, then the stacked spectrogram by its mean. A first, cheap pass over
      the files (read + STFT, no NMF) computes every file's peak and the global
      mean, so each block is scaled exactly as in the batch spectrogram.
    * **Resampling.** A file at another rate than ``sr`` is resampled while it is
      read with :class:`soxr.ResampleStream` (HQ, the filter of
      :func:`nmfsep.io.resample`), continuous across blocks: no block-edge
      effects. The samples equal whole-clip resampling to the resampler's
      rounding (a sample or so of length at the end).
    * **Atoms.** The online NMF is a different estimate than batch NMF; one pass
      over a long recording moves the atoms about ``n_frames / 2560`` batch
      iterations' worth (see :mod:`nmfsep.online`), so short training sets need
      several ``passes``. The atoms are returned with unit L2 norm (a dead atom
      becomes flat), as by :func:`learn_dictionary`.
    * **Context.** Atoms are single frames (``context_frames=1``): temporal
      context (:data:`DEFAULT_CONTEXT_FRAMES`) is not streamed yet.

    Parameters
    ----------
    paths : path or sequence of paths
        Audio files of the source alone (anything libsndfile reads).
    name : str
        Source name, the label of every atom (a safe file name).
    n_components : int
        Number of atoms k, ``1 <= k <=`` total number of STFT frames.
    sr : int or None
        Sample rate to learn at; None uses the first file's rate.
    stft : STFTConfig or None
        STFT settings; None uses :func:`default_learning_stft`, as :func:`learn_dictionary`.
    beta : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        β-divergence (see :data:`DEFAULT_BETA`).
    power : float or None
        Spectrogram power; None: 1 for β > 0, 2 for β <= 0.
    block_seconds : float
        Seconds of audio per block (at least one frame); 30 s at 22.05 kHz is
        about 1300 frames, a few tens of MB.
    passes : int
        Passes of the online NMF over all the files (each re-reads the files).
    random_state : int or None
        Seed of the initialisation (from the first block); same seed, same atoms.
    callback : callable(seconds_done, seconds_total), optional
        Progress over the audio read: called after every block. ``seconds_total``
        is ``(passes + 1) ×`` the total duration (the first pass measures the levels).

    Returns
    -------
    Dictionary
        As :func:`learn_dictionary`; ``training["algorithm"] == "online"`` with the
        frames, blocks, passes, block length and final loss; ``clips`` holds every
        file's name and duration.

    Raises
    ------
    ParameterError
        For an unsafe name, no paths, bad ``n_components``, ``block_seconds``,
        ``passes`` or rates, more atoms than frames, or all-silent audio.
    AudioFormatError
        For a missing, empty or undecodable file (the message names it).
    """
    from nmfsep.divergence import beta_loss_to_float
    from nmfsep.io import audio_info, check_name, open_blocks, read_blocks
    from nmfsep.online import online_nmf
    from nmfsep.spectral import FrameGrid, model_spectrogram
    from nmfsep.spectral import stft as compute_stft

    check_name(name)
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not isinstance(paths, Sequence):
        raise ParameterError(
            f"paths must be a list of audio file paths, got {type(paths).__name__}"
        )
    paths = [Path(p) for p in paths]
    if not paths:
        raise ParameterError("no training files given; give at least one file of the source")
    if not _is_int(n_components) or n_components < 1:
        raise ParameterError(f"n_components must be an int >= 1, got {n_components!r}")
    if not _is_real(block_seconds) or float(block_seconds) <= 0:
        raise ParameterError(
            f"block_seconds must be a finite number of seconds > 0, got {block_seconds!r}"
        )
    if not _is_int(passes) or passes < 1:
        raise ParameterError(f"passes must be an int >= 1, got {passes!r}")
    if random_state is not None and not _is_int(random_state):
        raise ParameterError(f"random_state must be an int or None, got {random_state!r}")
    if callback is not None and not callable(callback):
        raise ParameterError("callback must be callable(seconds_done, seconds_total)")
    beta_f = beta_loss_to_float(beta)
    if power is None:
        power = default_power(beta_f)
    if not _is_real(power) or float(power) <= 0:
        raise ParameterError(f"power must be a finite number > 0 (1 or 2), got {power!r}")
    power = float(power)
    if stft is not None and not isinstance(stft, STFTConfig):
        raise ParameterError(f"stft must be an STFTConfig or None, got {type(stft).__name__}")

    infos = [audio_info(p) for p in paths]  # missing / empty / undecodable -> one line
    target_sr = check_rate(infos[0]["samplerate"] if sr is None else sr, "sr")
    config = default_learning_stft(target_sr) if stft is None else stft
    grid = FrameGrid.of(config)
    cfg_frames = STFTConfig(n_fft=config.n_fft, hop_length=config.hop_length,
                            win_length=config.win_length, window=config.window, center=False)
    n_bins = config.n_bins
    fpb = max(1, int(round(min(float(block_seconds), 1e9) * target_sr / grid.hop)))
    durations = [info["frames"] / info["samplerate"] for info in infos]
    total_seconds = float(sum(durations))
    progress = {"done": 0.0, "total": total_seconds * (passes + 1)}
    frame_seconds = grid.hop / target_sr

    def file_blocks(path: Path, info: dict[str, Any], seconds: float):
        """Yield ``(n_frames, X)`` per block of one file; advance the progress."""
        base, done = progress["done"], 0.0
        if info["frames"] == 0:
            return
        with open_blocks(path, sr=target_sr) as reader:
            for t0, t1, seg in read_blocks(reader, grid, fpb):
                X = compute_stft(seg, cfg_frames)
                yield t1 - t0, X
                done = min(done + (t1 - t0) * frame_seconds, seconds)
                progress["done"] = base + done
                if callback is not None:
                    callback(progress["done"], progress["total"])
        progress["done"] = base + seconds

    # --- pass 1: every file's peak and the global mean of the normalised spectrogram ----
    peaks: list[float] = []
    total = 0.0
    n_frames = 0
    for path, info, seconds in zip(paths, infos, durations, strict=True):
        peak = 0.0
        file_sum = 0.0
        for nb, X in file_blocks(path, info, seconds):
            n_frames += nb
            peak = max(peak, float(np.abs(X).max()))
            file_sum += float(model_spectrogram(X, power).sum(dtype=np.float64))
        peaks.append(peak)
        if peak > 0:
            total += file_sum / peak**power  # V is homogeneous of degree `power` in X
    if n_frames == 0:
        raise ParameterError("the training files hold no audio; give files of the source playing")
    if n_components > n_frames:
        raise ParameterError(
            f"n_components={n_components} is more than the {n_frames} STFT frames of the "
            f"training audio ({total_seconds:.2f} s); use fewer atoms or longer files"
        )
    mean = total / (n_frames * n_bins)
    if not mean > 0:
        raise ParameterError(
            f"the training audio of {name!r} is silent (all samples are zero); "
            "give files in which the source plays"
        )

    # --- passes 2...: the online NMF over the normalised blocks ---------------------------
    def blocks():
        for path, info, seconds, peak in zip(paths, infos, durations, peaks, strict=True):
            if not peak > 0:  # a silent file: zeros carry nothing (it still counts in mean)
                for _ in file_blocks(path, info, seconds):
                    pass
                continue
            scale = np.float32(1.0 / (peak**power * mean))
            for _, X in file_blocks(path, info, seconds):
                V = model_spectrogram(X, power)
                del X
                V *= scale
                yield V

    result = online_nmf(
        blocks,
        int(n_components),
        beta=beta_f,
        passes=int(passes),
        random_state=random_state,
    )
    atoms = unit_atoms(result.H)
    losses = result.loss_history
    training = {
        "algorithm": "online",
        "n_frames": int(n_frames),
        "n_frames_seen": int(result.n_frames_seen),
        "n_batches": int(result.n_batches),
        "passes": int(result.n_passes),
        "block_seconds": float(block_seconds),
        "loss": float(losses[-1]) if losses.size else None,
        "normalize_atoms": False,
        "random_state": random_state,
        "dead_atoms": int(np.sum(~result.H.any(axis=1))),
    }
    if callback is not None and progress["done"] < progress["total"]:
        callback(progress["total"], progress["total"])
    return Dictionary(
        atoms=atoms,
        labels=(name,) * int(n_components),
        sr=target_sr,
        stft=config,
        power=power,
        beta=beta_f,
        normalization="l2",
        clips=tuple(
            {"name": p.name, "duration": round(float(d), 6)}
            for p, d in zip(paths, durations, strict=True)
        ),
        training=training,
    )
