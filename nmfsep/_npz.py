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
_MIN_ALLOWED_BYTES = 256 * 2**20  # any archive may inflate to 256 MiB ...
_INFLATE_RATIO = 16  # ... or 16 times its size (nmfsep writes uncompressed: ratio ~1)


def atomic_savez(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    *,
    force: bool = False,
    compress: bool = False,
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
    compress : bool
        Deflate the members (:func:`numpy.savez_compressed`) instead of storing them.

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
            (np.savez_compressed if compress else np.savez)(fh, allow_pickle=False, **arrays)
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
    if not os.access(p, os.R_OK):
        raise DictionaryError(f"{p}: permission denied; make the file readable")
    if not zipfile.is_zipfile(p):
        raise DictionaryError(f"{p}: is not an nmfsep {what} (not a .npz archive); {hint}")
    try:
        _check_sizes(p, keys, what)
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
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
            RuntimeError, NotImplementedError, OverflowError) as exc:
        raise DictionaryError(
            f"{p}: cannot be read as an nmfsep {what} ({type(exc).__name__}: "
            f"{str(exc)[:120]}); the file is corrupt, {hint}"
        ) from None
    for key, arr in out.items():
        if arr.dtype.hasobject:  # pragma: no cover - np.load refuses these already
            raise DictionaryError(f"{p}: array {key!r} holds Python objects; {hint}")
    return out


def _check_sizes(p: Path, keys: Sequence[str], what: str) -> None:
    """Bound what loading ``keys`` of the archive ``p`` would allocate, before inflating.

    The zip directory's uncompressed sizes are capped (all members together at most
    :data:`_INFLATE_RATIO` times the file's size, at least :data:`_MIN_ALLOWED_BYTES`,
    never over :data:`_MAX_UNCOMPRESSED_BYTES`), and each ``.npy`` header read must
    declare no more bytes than its member holds: a tiny file cannot make nmfsep
    allocate gigabytes.

    Raises
    ------
    DictionaryError
        Naming the file, the size declared and the limit.
    """
    allowed = min(_MAX_UNCOMPRESSED_BYTES, max(_MIN_ALLOWED_BYTES,
                                               _INFLATE_RATIO * p.stat().st_size))
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        total = sum(info.file_size for info in infos)
        if total > allowed:
            raise DictionaryError(
                f"{p}: archive would inflate to {total} bytes from {p.stat().st_size} "
                f"(more than {allowed}); refusing an implausible {what}"
            )
        names = {info.filename: info for info in infos}
        for key in keys:
            info = names.get(key + ".npy")
            if info is not None:
                with zf.open(info) as fh:
                    _check_header(p, key, fh, info.file_size)


def _check_header(p: Path, key: str, fh: Any, size: int) -> None:
    """Refuse a ``.npy`` member whose header declares more data than the member holds."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if version not in readers:
        raise DictionaryError(f"{p}: array {key!r} has .npy format version {version}; "
                              "save it again with numpy's default format")
    shape, _, dtype = readers[version](fh)
    if dtype.hasobject:
        raise DictionaryError(f"{p}: array {key!r} holds Python objects (pickle), which "
                              "nmfsep never loads")
    declared = math.prod(shape) * dtype.itemsize
    if declared > size:
        raise DictionaryError(
            f"{p}: array {key!r} declares shape {shape} ({declared} bytes) but its member "
            f"holds {size} bytes; the file is corrupt"
        )


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
