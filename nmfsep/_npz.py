"""The ``.npz`` container of nmfsep's files (dictionaries, saved models): safe to share.

Arrays plus one JSON ``meta`` string, read with ``allow_pickle=False`` (loading never
executes anything) and with the archive's declared sizes checked before anything is
inflated; written atomically (:func:`nmfsep.io.atomic_output`).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep.exceptions import DictionaryError, ParameterError
from nmfsep.io import atomic_output

__all__ = ["atomic_savez", "read_npz", "parse_meta", "jsonable"]

_MAX_META_CHARS = 1_000_000
_MAX_UNCOMPRESSED_BYTES = 2**31  # refuse archives that claim to inflate beyond 2 GiB


def atomic_savez(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], *, force: bool = False
) -> Path:
    """Write arrays to an ``.npz`` file through a temporary file and a rename.

    See :func:`nmfsep.io.atomic_output`; missing parent folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        Target file, written exactly as named.
    arrays : Mapping[str, np.ndarray]
        Arrays to store; none may be an object array.
    force : bool
        Overwrite an existing ``path``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        If ``path`` exists (and not ``force``), is a folder, or cannot be written.
    """
    for name, arr in arrays.items():
        if np.asarray(arr).dtype.hasobject:  # pragma: no cover - programming error
            raise ParameterError(f"array {name!r} is an object array; it would need pickle")
    with atomic_output(path, force=force, example="out.npz", hint="choose another path") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def read_npz(p: Path, keys: Sequence[str], *, what: str) -> dict[str, np.ndarray]:
    """Read named arrays from an ``.npz`` archive without pickle, or raise DictionaryError.

    Parameters
    ----------
    p : pathlib.Path
        The archive.
    keys : sequence of str
        Arrays that must be present.
    what : str
        What the file should be (``"dictionary"``, ``"model"``), for messages.

    Returns
    -------
    dict[str, np.ndarray]
        The arrays named by ``keys``.

    Raises
    ------
    DictionaryError
        One line naming the file and the problem.
    """
    hint = "learn one with `nmfsep learn`" if what == "dictionary" else "save it again"
    if not p.exists():
        raise DictionaryError(f"{p}: file not found; check the path")
    if not p.is_file():
        raise DictionaryError(f"{p}: is not a regular file; give the path of a .npz {what}")
    if not zipfile.is_zipfile(p):
        raise DictionaryError(f"{p}: is not an nmfsep {what} (not a .npz archive); {hint}")
    try:
        with zipfile.ZipFile(p) as zf:
            total = sum(info.file_size for info in zf.infolist())
        if total > _MAX_UNCOMPRESSED_BYTES:
            raise DictionaryError(
                f"{p}: archive would inflate to {total} bytes; refusing an implausible {what}"
            )
        out: dict[str, np.ndarray] = {}
        with np.load(p, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - zip check above
                raise DictionaryError(f"{p}: is not an nmfsep {what} (.npz); {hint}")
            missing = [k for k in keys if k not in npz.files]
            if missing and "meta" in npz.files:
                _refuse_other_kind(p, npz, what)
            if missing:
                raise DictionaryError(
                    f"{p}: is not an nmfsep {what}: arrays {missing} are missing; {hint}"
                )
            for key in keys:
                try:
                    out[key] = npz[key]
                except ValueError as exc:
                    if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
                        raise DictionaryError(
                            f"{p}: array {key!r} holds Python objects (pickle), which nmfsep "
                            f"never loads; {hint}"
                        ) from None
                    raise
    except DictionaryError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise DictionaryError(
            f"{p}: cannot be read as an nmfsep {what} ({type(exc).__name__}: "
            f"{str(exc)[:120]}); the file is corrupt, {hint}"
        ) from None
    for key, arr in out.items():
        if arr.dtype.hasobject:  # pragma: no cover - np.load refuses these already
            raise DictionaryError(f"{p}: array {key!r} holds Python objects; {hint}")
    return out


def _refuse_other_kind(p: Path, npz: Any, what: str) -> None:
    """Name the kind of another nmfsep file (a model given as a dictionary...)."""
    try:
        meta = parse_meta(p, npz["meta"], what=what)
    except (DictionaryError, ValueError):
        return
    kind = meta.get("kind")
    if isinstance(kind, str) and kind != what:
        raise DictionaryError(f"{p}: is an nmfsep {kind} file, not a {what}")


def parse_meta(p: Path, raw: np.ndarray, *, what: str) -> dict[str, Any]:
    """Decode the JSON ``meta`` array of an nmfsep ``.npz`` file.

    Parameters
    ----------
    p : pathlib.Path
        The file, for messages.
    raw : np.ndarray
        The ``meta`` array: a 0-d (or one-element) unicode array.
    what : str
        What the file should be, for messages.

    Returns
    -------
    dict

    Raises
    ------
    DictionaryError
        If ``raw`` is not one string holding a JSON object.
    """
    if raw.dtype.kind != "U" or raw.size != 1:
        raise DictionaryError(
            f"{p}: meta must be one JSON string, got dtype {raw.dtype} and shape {raw.shape}"
        )
    text = str(raw.reshape(()).item())
    if len(text) > _MAX_META_CHARS:
        raise DictionaryError(f"{p}: meta is implausibly long ({len(text)} characters)")
    try:
        meta = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise DictionaryError(f"{p}: meta is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(meta, dict):
        raise DictionaryError(f"{p}: meta must be a JSON object, got {type(meta).__name__}")
    return meta


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def jsonable(value: Any) -> Any:
    """Convert numpy scalars and tuples to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
