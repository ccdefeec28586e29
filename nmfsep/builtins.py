"""Built-in dictionaries shipped with nmfsep, and resolving a dictionary name or path.

The package holds one dictionary per common source in ``nmfsep/dictionaries/<name>.npz``
(drums, bass, piano, guitar, strings, brass, winds, speech), learned by
``benchmarks/build_builtins.py`` from permissively licensed General MIDI SoundFonts and
public-domain LibriVox speech; each file's metadata records its ``provenance`` (fonts,
Debian packages, licences, programs, the script and its version).

A dictionary is given as a :class:`~nmfsep.dictionary.Dictionary`, a path, or a bare
name: :func:`resolve_dictionary` reads the file when one exists at that path (a file
named like a built-in wins; a folder does not) and otherwise the built-in of that name;
a name that is neither gives one line listing the built-ins.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from nmfsep.dictionary import Dictionary
from nmfsep.exceptions import DictionaryError

__all__ = [
    "BUILTIN_DIR",
    "builtin_names",
    "is_builtin",
    "from_builtin",
    "load_builtin",
    "dictionary_path",
    "dictionary_files",
    "existing_path",
    "resolve_dictionary",
    "builtin_info",
]

#: Folder of the built-in dictionary files inside the package.
BUILTIN_DIR = Path(__file__).resolve().parent / "dictionaries"


def builtin_names() -> tuple[str, ...]:
    """Names of the built-in dictionaries, sorted.

    Returns
    -------
    tuple of str
        E.g. ``("bass", "brass", "drums", ...)``; empty if the package holds none.
    """
    if not BUILTIN_DIR.is_dir():
        return ()
    return tuple(sorted(p.stem for p in BUILTIN_DIR.glob("*.npz")))


def is_builtin(name: object) -> bool:
    """Return True if ``name`` is the name of a built-in dictionary (not a path).

    Parameters
    ----------
    name : object
        A string such as ``"drums"``; paths and other objects give False.

    Returns
    -------
    bool
    """
    return isinstance(name, str) and name in builtin_names()


def from_builtin(d: Dictionary) -> bool:
    """Return True if dictionary ``d`` is a built-in (its ``provenance`` names one).

    ``benchmarks/build_builtins.py`` writes ``provenance["builtin"]``; a user's
    dictionary has none. Built-ins keep one pass (:func:`nmfsep.relearn.should_relearn`)
    and leave out their harmonic atoms without a note (:func:`nmfsep.plan.make_plan`).
    """
    return "builtin" in d.provenance


def _available() -> str:
    names = builtin_names()
    return ", ".join(names) if names else "none (this installation ships no built-ins)"


@lru_cache(maxsize=32)
def load_builtin(name: str) -> Dictionary:
    """Load the built-in dictionary ``name`` (cached: the atoms are read-only).

    Parameters
    ----------
    name : str
        One of :func:`builtin_names`.

    Returns
    -------
    Dictionary
        Its ``provenance`` names the sound sources, their licences and the script.

    Raises
    ------
    DictionaryError
        If there is no built-in of that name (the message lists them).
    """
    if not is_builtin(name):
        raise DictionaryError(
            f"{name!r} is not a built-in dictionary; built-ins: {_available()}"
        )
    return Dictionary.load(BUILTIN_DIR / f"{name}.npz")


def dictionary_path(spec: str | os.PathLike[str]) -> Path:
    """Return the file a dictionary argument names: a path, or a built-in's file.

    Parameters
    ----------
    spec : str or os.PathLike
        A file (``"piano.npz"``), or a bare built-in name (``"drums"``) when no file of
        that name exists (a folder of that name does not count: a ``drums/`` folder of
        samples beside the song is common).

    Returns
    -------
    Path
        ``spec`` itself unless it names a built-in as above (then the built-in's file);
        a path that does not exist is returned as it is, for the loader to report.
    """
    text = os.fspath(spec)
    if is_builtin(text) and not (os.path.lexists(text) and not os.path.isdir(text)):
        return BUILTIN_DIR / f"{text}.npz"
    return Path(text)


def dictionary_files(specs: object) -> list[Path]:
    """Return the files that dictionary arguments read (paths and built-in names).

    A run's outputs may not overwrite them (:func:`nmfsep.io.check_not_input`).

    Parameters
    ----------
    specs : sequence of str, os.PathLike or Dictionary, or None
        ``separate``'s ``dictionaries``; loaded :class:`Dictionary` objects read no file.

    Returns
    -------
    list of Path
        One per path or name, as :func:`dictionary_path` resolves it.
    """
    if not isinstance(specs, list | tuple):
        return []
    return [dictionary_path(s) for s in specs if isinstance(s, str | os.PathLike)]


def resolve_dictionary(spec: str | os.PathLike[str]) -> tuple[Dictionary, str]:
    """Load a dictionary given as a path or as the name of a built-in.

    Parameters
    ----------
    spec : str or os.PathLike
        A dictionary file (``"piano.npz"``), or a bare built-in name (``"drums"``)
        when no file of that name exists (a folder of that name does not count: a
        ``drums/`` folder of samples beside the song is common).

    Returns
    -------
    dictionary : Dictionary
    origin : str
        What was used, for summaries: ``"built-in drums"``, ``"file piano.npz"``, or
        ``"file drums (not the built-in drums)"`` when a file shadows a built-in.

    Raises
    ------
    DictionaryError
        If ``spec`` is neither a file nor a built-in name (the message lists the
        built-ins), or the file is not a valid dictionary.
    """
    text = os.fspath(spec)
    path = dictionary_path(text)
    if path != Path(text):  # the built-in of that name
        return load_builtin(text), f"built-in {text}"
    existing_path(text)
    shadow = f" (not the built-in {text})" if is_builtin(text) else ""
    return Dictionary.load(text), f"file {text}{shadow}"


def existing_path(spec: str | os.PathLike[str]) -> Path:
    """:func:`dictionary_path`, refusing a name that is neither a file nor a built-in.

    Parameters
    ----------
    spec : str or os.PathLike
        A dictionary (or saved model) file, or a built-in's name.

    Returns
    -------
    Path

    Raises
    ------
    DictionaryError
        If nothing of that name exists; the message lists the built-ins.
    """
    path = dictionary_path(spec)
    if not os.path.lexists(path):
        raise DictionaryError(
            f"{os.fspath(spec)}: no such dictionary file and no built-in of that name; give "
            f"the path of a .npz from `nmfsep learn` or a built-in: {_available()}"
        )
    return path


def builtin_info() -> list[dict[str, Any]]:
    """Describe every built-in dictionary (for ``nmfsep info --builtin``).

    Returns
    -------
    list of dict
        One per built-in, sorted by name: ``name``, ``atoms``, ``sr``, ``context_frames``,
        ``bytes`` (file size), ``description``, ``licence``, ``sources`` (the fonts or
        recordings) and ``script`` (with its version).
    """
    out = []
    for name in builtin_names():
        d = load_builtin(name)
        prov = d.provenance
        sources = [s.get("font") or s.get("package", "?") for s in prov.get("sources", [])]
        out.append({
            "name": name,
            "atoms": d.n_atoms,
            "sr": d.sr,
            "context_frames": d.context_frames,
            "bytes": (BUILTIN_DIR / f"{name}.npz").stat().st_size,
            "description": prov.get("description", ""),
            "licence": prov.get("licence", "unknown"),
            "sources": sources,
            "script": f"{prov.get('script', '?')} v{prov.get('script_version', '?')}",
        })
    return out
