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
  load unchanged), ``training`` (how the atoms were learned) and ``provenance`` (where
  the training audio came from and its licence; every built-in has it).

:func:`learn_dictionary` touches no audio file: the caller loads clips (see
:mod:`nmfsep.io`). :func:`learn_dictionary_online` reads files itself, block by
block, so that hours of training audio fit in bounded memory.
:func:`learn_dictionary_files` learns from files either way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep._checks import (
    MAX_SAMPLE_RATE,
    check_callable,
    check_choice,
    check_int,
    check_rate,
    check_real,
    fail,
    is_int,
    is_real,
    peak_problem,
)
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
    "learn_dictionary_files",
    "fit_mismatch",
    "default_power",
    "DEFAULT_ATOMS_PER_SOURCE",
    "DEFAULT_BETA",
    "DEFAULT_CONTEXT_FRAMES",
    "default_learning_stft",
    "DEFAULT_PITCH_SHIFTS",
    "DEFAULT_HARMONIC",
    "HARMONIC_MARGIN",
    "AUTO_PITCH_SHIFTS",
    "check_pitch_shifts",
    "dictionary_fit",
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
#: five frames did no better (chosen on FluidR3). Checked leave-one-family-out on the
#: five families of ``bench_heldout.py`` (1, 3, 5 frames): every fold kept 3. One frame
#: gains on FluidR3's duo (+1.8 dB) and loses drums + bass on four families (-0.9 to
#: -3.5); five gain drums + bass on FluidR3 and MuseScore (+1.0, +0.7) and lose the duos
#: of FluidR3 and TimGM6mb (-1.5, -1.6).
DEFAULT_CONTEXT_FRAMES = 3

#: Most frames an atom may span (a bound on what a dictionary file may declare).
MAX_CONTEXT_FRAMES = 64
#: Semitone shifts of the training spectrogram learned along with it (augmentation,
#: :func:`learn_dictionary`). Chosen by leave-one-family-out on four sound families
#: whose training clips play other melodies, keys and registers than the mixtures
#: (benchmarks/bench_heldout.py --select): every held-out family chose ±1, ±2 over none,
#: ±1 and ±1..±4; median SDR +0.8 to +9.7 dB over no augmentation in 13 of 14
#: family x task cells, -0.7 dB in the fourteenth (speech over an acoustic drum kit).
AUTO_PITCH_SHIFTS: tuple[float, ...] = (-2.0, -1.0, 1.0, 2.0)
#: Default augmentation: :data:`AUTO_PITCH_SHIFTS`. Training clips that already play
#: every note of the register (a sweep) separate better without it (the bundled
#: material: -0.4 to -3.6 dB on three of five tasks): pass ``()`` for those. "auto"
#: chooses by the fit on held-back audio, which keeps the in-sweep figures but gave
#: little of the held-out gain (it seldom chose the shifts there).
DEFAULT_PITCH_SHIFTS: str | tuple[float, ...] = AUTO_PITCH_SHIFTS

#: Harmonic atoms (:mod:`nmfsep.harmonic`): "auto" adds them for a pitched source, over
#: the range its clips play widened by :data:`HARMONIC_MARGIN` semitones each way; a
#: separation uses them when every source has them (``separate(harmonic="auto")``,
#: :data:`nmfsep.plan.HARMONIC_USES`). Chosen with benchmarks/bench_heldout.py --select
#: (median SDR, 3 mixtures per family x task, against plain atoms alone): leave-one-
#: family-out chose them for each of the four held-out families; held out, piano + flute
#: +0.4 to +7.0 dB and piano + flute + bass +0.9 to +2.0 dB (FluidR3, MuseScore,
#: TimGM6mb), drums + bass and speech over piano unchanged (the drums and the voice have
#: none, so the bass's and the piano's are left out; used anyway they lost up to 4.4 dB
#: on speech). Where the training clips play every note of the mixture
#: (benchmarks/bench_separation.py, FluidR3 in-family) they cost piano + flute 1.2 dB
#: and violin + piano 2.4 dB when always used; separate's "auto" therefore keeps them
#: only when they fit the mixture much better than the plain atoms
#: (:data:`nmfsep.plan.HARMONIC_FIT_RATIO`), which gives the plain atoms' figures there.
#: Their price: learning time (pyin and a fit: about +5-8 s for 3 x 10 s of clips), file
#: size, and separation time (the bundled duo with them: about 3-4x the plain atoms'
#: time, benchmarks/bench_sparse.py; "auto" runs both fits to compare them).
DEFAULT_HARMONIC = "auto"
#: Semitones the "auto" range reaches beyond the pitches the clips play (12 was chosen
#: over 7 on every held-out family's choosing families).
HARMONIC_MARGIN = 12.0
#: Harmonic atoms per semitone: a third of a semitone apart, so partials of notes with
#: vibrato or a little out of tune still fall near an atom's.
HARMONIC_STEPS = 3

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


def _check_context_frames(value: object) -> int:
    """Return the frames each atom spans, or raise if it is not an int from 1 to 64.

    Parameters
    ----------
    value : object
        ``context_frames`` (:data:`MAX_CONTEXT_FRAMES` at most).

    Returns
    -------
    int

    Raises
    ------
    ParameterError
        ``"context_frames must be an int from 1 to 64, got ..."``.
    """
    return check_int(value, "context_frames", 1, MAX_CONTEXT_FRAMES)


def _check_power(power: object) -> float:
    """Return a spectrogram power (a finite number > 0, 1 or 2 in practice) as a float."""
    return check_real(power, "power", 0.0, strict=True)


def _checked_atoms(atoms: object, stft: STFTConfig, context_frames: int) -> np.ndarray:
    """Check atoms against the STFT and the context; return a read-only float32 copy.

    Parameters
    ----------
    atoms : array-like [shape=(k, context_frames * n_bins)]
        Non-negative, finite real numbers.
    stft : STFTConfig
        Gives ``n_bins``.
    context_frames : int
        Frames each atom spans.

    Returns
    -------
    np.ndarray [shape=(k, context_frames * n_bins)], float32, C-ordered, read-only
    """
    atoms = np.asarray(atoms)
    if atoms.ndim != 2 or atoms.shape[0] < 1:
        raise ParameterError(f"atoms must have shape (k, n_bins) with k >= 1, got {atoms.shape}")
    if atoms.dtype.kind not in "fiu":
        raise ParameterError(f"atoms must be real numbers, got dtype {atoms.dtype}")
    if atoms.shape[1] != context_frames * stft.n_bins:
        raise ParameterError(
            f"atoms have {atoms.shape[1]} columns but n_fft={stft.n_fft} gives "
            f"{stft.n_bins} bins x context_frames={context_frames} = "
            f"{context_frames * stft.n_bins}"
        )
    atoms = np.array(atoms, dtype=np.float32, copy=True, order="C")
    if not np.isfinite(atoms).all():
        raise ParameterError("atoms contain NaN or Inf values")
    if (atoms < 0).any():
        raise ParameterError(f"atoms must be non-negative, got a minimum of {atoms.min()}")
    atoms.flags.writeable = False
    return atoms


def _checked_labels(labels: object, k: int) -> tuple[str, ...]:
    """Check one safe file name per atom; return them as a tuple of str.

    Parameters
    ----------
    labels : sequence of str [length k]
    k : int
        Number of atoms.

    Returns
    -------
    tuple of str [length k]
    """
    from nmfsep.io import check_name

    if isinstance(labels, str) or not isinstance(labels, Sequence | np.ndarray):
        raise fail("labels", "a sequence of strings", labels)
    labels = tuple(labels)
    if len(labels) != k:
        raise ParameterError(f"{len(labels)} labels for {k} atoms; give one label per atom")
    for label in labels:
        check_name(label)
    return tuple(str(label) for label in labels)


def _checked_clip(clip: object) -> dict[str, Any]:
    """Check one training clip ``{"name": str, "duration": seconds >= 0}``; return a copy."""
    if not isinstance(clip, Mapping) or set(clip) != {"name", "duration"}:
        raise fail("each clip", "a mapping with keys 'name' and 'duration'", clip)
    if not isinstance(clip["name"], str):
        raise fail("clip name", "a string", clip["name"])
    if not is_real(clip["duration"]) or float(clip["duration"]) < 0:
        raise fail("clip duration", "a number of seconds >= 0", clip["duration"])
    return {"name": clip["name"], "duration": float(clip["duration"])}


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
    provenance : dict
        Where the training audio came from and its licence (built-in dictionaries:
        ``builtin``, ``licence``, ``sources``, ``script``, ``script_version``);
        informative only, empty for dictionaries learned by users.

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
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.stft, STFTConfig):
            raise ParameterError(f"stft must be an STFTConfig, got {type(self.stft).__name__}")
        context = _check_context_frames(self.context_frames)
        object.__setattr__(self, "context_frames", context)
        atoms = _checked_atoms(self.atoms, self.stft, context)
        object.__setattr__(self, "atoms", atoms)
        object.__setattr__(self, "labels", _checked_labels(self.labels, atoms.shape[0]))
        object.__setattr__(self, "sr", check_rate(self.sr, "sr"))
        object.__setattr__(self, "power", _check_power(self.power))
        if not is_real(self.beta):
            raise fail("beta", "a finite number", self.beta)
        object.__setattr__(self, "beta", float(self.beta))
        check_choice(self.normalization, "normalization", _NORMALIZATIONS)
        object.__setattr__(self, "clips", tuple(_checked_clip(clip) for clip in self.clips))
        if not isinstance(self.nmfsep_version, str):
            raise fail("nmfsep_version", "a string", self.nmfsep_version)
        if not isinstance(self.training, Mapping):
            raise fail("training", "a mapping", self.training)
        object.__setattr__(self, "training", dict(self.training))
        if not isinstance(self.provenance, Mapping):
            raise fail("provenance", "a mapping", self.provenance)
        object.__setattr__(self, "provenance", dict(self.provenance))

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
    def n_harmonic(self) -> int:
        """Number of harmonic atoms (:mod:`nmfsep.harmonic`), the first ones; 0 if none."""
        record = self.training.get("harmonic")
        n = record.get("atoms", 0) if isinstance(record, Mapping) else 0
        return int(n) if is_int(n) and 0 <= n <= self.n_atoms else 0

    def without_harmonic(self) -> Dictionary:
        """Return this dictionary with its plain atoms only (itself when it has no others).

        Returns
        -------
        Dictionary
            ``atoms[n_harmonic:]`` and their labels; ``training["harmonic"]`` records
            that the harmonic atoms were left out.
        """
        n = self.n_harmonic
        if n == 0 or n == self.n_atoms:
            return self
        record = {**self.training["harmonic"], "atoms": 0, "left_out": n}
        return dataclasses.replace(self, atoms=self.atoms[n:], labels=self.labels[n:],
                                   training={**self.training, "harmonic": record})

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
            and self.provenance == other.provenance
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
        if self.provenance:
            meta["provenance"] = jsonable(self.provenance)
        return meta

    # ------------------------------------------------------------------ files

    def save(
        self, path: str | os.PathLike[str], *, force: bool = False,
        compress: bool | None = None,
    ) -> Path:
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
        compress : bool or None
            Deflate the archive's members (``np.savez_compressed``); the arrays and
            their dtypes are the same, readers need nothing new. None: when the
            dictionary has harmonic atoms, which are 90 % zeros (a file of 267 atoms
            6.6 MB -> 1.5 MB); plain atoms barely compress.

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
        if compress is None:
            compress = self.n_harmonic > 0
        return atomic_savez(path, arrays, force=force, compress=bool(compress))

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
        meta = _read_meta(p, arrays["meta"])
        atoms, row_labels = _read_rows(p, arrays["atoms"], arrays["labels"])
        try:
            stft = STFTConfig.from_dict({k: meta[k] for k in _STFT_FIELDS})
        except ParameterError as exc:
            raise DictionaryError(f"{p}: invalid STFT settings in metadata: {exc}") from None
        atoms, labels, context = _atoms_of_rows(p, atoms, row_labels, stft, meta)
        _check_meta_values(p, meta, atoms)
        try:
            return cls(
                atoms=atoms,
                labels=labels,
                sr=meta["sample_rate"],
                stft=stft,
                power=meta["power"],
                beta=meta["beta"],
                normalization=meta["normalization"],
                clips=tuple(meta["clips"]),
                nmfsep_version=meta["nmfsep_version"],
                training=meta.get("training", {}),
                context_frames=context,
                provenance=meta.get("provenance", {}),
            )
        except ParameterError as exc:  # pragma: no cover - every field is checked above
            raise DictionaryError(f"{p}: {exc}") from None


#: Largest atom value accepted from a file (learned atoms are of order 1).
_ATOM_MAX = 1e12


def _read_meta(p: Path, raw: np.ndarray) -> dict[str, Any]:
    """Parse a dictionary file's metadata; check its kind, fields and format version.

    Parameters
    ----------
    p : Path
        The file, for the messages.
    raw : np.ndarray [shape=()]
        The ``meta`` member (a JSON string).

    Returns
    -------
    dict
        The metadata, holding every field of ``_META_FIELDS``.
    """
    meta = parse_meta(p, raw, what="dictionary")
    if meta.get("kind", "dictionary") != "dictionary":
        raise DictionaryError(
            f"{p}: is an nmfsep {meta.get('kind')!s} file, not a dictionary; "
            "give a file written by `nmfsep learn`"
        )
    missing = [name for name in _META_FIELDS if name not in meta]
    if missing:
        raise DictionaryError(f"{p}: metadata lacks {missing}; learn the dictionary again")
    if meta["format_version"] != FORMAT_VERSION or not is_int(meta["format_version"]):
        raise DictionaryError(
            f"{p}: format_version {meta['format_version']!r} is not supported (this nmfsep "
            f"reads version {FORMAT_VERSION}); upgrade nmfsep or learn the dictionary again"
        )
    return meta


def _read_rows(p: Path, atoms: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Check the stored rows (one per frame of every atom) and their labels.

    Parameters
    ----------
    p : Path
        The file, for the messages.
    atoms : np.ndarray [shape=(rows, n_bins)]
        Must be float32, finite and non-negative.
    labels : np.ndarray [shape=(rows,)]
        Unicode strings, each a safe file name.

    Returns
    -------
    atoms : np.ndarray [shape=(rows, n_bins)], float32
    labels : list of str [length rows]
    """
    from nmfsep.io import check_name

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
    if atoms.max() > _ATOM_MAX:
        raise DictionaryError(
            f"{p}: atoms hold values up to {float(atoms.max()):.3g} (more than "
            f"{_ATOM_MAX:.0e}), which overflow float32 separation; the file is corrupt"
        )
    if labels.dtype.kind != "U" or labels.ndim != 1:
        raise DictionaryError(
            f"{p}: labels must be a 1-D array of strings, got dtype {labels.dtype} "
            f"and shape {labels.shape}"
        )
    if labels.shape[0] != atoms.shape[0]:
        raise DictionaryError(
            f"{p}: {labels.shape[0]} labels for {atoms.shape[0]} atoms; the file is corrupt"
        )
    for label in labels.tolist():
        try:
            check_name(label)
        except ParameterError as exc:
            raise DictionaryError(f"{p}: unsafe source label: {exc}") from None
    return atoms, labels.tolist()


def _atoms_of_rows(
    p: Path, rows: np.ndarray, row_labels: list[str], stft: STFTConfig, meta: dict[str, Any]
) -> tuple[np.ndarray, tuple[str, ...], int]:
    """Join the stored rows into atoms of ``context_frames`` frames each.

    Parameters
    ----------
    p : Path
        The file, for the messages.
    rows : np.ndarray [shape=(k * context_frames, n_bins)]
    row_labels : list of str [length k * context_frames]
        The frames of an atom share its label.
    stft : STFTConfig
        Gives ``n_bins``.
    meta : dict
        The metadata (``context_frames``, 1 when absent).

    Returns
    -------
    atoms : np.ndarray [shape=(k, context_frames * n_bins)]
    labels : tuple of str [length k]
    context_frames : int
    """
    context = meta.get("context_frames", 1)
    try:
        context = _check_context_frames(context)
    except ParameterError as exc:
        raise DictionaryError(f"{p}: {str(exc):.200}") from None
    if rows.shape[1] != stft.n_bins:
        raise DictionaryError(
            f"{p}: atoms have {rows.shape[1]} bins but n_fft={stft.n_fft} gives "
            f"{stft.n_bins}; the file is corrupt"
        )
    if rows.shape[0] % context:
        raise DictionaryError(
            f"{p}: {rows.shape[0]} rows of atoms are not whole atoms of "
            f"context_frames={context} rows each; the file is corrupt"
        )
    labels = tuple(row_labels[::context])
    if [lab for lab in labels for _ in range(context)] != row_labels:
        raise DictionaryError(
            f"{p}: the {context} rows of an atom (context_frames={context}) must share "
            "one label; the file is corrupt"
        )
    return rows.reshape(-1, context * stft.n_bins), labels, context


def _check_meta_values(p: Path, meta: dict[str, Any], atoms: np.ndarray) -> None:
    """Check the values of a dictionary file's metadata (the atoms for ``normalization``).

    Parameters
    ----------
    p : Path
        The file, for the messages.
    meta : dict
        The metadata.
    atoms : np.ndarray [shape=(k, context_frames * n_bins)]
        Unit-norm rows when the metadata says ``normalization="l2"``.
    """
    sr = meta["sample_rate"]
    if not is_int(sr) or not 0 < sr <= MAX_SAMPLE_RATE:
        raise DictionaryError(
            f"{p}: sample_rate must be an int from 1 to {MAX_SAMPLE_RATE} Hz, got {sr!r:.40}; "
            "the file is corrupt"
        )
    for name in ("power", "beta"):
        if not is_real(meta[name]):
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
        and is_real(c["duration"])
        and c["duration"] >= 0
        for c in clips
    ):
        raise DictionaryError(
            f"{p}: clips must be a list of {{name, duration}} objects, got {clips!r:.200}"
        )
    for name in ("training", "provenance"):
        if not isinstance(meta.get(name, {}), dict):
            raise DictionaryError(
                f"{p}: {name} must be a JSON object, got {meta[name]!r:.200}"
            )


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
    n_components: int = DEFAULT_ATOMS_PER_SOURCE,
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
    pitch_shifts: str | Sequence[float] = DEFAULT_PITCH_SHIFTS,
    harmonic: str | tuple[float, float] = DEFAULT_HARMONIC,
    harmonic_margin: float = HARMONIC_MARGIN,
    harmonic_steps: int = HARMONIC_STEPS,
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
    pitch_shifts : "auto" or sequence of float
        Augmentation: semitone shifts (each non-zero, from -12 to 12) of the training
        spectrogram learned along with the original
        (:func:`nmfsep.spectral.warp_frequencies`), so that the atoms also cover notes
        a little above and below those the clips play (:data:`DEFAULT_PITCH_SHIFTS`:
        ±1, ±2); ``()`` learns from the clips alone (better for clips that already
        play every note); "auto" chooses between ``()`` and :data:`AUTO_PITCH_SHIFTS`
        by the fit on held-back audio (three times the work). Recorded in
        ``training["augmentation"]``.
    harmonic : "auto", "off" or (low, high)
        Harmonic atoms (:mod:`nmfsep.harmonic`), one per third of a semitone, plus a few
        smooth noise atoms, learned from the clips (without augmentation) and placed
        before the plain atoms: "auto" (:data:`DEFAULT_HARMONIC`) when the clips are
        pitched (:func:`nmfsep.harmonic.played_pitches`), over the pitches they
        play widened by ``harmonic_margin`` semitones; (low, high) over those MIDI
        pitches; "off" never. Recorded in ``training["harmonic"]``.
    harmonic_margin : float
        Semitones, 0 to 24, the "auto" range reaches beyond the pitches played.
    harmonic_steps : int
        Harmonic atoms per semitone, 1 to 8 (:data:`HARMONIC_STEPS`).

    Returns
    -------
    Dictionary
        ``atoms (n_harmonic + n_components, context_frames * n_bins)`` float32
        unit-norm, every label ``name``;
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
    from nmfsep.divergence import beta_loss_to_float
    from nmfsep.io import check_name

    check_name(name)
    clips, clip_names = _check_clip_list(clips, clip_names)
    n_components = check_int(n_components, "n_components", 1)
    beta_f = beta_loss_to_float(beta, "beta")
    if power is None:
        power = default_power(beta_f)
    _check_power(power)
    _check_stft(stft)
    if normalize_atoms is None:
        normalize_atoms = is_real(alpha_W) and float(alpha_W) > 0
    context_frames = _check_context_frames(context_frames)
    shifts = check_pitch_shifts(pitch_shifts)
    harmonic = check_harmonic(harmonic)
    check_real(harmonic_margin, "harmonic_margin", 0, 24)
    check_int(harmonic_steps, "harmonic_steps", 1, 8)
    checked = _check_clip_pairs(clips)
    target_sr = check_rate(checked[0][1] if sr is None else sr, "sr")
    config = default_learning_stft(target_sr) if stft is None else stft
    chosen: dict[str, Any] = {}
    if shifts == "auto":
        shifts, chosen = _choose_shifts(checked, name, n_components, dict(
            sr=target_sr, stft=config, beta=beta_f, power=power,
            normalize_atoms=normalize_atoms, alpha_W=alpha_W, l1_ratio=l1_ratio,
            max_iter=max_iter, tol=tol, random_state=random_state,
            context_frames=context_frames, harmonic="off"))

    assert not isinstance(shifts, str)  # "auto" was resolved above
    V, durations = _scaled_spectrogram(checked, name, n_components, target_sr, config, power,
                                       context_frames, shifts)
    atoms, training = _fit_atoms(
        V, n_components, beta=beta_f, max_iter=max_iter, tol=tol, alpha_W=alpha_W,
        l1_ratio=l1_ratio, normalize_atoms=normalize_atoms, random_state=random_state,
        callback=callback,
    )
    if shifts or chosen:
        training["augmentation"] = {"pitch_shifts": list(shifts),
                                    "method": "frequency warp of the training spectrogram",
                                    **chosen}
    if harmonic != "off":
        extra, training["harmonic"] = _harmonic_atoms(
            checked, target_sr, config, power, context_frames, harmonic,
            float(harmonic_margin), int(harmonic_steps), random_state, max_iter)
        atoms = np.vstack([extra, atoms])
    return Dictionary(
        context_frames=context_frames,
        atoms=atoms,
        labels=(name,) * atoms.shape[0],
        sr=target_sr,
        stft=config,
        power=float(power),
        beta=beta_f,
        normalization="l2",
        clips=_clip_records(clip_names, durations),
        training=training,
    )


def _fit_atoms(
    V: np.ndarray,
    n_components: int,
    *,
    beta: float,
    max_iter: int,
    tol: float,
    alpha_W: float,
    l1_ratio: float,
    normalize_atoms: bool,
    random_state: int | None,
    callback: Callable[[int, float | None], None] | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Learn atoms from a training spectrogram with blind β-NMF (multiplicative updates).

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_features)], non-negative
        The training spectrogram, scaled to mean 1.
    n_components : int
        Number of atoms k.
    beta, max_iter, tol, alpha_W, l1_ratio, normalize_atoms, random_state, callback
        As :func:`learn_dictionary` (``beta`` as a float).

    Returns
    -------
    atoms : np.ndarray [shape=(k, n_features)], float32
        Unit L2 norm (:func:`unit_atoms`).
    training : dict
        How they were learned: frames, iterations, convergence, loss, settings.
    """
    from nmfsep.nmf import nmf

    result = nmf(
        V,
        n_components,
        beta=beta,
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
    training = {
        "n_frames": int(V.shape[0]),
        "n_iter": int(result.n_iter),
        "converged": bool(result.converged),
        "loss": float(result.loss),
        "max_iter": int(max_iter),
        "tol": float(tol),
        "alpha_W": float(alpha_W),
        "l1_ratio": float(l1_ratio),
        "normalize_atoms": bool(normalize_atoms),
        "random_state": random_state if random_state is None or is_int(random_state) else None,
        "dead_atoms": int(np.sum(~result.H.any(axis=1))),
    }
    return unit_atoms(result.H), training


def _scaled_spectrogram(
    clips: list[tuple[np.ndarray, int]],
    name: str,
    n_components: int,
    sr: int,
    config: STFTConfig,
    power: float,
    context_frames: int,
    shifts: Sequence[float],
) -> tuple[np.ndarray, list[float]]:
    """:func:`_training_spectrogram` scaled to mean 1, checked to hold enough audible frames."""
    V, durations = _training_spectrogram(clips, sr, config, power, context_frames, shifts)
    _check_enough_frames(n_components, V.shape[0], sum(durations), "clips")
    mean = float(V.mean(dtype=np.float64))
    _check_audible(mean, name, "clips")
    return V / np.float32(mean), durations


def _harmonic_atoms(
    clips: list[tuple[np.ndarray, int]],
    sr: int,
    config: STFTConfig,
    power: float,
    context_frames: int,
    harmonic: str | tuple[float, float],
    margin: float,
    steps: int,
    random_state: int | None,
    max_iter: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Harmonic and noise atoms of the clips (:func:`learn_dictionary`'s ``harmonic``).

    ``margin`` and ``steps`` are ``harmonic_margin`` and ``harmonic_steps``; the fit
    runs :data:`nmfsep.harmonic.HARMONIC_ITER` iterations, or ``max_iter`` (learn's)
    if fewer.

    Returns
    -------
    atoms : np.ndarray [shape=(n, context_frames * n_bins)], float32
        Unit norm; ``n`` is 0 when "auto" finds the clips unpitched.
    record : dict
        How the range was chosen, the range, the number of atoms, the fit.
    """
    import scipy.signal

    from nmfsep.harmonic import (
        HARMONIC_ITER,
        PITCHED,
        fit_harmonic,
        pitch_grid,
        played_pitches,
    )
    from nmfsep.io import resample

    record: dict[str, Any] = {"chosen_by": "given"}
    if harmonic == "auto":
        audio = [resample(y, c_sr, sr) if c_sr != sr else y for y, c_sr in clips]
        low, high, pitched = played_pitches(audio, sr, frame_length=config.n_fft)
        record = {"chosen_by": "pitch of the clips (librosa.pyin)",
                  "voiced_probability": round(pitched, 3), "margin": margin}
        if pitched < PITCHED or not np.isfinite(low):
            width = context_frames * config.n_bins
            return np.zeros((0, width), np.float32), {**record, "atoms": 0}
        harmonic = (low - margin, high + margin)
    V, _ = _training_spectrogram(clips, sr, config, power, context_frames)
    assert not isinstance(harmonic, str)  # "auto" was resolved above; "off" never comes here
    pitches = pitch_grid(harmonic[0], harmonic[1], steps)
    window = scipy.signal.get_window(config.window, config.effective_win_length, fftbins=True)
    n_iter = min(HARMONIC_ITER, int(max_iter))
    fit = fit_harmonic(V / V.mean(dtype=np.float64), sr=sr, n_fft=config.n_fft,
                       window=window, context_frames=context_frames, pitches=pitches,
                       power=power, max_iter=n_iter, random_state=random_state)
    record.update(range=[round(float(pitches[0]), 2), round(float(pitches[-1]), 2)],
                  atoms=int(fit.atoms.shape[0]), steps_per_semitone=steps, n_iter=n_iter,
                  noise_atoms=int(fit.atoms.shape[0] - pitches.size),
                  loss=fit.loss, harmonic_share=round(fit.harmonic_share, 3))
    return unit_atoms(fit.atoms), record


def check_harmonic(harmonic: object) -> str | tuple[float, float]:
    """Return ``harmonic`` checked: "auto", "off" or a (low, high) MIDI pitch pair.

    Raises
    ------
    ParameterError
        For anything else, or a range outside C1-C8 (24-108) or with ``low > high``.
    """
    if isinstance(harmonic, str) and harmonic in ("auto", "off"):
        return harmonic
    if (isinstance(harmonic, tuple | list) and len(harmonic) == 2
            and all(is_real(v) for v in harmonic)):
        low, high = (float(v) for v in harmonic)
        if 24 <= low <= high <= 108:
            return low, high
    raise ParameterError(
        f"harmonic must be 'auto', 'off' or a (low, high) pair of MIDI pitches from 24 "
        f"(C1) to 108 (C8) with low <= high, got {harmonic!r}")


def _choose_shifts(
    clips: list[tuple[np.ndarray, int]], name: str, n_components: int, settings: dict
) -> tuple[tuple[float, ...], dict[str, Any]]:
    """Choose the augmentation of ``pitch_shifts="auto"`` by the fit on held-back audio.

    Learns from the first 80 % of every clip without and with :data:`AUTO_PITCH_SHIFTS`
    and returns the shifts whose atoms fit the last 20 % better (:func:`dictionary_fit`),
    with a record of the choice; clips too short to hold audio back get the shifts.
    """
    learn, keep = _held_out(clips, 0.2)
    fits = {}
    try:
        for label, shifts in (("none", ()), ("shifted", AUTO_PITCH_SHIFTS)):
            d = learn_dictionary(learn, name, n_components, pitch_shifts=shifts, **settings)
            fits[label] = dictionary_fit(d, keep)["fit_db"]
    except ParameterError:  # too little audio to learn k atoms from 80 %, or to measure
        return AUTO_PITCH_SHIFTS, {"chosen_by": "default (too little audio to validate)"}
    best = AUTO_PITCH_SHIFTS if fits["shifted"] > fits["none"] else ()
    return best, {"chosen_by": "fit on the held-back 20 % of every clip", "fit_db": fits}


def check_pitch_shifts(pitch_shifts: object) -> str | tuple[float, ...]:
    """Return augmentation shifts as a tuple of floats (or "auto"), or raise.

    Parameters
    ----------
    pitch_shifts : "auto" or sequence of float
        "auto", or semitones, each finite, non-zero and from -12 to 12, no repeats.

    Returns
    -------
    "auto" or tuple of float

    Raises
    ------
    ParameterError
        For anything else.
    """
    what = "'auto' or a sequence of distinct non-zero semitone shifts from -12 to 12"
    if pitch_shifts == "auto":
        return "auto"
    if isinstance(pitch_shifts, str | bytes) or not isinstance(pitch_shifts, Sequence):
        raise fail("pitch_shifts", what, pitch_shifts)
    shifts = tuple(float(s) if is_real(s) else s for s in pitch_shifts)
    if not all(is_real(s) and s != 0 and -12 <= s <= 12 for s in shifts) or (
        len(set(shifts)) != len(shifts)
    ):
        raise fail("pitch_shifts", what, list(pitch_shifts))
    return shifts


def _check_stft(stft: object) -> None:
    """Refuse STFT settings that are neither an STFTConfig nor None."""
    if stft is not None and not isinstance(stft, STFTConfig):
        raise ParameterError(f"stft must be an STFTConfig or None, got {type(stft).__name__}")


def _check_clip_list(
    clips: Sequence[tuple[np.ndarray, int]], clip_names: Sequence[str] | None
) -> tuple[list[tuple[np.ndarray, int]], list[str]]:
    """Check that there are clips and one name per clip (default ``clip_1``, ...).

    Returns
    -------
    clips : list of (y, sr)
        The clips, not checked one by one yet (:func:`_check_clip_pairs`).
    clip_names : list of str
    """
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
    return clips, clip_names


def _check_clip_pairs(clips: list[Any]) -> list[tuple[np.ndarray, int]]:
    """Check every ``(y, sr)`` pair: audio ``(n_channels, n_samples)`` and a whole rate.

    Returns
    -------
    list of (np.ndarray [shape=(n_channels, n_samples)] float32 or float64, int)
    """
    checked: list[tuple[np.ndarray, int]] = []
    for i, pair in enumerate(clips):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ParameterError(f"clip {i + 1} must be a (y, sr) pair, got {type(pair).__name__}")
        y, clip_sr = pair
        clip_sr = check_rate(clip_sr, f"clip {i + 1}: sample rate")
        checked.append((_check_clip(y, i + 1), clip_sr))
    return checked


def _training_spectrogram(
    clips: list[tuple[np.ndarray, int]],
    sr: int,
    config: STFTConfig,
    power: float,
    context_frames: int,
    pitch_shifts: Sequence[float] = (),
) -> tuple[np.ndarray, list[float]]:
    """Compute the spectrogram dictionaries are learned on, clip after clip.

    Every clip is resampled to ``sr``, its STFT scaled by its peak (relative levels
    within a clip), and its frames stacked with their neighbours (within the clip,
    never across two clips).

    Parameters
    ----------
    clips : list of (y, clip_sr)
        Checked audio ``(n_channels, n_samples)`` and its rate in Hz.
    sr : int
        Rate to learn at.
    config : STFTConfig
        STFT settings.
    power : float
        Spectrogram power.
    context_frames : int
        Frames each row spans.
    pitch_shifts : sequence of float
        Semitone shifts whose warped copies of every clip's spectrogram follow it.

    Returns
    -------
    V : np.ndarray [shape=(n_frames, context_frames * n_bins)]
        Not yet scaled by its mean; ``n_frames`` counts the shifted copies too.
    durations : list of float
        Seconds of every clip (at its own rate).
    """
    from nmfsep.context import stack_frames
    from nmfsep.io import resample
    from nmfsep.spectral import model_spectrogram, warp_frequencies
    from nmfsep.spectral import stft as compute_stft

    spectrograms = []
    durations = []
    for y, clip_sr in clips:
        durations.append(y.shape[1] / clip_sr)
        y_r = resample(y, clip_sr, sr) if clip_sr != sr else y
        if y_r.shape[1] == 0:
            continue
        X = compute_stft(y_r, config)
        peak = float(np.abs(X).max())
        if peak > 0:
            X = X / peak  # relative levels within a clip; V is rescaled by its mean anyway
        S = model_spectrogram(X, power)
        spectrograms.append(stack_frames(S, context_frames))
        spectrograms += [stack_frames(warp_frequencies(S, s), context_frames)
                         for s in pitch_shifts]
    if not spectrograms:
        raise ParameterError("the training clips hold no audio; give clips of the source playing")
    return np.concatenate(spectrograms, axis=0), durations


def _check_enough_frames(n_components: int, n_frames: int, seconds: float, what: str) -> None:
    """Refuse more atoms than the training audio (``what``: clips or files) has frames."""
    if n_components > n_frames:
        raise ParameterError(
            f"n_components={n_components} is more than the {n_frames} STFT frames of the "
            f"training audio ({seconds:.2f} s); use fewer atoms or longer {what}"
        )


def _check_audible(mean: float, name: str, what: str) -> None:
    """Refuse training audio (``what``: clips or files) whose spectrogram's mean is 0."""
    if not mean > 0:
        raise ParameterError(
            f"the training audio of {name!r} is silent (all samples are zero); "
            f"give {what} in which the source plays"
        )


def _clip_records(names: Sequence[str], durations: Sequence[float]) -> tuple[dict, ...]:
    """``({"name", "duration"}, ...)`` of the training clips, durations rounded to 1 µs."""
    return tuple(
        {"name": n, "duration": round(float(d), 6)}
        for n, d in zip(names, durations, strict=True)
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
    if (problem := peak_problem(y)) is not None:
        raise ParameterError(f"clip {index}: audio {problem}; scale it into about [-1, 1]")
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
    from nmfsep.io import audio_info, check_name
    from nmfsep.online import online_nmf

    check_name(name)
    paths = _check_paths(paths)
    n_components = check_int(n_components, "n_components", 1)
    block_seconds = check_real(block_seconds, "block_seconds", 0.0, strict=True)
    passes = check_int(passes, "passes", 1)
    if random_state is not None and not is_int(random_state):
        raise fail("random_state", "an int or None", random_state)
    check_callable(callback, "callback", "callable(seconds_done, seconds_total)")
    beta_f = beta_loss_to_float(beta, "beta")
    power = _check_power(default_power(beta_f) if power is None else power)
    _check_stft(stft)

    infos = [audio_info(p) for p in paths]  # missing / empty / undecodable -> one line
    target_sr = check_rate(infos[0]["samplerate"] if sr is None else sr, "sr")
    config = default_learning_stft(target_sr) if stft is None else stft
    durations = [info["frames"] / info["samplerate"] for info in infos]
    total_seconds = float(sum(durations))
    files = list(zip(paths, infos, durations, strict=True))
    reader = _BlockReader(config, target_sr, block_seconds, callback,
                          total=total_seconds * (passes + 1))

    # pass 1: every file's peak and the global mean of the normalised spectrogram
    peaks, n_frames, mean = _measure_levels(reader, files, power, config.n_bins)
    _check_enough_frames(n_components, n_frames, total_seconds, "files")
    _check_audible(mean, name, "files")
    # passes 2...: the online NMF over the normalised blocks
    result = online_nmf(
        partial(_scaled_blocks, reader, files, peaks, power, mean),
        n_components,
        beta=beta_f,
        passes=passes,
        random_state=random_state,
    )
    training = _online_training(result, n_frames, block_seconds, random_state)
    reader.finish()
    return Dictionary(
        atoms=unit_atoms(result.H),
        labels=(name,) * n_components,
        sr=target_sr,
        stft=config,
        power=power,
        beta=beta_f,
        normalization="l2",
        clips=_clip_records([p.name for p in paths], durations),
        training=training,
    )


def _online_training(
    result: Any, n_frames: int, block_seconds: float, random_state: int | None
) -> dict[str, Any]:
    """How :func:`learn_dictionary_online` learned its atoms (its ``training`` record).

    Parameters
    ----------
    result : nmfsep.online.OnlineNMFResult
        What the online NMF returned.
    n_frames : int
        STFT frames of all the files.
    block_seconds : float
        Seconds of audio per block.
    random_state : int or None
        The seed.

    Returns
    -------
    dict
    """
    losses = result.loss_history
    return {
        "algorithm": "online",
        "n_frames": int(n_frames),
        "n_frames_seen": int(result.n_frames_seen),
        "n_batches": int(result.n_batches),
        "passes": int(result.n_passes),
        "block_seconds": block_seconds,
        "loss": float(losses[-1]) if losses.size else None,
        "normalize_atoms": False,
        "random_state": random_state,
        "dead_atoms": int(np.sum(~result.H.any(axis=1))),
    }


def _check_paths(paths: object) -> list[Path]:
    """Return one path or a sequence of paths as a non-empty list of Paths."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not isinstance(paths, Sequence):
        raise ParameterError(
            f"paths must be a list of audio file paths, got {type(paths).__name__}"
        )
    paths = [Path(p) for p in paths]
    if not paths:
        raise ParameterError("no training files given; give at least one file of the source")
    return paths


class _BlockReader:
    """Reads files block by block on the whole-file STFT hop grid, and reports progress.

    Parameters
    ----------
    config : STFTConfig
        STFT settings of the dictionary.
    sr : int
        Rate the files are read at (resampled on the fly).
    block_seconds : float
        Seconds of audio per block (at least one frame).
    callback : callable(seconds_done, seconds_total) or None
        Called after every block.
    total : float
        ``seconds_total`` of the callback: seconds of audio over all passes.
    """

    def __init__(
        self,
        config: STFTConfig,
        sr: int,
        block_seconds: float,
        callback: Callable[[float, float], None] | None,
        total: float,
    ) -> None:
        from nmfsep.spectral import FrameGrid

        self.grid = FrameGrid.of(config)
        self.frames_config = STFTConfig(
            n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length,
            window=config.window, center=False,
        )
        self.sr = sr
        self.frames_per_block = max(1, int(round(min(block_seconds, 1e9) * sr / self.grid.hop)))
        self.frame_seconds = self.grid.hop / sr
        self.callback = callback
        self.done = 0.0
        self.total = total

    def read(self, path: Path, info: dict[str, Any], seconds: float) -> Iterator[tuple[int, Any]]:
        """Yield ``(n_frames, X)`` per block of one file: X ``(n_channels, n_bins, n_frames)``.

        Progress advances by the block's seconds, and by the file's ``seconds`` in all
        once it is read.
        """
        from nmfsep.io import open_blocks, read_blocks
        from nmfsep.spectral import stft as compute_stft

        base, done = self.done, 0.0
        if info["frames"] == 0:
            return
        with open_blocks(path, sr=self.sr) as reader:
            for t0, t1, seg in read_blocks(reader, self.grid, self.frames_per_block):
                X = compute_stft(seg, self.frames_config)
                yield t1 - t0, X
                done = min(done + (t1 - t0) * self.frame_seconds, seconds)
                self.done = base + done
                if self.callback is not None:
                    self.callback(self.done, self.total)
        self.done = base + seconds

    def finish(self) -> None:
        """Report the whole work done, if the last call of the callback did not."""
        if self.callback is not None and self.done < self.total:
            self.callback(self.total, self.total)


def _measure_levels(
    reader: _BlockReader, files: list[tuple[Path, dict[str, Any], float]], power: float,
    n_bins: int,
) -> tuple[list[float], int, float]:
    """First pass over the files: what :func:`learn_dictionary` scales the spectrogram by.

    Parameters
    ----------
    reader : _BlockReader
    files : list of (path, info, seconds)
    power : float
        Spectrogram power.
    n_bins : int
        Frequency bins of a frame.

    Returns
    -------
    peaks : list of float
        Every file's peak STFT magnitude (0 for a silent file).
    n_frames : int
        STFT frames of all the files.
    mean : float
        Mean of the spectrogram of all the files, each scaled by its peak.
    """
    from nmfsep.spectral import model_spectrogram

    peaks: list[float] = []
    total = 0.0
    n_frames = 0
    for path, info, seconds in files:
        peak = 0.0
        file_sum = 0.0
        for nb, X in reader.read(path, info, seconds):
            n_frames += nb
            peak = max(peak, float(np.abs(X).max()))
            file_sum += float(model_spectrogram(X, power).sum(dtype=np.float64))
        peaks.append(peak)
        if peak > 0:
            total += file_sum / peak**power  # V is homogeneous of degree `power` in X
    if n_frames == 0:
        raise ParameterError("the training files hold no audio; give files of the source playing")
    return peaks, n_frames, total / (n_frames * n_bins)


def _scaled_blocks(
    reader: _BlockReader,
    files: list[tuple[Path, dict[str, Any], float]],
    peaks: list[float],
    power: float,
    mean: float,
) -> Iterator[np.ndarray]:
    """Yield the spectrogram ``V (n_frames, n_bins)`` of every block, scaled as in batch.

    A silent file is read (for the progress) but yields nothing: zeros carry nothing
    (they still count in ``mean``).
    """
    from nmfsep.spectral import model_spectrogram

    for (path, info, seconds), peak in zip(files, peaks, strict=True):
        if not peak > 0:
            for _ in reader.read(path, info, seconds):
                pass
            continue
        scale = np.float32(1.0 / (peak**power * mean))
        for _, X in reader.read(path, info, seconds):
            V = model_spectrogram(X, power)
            del X
            V *= scale
            yield V


# ---------------------------------------------------------------------- from files


def dictionary_fit(
    dictionary: Dictionary, clips: Sequence[tuple[np.ndarray, int]], *, max_iter: int = 100
) -> dict[str, float]:
    """Measure how well a dictionary models audio of its source that it did not learn from.

    The clips' spectrogram (the dictionary's rate, STFT, power and context, each clip
    scaled by its peak) is factorised with the atoms fixed; the fit is the
    signal-to-residual ratio of that reconstruction, in dB. Atoms that generalise to
    the notes, registers and dynamics of the clips fit well (20 dB and more on held-out
    notes of a sampled instrument); atoms that only know the training notes do not.

    Parameters
    ----------
    dictionary : Dictionary
        One source's atoms.
    clips : sequence of (y, sr)
        Audio of the same source, ``y`` ``(n_channels, n_samples)``.
    max_iter : int
        Iterations of the activations' multiplicative updates.

    Returns
    -------
    dict
        ``fit_db``: ``10 log10(Σ V² / Σ (V - W H)²)``; ``divergence``: the β-divergence
        per frame and bin; ``seconds``: the clips' duration.

    Raises
    ------
    ParameterError
        For invalid clips, or clips too short or silent to measure.
    """
    from nmfsep.nmf import nmf

    checked = _check_clip_pairs(list(clips))
    V, durations = _training_spectrogram(checked, dictionary.sr, dictionary.stft,
                                         dictionary.power, dictionary.context_frames)
    mean = float(V.mean(dtype=np.float64))
    _check_audible(mean, dictionary.names[0], "clips")
    V = V / np.float32(mean)
    res = nmf(V, dictionary.n_atoms, beta=dictionary.beta, fixed_atoms=dictionary.atoms,
              max_iter=check_int(max_iter, "max_iter", 1), random_state=0, warn=False)
    residual = V.astype(np.float64) - res.W.astype(np.float64) @ res.H.astype(np.float64)
    energy = float(np.sum(V.astype(np.float64) ** 2))
    return {
        "fit_db": round(10 * math.log10(energy / max(float(np.sum(residual**2)), 1e-30)), 2),
        "divergence": float(res.loss) / V.size,
        "seconds": round(float(sum(durations)), 3),
    }


def _held_out(
    clips: list[tuple[np.ndarray, int]], fraction: float
) -> tuple[list[tuple[np.ndarray, int]], list[tuple[np.ndarray, int]]]:
    """Split every clip in time: the first ``1 - fraction`` to learn, the rest to validate.

    A part with no samples (a clip of a few samples) is left out; when every clip's is,
    a ParameterError says that the clips are too short to validate.
    """
    learn, keep = [], []
    for y, sr in clips:
        cut = int(round(y.shape[1] * (1 - fraction)))
        if cut > 0:
            learn.append((y[:, :cut], sr))
        if cut < y.shape[1]:
            keep.append((y[:, cut:], sr))
    if not (learn and keep):
        raise ParameterError(
            f"the training clips are too short to hold back {fraction:.0%} of them "
            "(validate); give longer clips or learn without validate"
        )
    return learn, keep


def learn_dictionary_files(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    name: str,
    n_components: int = DEFAULT_ATOMS_PER_SOURCE,
    *,
    online: bool = False,
    sr: int | None = None,
    stft: STFTConfig | None = None,
    beta: str | float = DEFAULT_BETA,
    power: float | None = None,
    max_iter: int = 200,
    tol: float = 1e-4,
    random_state: int | None = 0,
    context_frames: int | None = None,
    pitch_shifts: str | Sequence[float] | None = None,
    harmonic: str | tuple[float, float] | None = None,
    validate: float | None = None,
    block_seconds: float = DEFAULT_ONLINE_BLOCK_SECONDS,
    passes: int = 1,
    callback: Callable[..., None] | None = None,
    load_callback: Callable[[int, int], None] | None = None,
) -> Dictionary:
    """Learn the spectral atoms of one source from audio files.

    Without ``online``, the files are loaded whole (:func:`nmfsep.io.load`, each at
    its own rate) and passed to :func:`learn_dictionary`, named after their file
    names; with ``online``, they are streamed block by block through
    :func:`learn_dictionary_online`, in bounded memory.

    Parameters
    ----------
    paths : path or sequence of paths
        Audio files of the source alone (anything libsndfile reads).
    name : str
        Source name, the label of every atom (a safe file name).
    n_components : int
        Number of atoms k.
    online : bool
        Stream the files (online NMF); ``max_iter``, ``tol`` and ``load_callback``
        do not apply, ``block_seconds`` and ``passes`` do.
    sr, stft, beta, power, random_state
        As :func:`learn_dictionary`.
    max_iter, tol : int, float
        Stopping rules of the batch NMF (not ``online``).
    context_frames : int or None
        Frames each atom spans; None: :data:`DEFAULT_CONTEXT_FRAMES`, or 1 when
        ``online`` (which learns single frames only: any other value is refused).
    pitch_shifts : sequence of float or None
        Augmentation (:func:`learn_dictionary`); None: :data:`DEFAULT_PITCH_SHIFTS`,
        or none when ``online`` (which does not augment: other values are refused).
    harmonic : "auto", "off", (low, high) or None
        Harmonic atoms (:func:`learn_dictionary`); None: :data:`DEFAULT_HARMONIC`, or
        none when ``online`` (which learns plain atoms only: other values are refused).
    validate : float or None
        Also measure how well the atoms generalise: learn once more from the first
        ``1 - validate`` of every file and report the fit (:func:`dictionary_fit`) on
        the held-back rest, in ``training["validation"]`` (not ``online``). The
        returned atoms are still learned from all the audio. E.g. 0.2.
    block_seconds, passes : float, int
        As :func:`learn_dictionary_online` (``online`` only).
    callback : callable, optional
        Progress of the learning: ``callback(iteration, loss or None)`` of the NMF,
        or with ``online`` ``callback(seconds_done, seconds_total)``.
    load_callback : callable(n_loaded, n_files), optional
        Called after every file is loaded (not ``online``).

    Returns
    -------
    Dictionary
        As :func:`learn_dictionary` or :func:`learn_dictionary_online`; ``clips``
        holds every file's name and duration.

    Raises
    ------
    ParameterError
        As :func:`learn_dictionary` or :func:`learn_dictionary_online`, or for
        ``context_frames`` other than 1 with ``online``.
    AudioFormatError
        For a missing, empty or undecodable file (the message names it).
    """
    if online:
        if validate is not None:
            raise ParameterError(
                "validate does not apply with online=True (it learns twice); drop one of them"
            )
        if context_frames not in (None, 1):
            raise ParameterError(
                f"context_frames={context_frames!r} does not apply with online=True (online "
                "learning learns single frames); pass context_frames=1 or None"
            )
        if pitch_shifts not in (None, "auto") and list(pitch_shifts):
            raise ParameterError(
                f"pitch_shifts={list(pitch_shifts)!r} does not apply with online=True (online "
                "learning does not augment); pass pitch_shifts=None"
            )
        if harmonic not in (None, "off"):
            raise ParameterError(
                f"harmonic={harmonic!r} does not apply with online=True (online learning "
                "learns plain atoms only); pass harmonic=None or 'off'"
            )
        return learn_dictionary_online(
            paths, name, n_components, sr=sr, stft=stft, beta=beta, power=power,
            block_seconds=block_seconds, passes=passes, random_state=random_state,
            callback=callback,
        )
    from nmfsep import io

    paths = _check_paths(paths)
    check_callable(load_callback, "load_callback", "callable(n_loaded, n_files)")
    loaded = []
    for path in paths:
        loaded.append(io.load(path))
        if load_callback is not None:
            load_callback(len(loaded), len(paths))
    settings: dict[str, Any] = dict(
        sr=sr, stft=stft, beta=beta, power=power, max_iter=max_iter, tol=tol,
        random_state=random_state,
        context_frames=DEFAULT_CONTEXT_FRAMES if context_frames is None else context_frames,
        pitch_shifts=DEFAULT_PITCH_SHIFTS if pitch_shifts is None else pitch_shifts,
        harmonic=DEFAULT_HARMONIC if harmonic is None else harmonic,
    )
    dictionary = learn_dictionary(loaded, name, n_components, callback=callback,
                                  clip_names=[path.name for path in paths], **settings)
    if validate is not None:
        fraction = check_real(validate, "validate", 0, 0.5, strict=True)
        learn, keep = _held_out(_check_clip_pairs(loaded), fraction)
        held = learn_dictionary(learn, name, n_components, **settings)
        fit = {"fraction": fraction, **dictionary_fit(held, keep)}
        dictionary = dataclasses.replace(
            dictionary, training={**dictionary.training, "validation": fit})
    return dictionary
