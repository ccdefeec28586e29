r"""The atoms a run with dictionaries hands to :func:`nmfsep.nmf`, fixed or adapted.

With dictionaries, the learned atoms are normally held fixed. Two settings of
:class:`~nmfsep.plan.SeparationParams` let them follow the mixture instead:

* ``adapt=μ``: every dictionary atom moves towards the mixture under a penalty of
  weight μ that keeps it near its learned value (``nmf(adapt=)``,
  :mod:`nmfsep._adapt`; Kullback-Leibler only);
* ``free_per_source=m``: m more atoms per source, started from copies of m of the
  source's atoms (spread evenly over its atoms) and then free (μ = 0), written to that
  source's stem (Smaragdis, Raj & Shashanka 2007 add free atoms to a fixed model).

The copies follow the dictionary atoms and come before the free atoms of ``n_free``
(the ``residual`` stem), as :func:`nmfsep.nmf` wants fixed atoms first.

Measured on held-out sound families (issue 13; ``benchmarks/bench_heldout.py``, median
SDR per family x task, against fixed atoms with today's default dictionaries), neither is
the default: leave-one-family-out chose ``adapt=3`` for two held-out families (FluidR3,
MuseScore; by 0.03 dB on the families that chose it) and fixed atoms for the other two,
and there ``adapt=3`` cost 3.1 dB on the FluidR3 duo for -0.04 to +0.4 dB elsewhere.
``adapt=10`` stays within -0.3 to +0.1 dB of fixed atoms in all 14 cells; ``adapt`` 0.3
and 1 lose up to 2.9 dB (TimGM6mb speech, FluidR3 duo); 4 free copies per source lose
6.2 to 7.0 dB (FluidR3 duo and trio), with or without ``adapt=3``. Under the penalty a
learned harmonic cannot move to another pitch (an adapted atom keeps at least
μ/(1+μ) of every learned value), which is what the held-out duos lack; free atoms take
over the other source. On the bundled material ``adapt=10`` changes the median SDR of
the five tasks by -0.08 to +0.13 dB and ``adapt=3`` by -0.27 to +0.39 dB
(``benchmarks/bench_augmentation.py --separate '{"adapt": 10}'``). The runs
(``--reuse`` takes the fixed-atom rows of ``sel1.json``, whose candidate ``ps2`` is
today's default augmentation)::

    nice python benchmarks/bench_heldout.py --jobs 1 --families timgm6mb \
        --candidate 'a0.3={"separate": {"adapt": 0.3}}' \
        --candidate 'a3={"separate": {"adapt": 3}}' \
        --candidate 'a30={"separate": {"adapt": 30}}' \
        --json benchmarks/results/adapt_b1.json
    nice python benchmarks/bench_heldout.py --jobs 1 --families fluidr3 --tasks duo,trio \
        --reuse benchmarks/results/sel1.json --reuse-ceiling \
        --learn '{"pitch_shifts": [-2, -1, 1, 2]}' \
        --candidate 'a1={"separate": {"adapt": 1}}' \
        --candidate 'a10={"separate": {"adapt": 10}}' \
        --candidate 'f4={"separate": {"free_per_source": 4}}' \
        --candidate 'a3f4={"separate": {"adapt": 3, "free_per_source": 4}}' \
        --json benchmarks/results/adapt_b2.json
    nice python benchmarks/bench_heldout.py --jobs 1 --select \
        --reuse benchmarks/results/sel1.json --reuse benchmarks/results/adapt_b1.json \
        --reuse benchmarks/results/adapt_b2.json --reuse-ceiling \
        --learn '{"pitch_shifts": [-2, -1, 1, 2]}' \
        --candidate 'a3={"separate": {"adapt": 3}}' \
        --candidate 'a10={"separate": {"adapt": 10}}' \
        --json benchmarks/results/adapt_select.json
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmfsep.exceptions import ParameterError
from nmfsep.plan import RESIDUAL, Plan, SeparationParams, fallback_groups

__all__ = ["AtomPlan", "atom_plan", "check_adaptation"]


@dataclass(frozen=True)
class AtomPlan:
    """The atoms of a factorization with dictionaries.

    Attributes
    ----------
    k : int
        Components in all: dictionary atoms, their copies, free atoms.
    fixed_atoms : np.ndarray [shape=(k_fixed, n_cols)] or None
        The dictionary atoms then the copies (``nmf(fixed_atoms=)``); None blind.
    adapt : np.ndarray [shape=(k_fixed,)] or None
        ``nmf(adapt=)``: μ of each atom (``inf`` fixed, 0 for the copies), or None when
        every atom is fixed.
    groups : dict[str, list[int]]
        Stem name -> component indices (the copies in their source's stem).
    """

    k: int
    fixed_atoms: np.ndarray | None
    adapt: np.ndarray | None
    groups: dict[str, list[int]]


def check_adaptation(params: SeparationParams, plan: Plan, beta: float) -> None:
    """Refuse ``adapt`` or ``free_per_source`` without dictionaries or with a β other than 1.

    Parameters
    ----------
    params : SeparationParams
        Validated settings.
    plan : Plan
    beta : float
        The β of the run.

    Raises
    ------
    ParameterError
        Naming the setting and what it needs.
    """
    for name, used in (("adapt", params.adapt is not None),
                       ("free_per_source", params.free_per_source > 0)):
        if not used:
            continue
        if plan.dictionary is None:
            raise ParameterError(
                f"{name} needs dictionaries (it adapts their atoms to the mixture)")
        if beta != 1.0:
            raise ParameterError(
                f"{name} supports Kullback-Leibler dictionaries (beta=1), these use "
                f"beta={beta:g}; leave {name} unset"
            )


def _copies(groups: dict[str, list[int]], m: int) -> dict[str, list[int]]:
    """Return, per source, the indices of the m atoms copied (evenly spread, no repeats)."""
    out = {}
    for name, idx in groups.items():
        n = min(m, len(idx))
        picks = np.unique(np.round(np.linspace(0, len(idx) - 1, n)).astype(int))
        out[name] = [idx[i] for i in picks]
    return out


def atom_plan(plan: Plan, params: SeparationParams) -> AtomPlan:
    """Return the atoms, their adaptation and the groups of a run.

    Parameters
    ----------
    plan : Plan
    params : SeparationParams
        Validated settings (:func:`check_adaptation` passed).

    Returns
    -------
    AtomPlan
        Blind: no fixed atoms, ``plan.k`` components. With dictionaries and neither
        setting: the dictionary atoms, fixed, and :func:`nmfsep.plan.fallback_groups`.
    """
    if plan.dictionary is None:
        return AtomPlan(k=plan.k, fixed_atoms=None, adapt=None, groups={})
    atoms = plan.dictionary.atoms
    groups = fallback_groups(plan)
    m = int(params.free_per_source)
    if params.adapt is None and m == 0:
        return AtomPlan(k=plan.k, fixed_atoms=atoms, adapt=None, groups=groups)
    mu = np.full(plan.n_fixed, np.inf if params.adapt is None else float(params.adapt))
    if m == 0:
        return AtomPlan(k=plan.k, fixed_atoms=atoms, adapt=mu, groups=groups)
    picked = _copies(plan.dictionary.groups, m)
    order = [i for idx in picked.values() for i in idx]
    n_copies = len(order)
    start = plan.n_fixed
    for name, idx in picked.items():
        groups[name] = groups[name] + list(range(start, start + len(idx)))
        start += len(idx)
    if RESIDUAL in groups and plan.mode == "semi-supervised":
        groups[RESIDUAL] = [i + n_copies for i in groups[RESIDUAL]]
    return AtomPlan(
        k=plan.k + n_copies,
        fixed_atoms=np.concatenate([atoms, atoms[order]]),
        adapt=np.concatenate([mu, np.zeros(n_copies)]),
        groups=groups,
    )
