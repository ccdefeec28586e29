"""``n_sources="auto"``: separate blind with the number of sources the mixture suggests.

:func:`auto_plan` runs :func:`nmfsep.sources.suggest_sources` on the mixture and plans a
blind separation with that many sources, the drums split off first
(``percussive=True``, :mod:`nmfsep.percussive`) when it found them. The suggestion
travels in the plan (``Plan.sources_auto``) into the settings record of the result,
the saved model, the report and the summary of :func:`nmfsep.files.separate_file`;
:func:`describe_auto` says it in one line (``auto -> 3 (drums + 2 harmonic,
confidence 0.67)``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from nmfsep.dictionary import Dictionary
from nmfsep.exceptions import ParameterError
from nmfsep.plan import AUTO_SOURCES, Plan, make_plan
from nmfsep.sources import suggest_sources

__all__ = ["AUTO_SOURCES", "AUTO_CONFIDENCE", "MIN_AUTO_SECONDS", "MAX_AUTO_SOURCES", "is_auto",
           "check_auto", "auto_plan", "plan_for", "describe_auto"]

#: Confidence under which the suggested count is called a guess: below 0.7 the three
#: factorizations of :func:`nmfsep.sources.suggest_sources` disagree (confidence at most
#: 2/3). In ``benchmarks/bench_blind.py --tasks band,duo,trio --sources`` (30 mixtures,
#: 4 families) the count was right on 7 of 11 mixtures at 0.7 or more and on 11 of 19
#: below: the confidence tells little, and most suggestions are called guesses.
AUTO_CONFIDENCE = 0.7
#: Shortest mixture whose number of sources is suggested, seconds.
MIN_AUTO_SECONDS = 1.0
#: Most sources :func:`nmfsep.sources.suggest_sources` suggests (3 harmonic + drums).
MAX_AUTO_SOURCES = 4


def is_auto(n_sources: object) -> bool:
    """Tell whether ``n_sources`` asks for the suggested number of sources (``"auto"``)."""
    return isinstance(n_sources, str) and n_sources == AUTO_SOURCES


def check_auto(
    n_components: int | None,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]] | None,
    n_free: int,
    percussive: bool,
) -> None:
    """Refuse what ``n_sources="auto"`` cannot go with, before any audio is read.

    Parameters
    ----------
    n_components, dictionaries, n_free, percussive
        As for :func:`nmfsep.separate`.

    Raises
    ------
    ParameterError
        With dictionaries or free atoms (auto is blind), ``percussive=True`` (auto
        decides it) or ``n_components`` under 2 (the fewest sources it suggests).
    """
    if dictionaries or n_free:
        raise ParameterError(
            "n_sources='auto' is for blind separation; with dictionaries there is one stem "
            "per dictionary source (leave n_sources out)")
    if percussive:
        raise ParameterError(
            "n_sources='auto' decides percussive itself (the drums are split off when it "
            "finds them); leave percussive out, or give n_sources=N")
    if n_components is not None and not (isinstance(n_components, int | np.integer)
                                         and n_components >= 2):
        raise ParameterError(
            f"n_components={n_components} is fewer than the 2 sources n_sources='auto' "
            "suggests at least; use n_components >= 2 or leave it out")


def auto_plan(
    y: np.ndarray,
    sr: int,
    *,
    n_components: int | None = None,
    harmonic: str = "auto",
    spatial: str | None = None,
) -> Plan:
    """Plan a blind separation with the number of sources that ``y`` suggests.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)], float
        The mixture, checked (:func:`nmfsep.separate.check_mixture`).
    sr : int
        Its rate in Hz.
    n_components : int or None
        Components k; None: :func:`nmfsep.plan.components_per_source` per source.
    harmonic : str
        As for :func:`nmfsep.plan.make_plan` (unused in blind mode).
    spatial : str or None
        The ``spatial`` asked for: "gains" cannot split the drums off.

    Returns
    -------
    Plan
        Blind, ``percussive`` when drums were found, with ``sources_auto`` the
        suggestion (:meth:`nmfsep.sources.SourceSuggestion.to_dict` plus ``guess``:
        confidence under :data:`AUTO_CONFIDENCE`).

    Raises
    ------
    ParameterError
        If the mixture is shorter than :data:`MIN_AUTO_SECONDS`, the suggestion is
        more than ``n_components``, or drums were found with ``spatial="gains"`` on
        several channels.
    """
    seconds = y.shape[-1] / sr
    if seconds < MIN_AUTO_SECONDS:
        raise ParameterError(
            f"n_sources='auto' needs at least {MIN_AUTO_SECONDS:g} s of audio to suggest a "
            f"number of sources, the mixture has {seconds:.3g} s; give n_sources=N")
    found = suggest_sources(y, sr)
    if n_components is not None and found.n_sources > n_components:
        raise ParameterError(
            f"n_sources='auto' found {found.n_sources} sources, more than "
            f"n_components={n_components}; use n_components >= {found.n_sources} or "
            "leave it out")
    if found.drums and spatial == "gains" and y.shape[0] > 1:
        raise ParameterError(
            "n_sources='auto' found drums, which are split off with the channels modelled "
            "together: spatial='gains' is not available with them; leave spatial out, or "
            "give n_sources=N")
    plan = make_plan(n_components, found.n_sources, [], 0, found.drums, harmonic)
    record = {**found.to_dict(), "guess": found.confidence < AUTO_CONFIDENCE}
    return replace(plan, sources_auto=record)


def describe_auto(record: dict[str, Any] | None) -> str:
    """Say what ``n_sources="auto"`` found, from a settings record's ``sources_auto``.

    Parameters
    ----------
    record : dict or None
        ``settings["sources_auto"]``.

    Returns
    -------
    str
        ``"auto -> 3 (drums + 2 harmonic, confidence 0.67)"``; "" for None.
    """
    if not record:
        return ""
    parts = [f"{record['n_harmonic']} harmonic"]
    if record.get("drums"):
        parts.insert(0, "drums")
    return (f"auto -> {record['n_sources']} ({' + '.join(parts)}, "
            f"confidence {float(record['confidence']):.2f})")


def plan_for(
    y: np.ndarray | None,
    sr: int,
    *,
    n_components: int | None,
    n_sources: int | Sequence[str] | None,
    dictionaries: Sequence[Dictionary],
    n_free: int = 0,
    percussive: bool = False,
    harmonic: str = "auto",
    spatial: str | None = None,
) -> Plan:
    """Return the plan of a run: :func:`auto_plan` for ``n_sources="auto"``, else ``make_plan``.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)] or None
        The mixture, checked. None (only its header known, e.g. to estimate memory):
        ``"auto"`` plans the most sources it can suggest (:data:`MAX_AUTO_SOURCES`).
    sr : int
        Its rate in Hz.
    n_components, n_sources, n_free, percussive, harmonic, spatial
        As for :func:`nmfsep.separate`.
    dictionaries : sequence of Dictionary
        Loaded dictionaries (:func:`nmfsep.plan.load_dictionaries`).

    Returns
    -------
    Plan
    """
    if not is_auto(n_sources):
        return make_plan(n_components, n_sources, dictionaries, n_free, percussive, harmonic)
    check_auto(n_components, dictionaries, n_free, percussive)
    if y is None:
        most = MAX_AUTO_SOURCES if n_components is None else min(MAX_AUTO_SOURCES, n_components)
        return make_plan(n_components, most, [], 0, False, harmonic)
    return auto_plan(y, sr, n_components=n_components, harmonic=harmonic, spatial=spatial)
