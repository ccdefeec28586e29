"""Separation quality: BSS Eval (SDR/SIR/SAR), SI-SDR, and oracle-mask ceilings.

What is measured
----------------
* **SDR / SIR / SAR** are BSS Eval v3 ``bss_eval_sources`` (Vincent, Gribonval &
  Févotte 2006), computed by :mod:`nmfsep.bsseval`: the decomposition of
  ``mir_eval.separation.bss_eval_sources`` (time-invariant distortion filters of
  512 taps), checked against it to 1e-9 dB in the tests; mir_eval is no run-time
  dependency.
* **SI-SDR** is the scale-invariant SDR of Le Roux, Wisdom, Erdogan & Hershey (2019),
  on zero-mean signals, and **SI-SDRi** its improvement over the unprocessed
  mixture: ``SI-SDR(estimate) - SI-SDR(mixture)``, both against the same reference.

Channels
--------
Stereo (multichannel) stems are scored as **source images** by default
(``bss_eval_images``: SDR, ISR, SIR, SAR), as SiSEC / museval judge stereo
separation; ``images=False`` (or ``framewise``) computes every metric on **mono
downmixes** (the mean of the channels) of the references, the estimates and the
mixture instead, an order of magnitude faster. SI-SDR is always on the downmixes.
Mono audio is used as it is.

Silence
-------
BSS Eval is undefined for an all-zero source (mir_eval refuses one). Here a
silent reference or a silent estimate (after the downmix) is reported with NaN
metrics and a ``status`` of ``"silent reference"`` or ``"silent estimate"``, with
an :class:`EvaluationWarning`;
the other sources are still evaluated against every non-silent reference, so
leakage into them still counts as interference.

Mismatched inputs
-----------------
:func:`reconcile` resamples, downmixes/broadcasts and trims/pads an estimate to
fit its reference, and says so in an :class:`EvaluationWarning` each time: nothing is
changed silently.

Every function is pure: arguments are never modified in place.

References
----------
.. [1] E. Vincent, R. Gribonval and C. Févotte, "Performance measurement in blind
   audio source separation", IEEE TASLP 14(4), 2006.
.. [2] J. Le Roux, S. Wisdom, H. Erdogan and J. R. Hershey, "SDR - half-baked or
   well done?", ICASSP 2019.
"""

from __future__ import annotations

import csv
import io as _stdio
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from nmfsep._checks import check_choice, check_int, check_real, fail, is_choice
from nmfsep._checks import check_rate as _check_rate
from nmfsep.bsseval import FILTER_LENGTH, BSSEval
from nmfsep.exceptions import ParameterError

__all__ = [
    "EvaluationWarning",
    "StemScore",
    "EvaluationResult",
    "bss_eval",
    "si_sdr",
    "si_sdr_improvement",
    "reconcile",
    "evaluate_separation",
    "evaluate_files",
    "oracle_masks",
    "oracle_separation",
    "ORACLE_KINDS",
    "OracleKind",
    "METRICS",
    "METRIC_LABELS",
    "IMAGE_METRICS",
]

#: The metrics of a :class:`StemScore`, in table order.
METRICS = ("sdr", "sir", "sar", "si_sdr", "si_sdri")
#: How each metric is named in tables.
METRIC_LABELS = {
    "sdr": "SDR",
    "sir": "SIR",
    "sar": "SAR",
    "si_sdr": "SI-SDR",
    "si_sdri": "SI-SDRi",
    "isr": "ISR",
}
#: The metrics of a source-image evaluation (``images=True``): ISR added.
IMAGE_METRICS = ("sdr", "isr", "sir", "sar", "si_sdr", "si_sdri")
#: The type of an oracle mask kind (a key of :data:`ORACLE_KINDS`).
OracleKind = Literal["irm", "wiener", "ibm"]
#: Oracle mask kinds and the exponent each applies to the reference magnitudes.
ORACLE_KINDS: dict[OracleKind, float | None] = {"irm": 1.0, "wiener": 2.0, "ibm": None}
_PAIR_FLOOR = -1000.0  # stand-in SDR of impossible pairs when matching by permutation
_PAIR_CEIL = 1000.0


class EvaluationWarning(UserWarning):
    """An input was adapted (resampled, trimmed, downmixed...) or a metric is undefined."""


def _warn(message: str, messages: list[str] | None = None, *, stacklevel: int = 3) -> None:
    if messages is not None:
        messages.append(message)
    warnings.warn(message, EvaluationWarning, stacklevel=stacklevel)


# --------------------------------------------------------------------------- validation


def _check_signal(x: object, name: str) -> np.ndarray:
    """Return ``x`` as a 2-D ``(n_channels, n_samples)`` float array (1-D = mono)."""
    if isinstance(x, Mapping) or isinstance(x, str | bytes):
        raise ParameterError(f"{name} must be an audio array, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise ParameterError(f"{name} must be real audio, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "fiu":
        raise ParameterError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[np.newaxis]
    if arr.ndim != 2:
        raise ParameterError(
            f"{name} must have shape (n_channels, n_samples) or (n_samples,), got {arr.shape}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ParameterError(f"{name} must hold at least one channel and one sample")
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name} contains NaN or Inf samples; clean it before evaluating")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    return arr


def _check_sources(x: object, name: str) -> np.ndarray:
    """Return a stack of sources as ``(n_sources, n_channels, n_samples)``."""
    arr = np.asarray(x)
    if arr.dtype.kind == "c" or arr.dtype.kind not in "fiu":
        raise ParameterError(f"{name} must be a real array, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, np.newaxis, :]
    if arr.ndim != 3:
        raise ParameterError(
            f"{name} must have shape (n_sources, n_samples) or "
            f"(n_sources, n_channels, n_samples), got {arr.shape}"
        )
    if min(arr.shape) < 1:
        raise ParameterError(f"{name} must hold at least one source, channel and sample")
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name} contains NaN or Inf samples; clean them before evaluating")
    return arr


def _mono(x: np.ndarray) -> np.ndarray:
    """Mono float64 downmix of ``(..., n_channels, n_samples)`` (mean of the channels)."""
    return np.asarray(x, dtype=np.float64).mean(axis=-2)


# --------------------------------------------------------------------------- BSS Eval


def _quietly(func, *args):
    """Call ``func`` with BLAS on one thread and numpy's divide warnings off.

    The systems are small (512 taps per source), and a multi-threaded BLAS on them is
    up to 10x slower on a busy machine.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), np.errstate(divide="ignore",
                                                                   invalid="ignore"):
        return func(*args)


def _pair_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SDR of one estimate against one reference (independent of the other references)."""
    return _quietly(lambda: BSSEval(reference[np.newaxis]).scores(estimate, 0)[0])


def _metrics(
    R: np.ndarray, E: np.ndarray, pairs: list[tuple[int, int]], window: int | None = None
) -> dict[int, tuple[float, float, float]]:
    """SDR/SIR/SAR of the pairs ``(row of R, row of E)`` against the reference set ``R``.

    ``R`` holds only non-silent references and ``E`` only non-silent estimates. A
    reference without an estimate stays in the set, so that its leakage into the other
    estimates counts as interference, as in BSS Eval. With ``window`` (samples), each
    metric is the median over successive windows, skipping windows where a reference
    or the estimate is silent (NaN if none is left).
    """
    if not pairs:
        return {}

    def run() -> dict[int, tuple[float, float, float]]:
        if window is None:
            bss = BSSEval(R)
            return {j: bss.scores(E[i], j) for j, i in pairs}
        frames: dict[int, list[tuple[float, float, float]]] = {j: [] for j, _ in pairs}
        for start in range(0, R.shape[1] - window + 1, window):
            sl = slice(start, start + window)
            if not np.all(np.any(R[:, sl] != 0, axis=1)):
                continue
            bss = BSSEval(R[:, sl])
            for j, i in pairs:
                if np.any(E[i, sl] != 0):
                    frames[j].append(bss.scores(E[i, sl], j))
        medians: dict[int, tuple[float, float, float]] = {}
        for j, f in frames.items():
            sdr, sir, sar = (float(v) for v in np.median(f, axis=0)) if f else (math.nan,) * 3
            medians[j] = (sdr, sir, sar)
        return medians

    return _quietly(run)


def bss_eval(
    references,
    estimates,
    *,
    permute: bool = False,
    names: Sequence[str] | None = None,
    estimate_names: Sequence[str] | None = None,
    window: int | None = None,
) -> dict[str, Any]:
    """SDR, SIR and SAR of every source: BSS Eval v3 ``bss_eval_sources``.

    Parameters
    ----------
    references : np.ndarray [shape=(n_sources, n_samples) or (n_sources, n_channels, n_samples)]
        The true sources. Multichannel sources are downmixed to mono (mean of the
        channels) before evaluation.
    estimates : np.ndarray [shape=(n_estimates, n_samples) or (n_estimates, n_channels, n_samples)]
        The separated sources, same number of samples as ``references`` (use
        :func:`reconcile` first if needed). ``n_estimates`` must equal
        ``n_sources`` unless ``permute=True``.
    permute : bool, default=False
        False: estimate ``j`` is scored against reference ``j``. True: find the
        assignment of estimates to references that maximises the total SDR (the
        Hungarian method, :func:`scipy.optimize.linear_sum_assignment`, on the
        matrix of pairwise SDRs), for blind separations whose output order means
        nothing. Then ``n_estimates`` may differ from ``n_sources``: surplus
        estimates stay unmatched, surplus references get NaN.
    names : sequence of str, optional
        Names of the references, used in warnings (default ``"reference 0"`` ...).
    estimate_names : sequence of str, optional
        Names of the estimates, used in warnings (default ``"estimate 0"`` ...).
    window : int, optional
        Framewise BSS Eval: SDR, SIR and SAR are the medians over successive
        windows of ``window`` samples (SiSEC's convention), skipping windows where
        a reference or the estimate is silent. Matching (``permute``) still uses
        the whole signals. None: the whole signals.

    Returns
    -------
    dict
        ``"sdr"``, ``"sir"``, ``"sar"``: np.ndarray [shape=(n_sources,)] in dB, per
        reference, NaN where undefined; ``"estimate"``: np.ndarray [shape=(n_sources,)]
        of int, the estimate matched to each reference (-1 if none); ``"status"``:
        list of str per reference, ``"ok"``, ``"silent reference"``,
        ``"silent estimate"`` or ``"no estimate"``; ``"unmatched"``: list of the
        estimate indices matched to no reference; ``"pair_sdr"``: the
        ``(n_estimates, n_sources)`` SDR matrix used for matching (only with
        ``permute=True``, NaN for silent pairs).

    Raises
    ------
    ParameterError
        For bad shapes, non-finite samples, or references that are linearly
        dependent (BSS Eval cannot tell them apart).

    Warns
    -----
    EvaluationWarning
        For every silent reference or estimate, and every unmatched one.

    Notes
    -----
    SDR is +inf for a perfect estimate. SIR and SAR depend on the set of
    references (interference is what the other references explain), SDR does not.
    mir_eval's own ``compute_permutation`` maximises the mean SIR instead of the
    total SDR; on clear-cut cases both choose the same assignment.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> refs = rng.standard_normal((2, 8000))
    >>> scores = bss_eval(refs, refs[::-1] + 0.1 * rng.standard_normal((2, 8000)), permute=True)
    >>> scores["estimate"].tolist()
    [1, 0]
    """
    R, E, names, estimate_names = _bss_inputs(references, estimates, permute, names,
                                              estimate_names)
    silent_ref = ~np.any(R != 0, axis=1)
    silent_est = ~np.any(E != 0, axis=1)
    pair_sdr = None
    if permute:
        match, pair_sdr = _match_by_sdr(R, E, silent_ref, silent_est)
    else:
        match = np.arange(R.shape[0], dtype=np.intp)
    status, unmatched = _statuses(match, silent_ref, silent_est, names, estimate_names)
    if window is not None:
        check_int(window, "window", 1)
    sdr, sir, sar = _scores(R, E, match, status, silent_ref, silent_est, window)
    out: dict[str, Any] = {
        "sdr": sdr,
        "sir": sir,
        "sar": sar,
        "estimate": match,
        "status": status,
        "unmatched": unmatched,
    }
    if pair_sdr is not None:
        out["pair_sdr"] = pair_sdr
    return out


def _bss_inputs(
    references: Any,
    estimates: Any,
    permute: bool,
    names: Sequence[str] | None,
    estimate_names: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Check the arguments of :func:`bss_eval`; return mono sources and their names.

    Returns
    -------
    R : np.ndarray [shape=(n_sources, n_samples)]
        The references, downmixed to mono.
    E : np.ndarray [shape=(n_estimates, n_samples)]
        The estimates, downmixed to mono.
    names, estimate_names : list of str
        One per reference, one per estimate (defaults filled in).
    """
    R = _mono(_check_sources(references, "references"))
    E = _mono(_check_sources(estimates, "estimates"))
    n_src, n_est = R.shape[0], E.shape[0]
    if R.shape[1] != E.shape[1]:
        raise ParameterError(
            f"references have {R.shape[1]} samples but estimates {E.shape[1]}; "
            "trim or pad them with nmfsep.evaluate.reconcile first"
        )
    if not permute and n_src != n_est:
        raise ParameterError(
            f"{n_src} references but {n_est} estimates; give one estimate per reference "
            "or use permute=True"
        )
    if names is None:
        names = [f"reference {j}" for j in range(n_src)]
    names = [str(n) for n in names]
    if len(names) != n_src:
        raise ParameterError(f"names has {len(names)} entries for {n_src} references")
    if estimate_names is None:
        estimate_names = [f"estimate {i}" for i in range(n_est)]
    estimate_names = [str(n) for n in estimate_names]
    if len(estimate_names) != n_est:
        raise ParameterError(
            f"estimate_names has {len(estimate_names)} entries for {n_est} estimates"
        )
    return R, E, names, estimate_names


def _match_by_sdr(
    R: np.ndarray, E: np.ndarray, silent_ref: np.ndarray, silent_est: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Assign estimates to references for the largest total SDR (Hungarian method).

    Parameters
    ----------
    R : np.ndarray [shape=(n_sources, n_samples)]
    E : np.ndarray [shape=(n_estimates, n_samples)]
    silent_ref : np.ndarray [shape=(n_sources,)], bool
    silent_est : np.ndarray [shape=(n_estimates,)], bool

    Returns
    -------
    match : np.ndarray [shape=(n_sources,)], intp
        The estimate of each reference, -1 if none.
    pair_sdr : np.ndarray [shape=(n_estimates, n_sources)]
        The pairwise SDRs, NaN for silent pairs.
    """
    from scipy.optimize import linear_sum_assignment

    n_src, n_est = R.shape[0], E.shape[0]
    pair_sdr = np.full((n_est, n_src), np.nan)
    for i in np.flatnonzero(~silent_est):
        for j in np.flatnonzero(~silent_ref):
            pair_sdr[i, j] = _pair_sdr(R[j], E[i])
    score = np.nan_to_num(pair_sdr, nan=_PAIR_FLOOR, posinf=_PAIR_CEIL, neginf=_PAIR_FLOOR)
    rows, cols = linear_sum_assignment(np.clip(score, _PAIR_FLOOR, _PAIR_CEIL), maximize=True)
    match = np.full(n_src, -1, dtype=np.intp)
    match[cols] = rows
    return match, pair_sdr


def _statuses(
    match: np.ndarray,
    silent_ref: np.ndarray,
    silent_est: np.ndarray,
    names: list[str],
    estimate_names: list[str],
) -> tuple[list[str], list[int]]:
    """Say, per reference, whether it can be scored; warn for every one that cannot.

    The warnings point at the caller of :func:`bss_eval`.

    Returns
    -------
    status : list of str [length n_sources]
        ``"ok"``, ``"silent reference"``, ``"no estimate"`` or ``"silent estimate"``.
    unmatched : list of int
        The estimates matched to no reference.
    """
    n_src, n_est = len(match), len(silent_est)
    status: list[str] = []
    for j in range(n_src):
        i = match[j]
        if silent_ref[j]:
            status.append("silent reference")
            _warn(
                f"{names[j]} is silent (all zeros): its SDR/SIR/SAR are undefined and "
                "reported as NaN",
                stacklevel=4,
            )
        elif i < 0:
            status.append("no estimate")
            _warn(
                f"{names[j]} has no matching estimate: its metrics are reported as NaN",
                stacklevel=4,
            )
        elif silent_est[i]:
            status.append("silent estimate")
            _warn(
                f"the estimate of {names[j]} is silent (all zeros): its SDR/SIR/SAR are "
                "undefined and reported as NaN",
                stacklevel=4,
            )
        else:
            status.append("ok")
    unmatched = sorted(set(range(n_est)) - {int(i) for i in match if i >= 0})
    if unmatched:
        listed = ", ".join(estimate_names[i] for i in unmatched)
        _warn(
            f"{listed} match(es) no reference ({n_est} estimates for {n_src} "
            "references) and is not scored",
            stacklevel=4,
        )
    return status, unmatched


def _scores(
    R: np.ndarray,
    E: np.ndarray,
    match: np.ndarray,
    status: list[str],
    silent_ref: np.ndarray,
    silent_est: np.ndarray,
    window: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute SDR, SIR and SAR per reference, NaN where ``status`` is not ``"ok"``.

    Evaluates against the non-silent references only (BSS Eval is undefined for silence).

    Returns
    -------
    sdr, sir, sar : np.ndarray [shape=(n_sources,)]
        In dB.
    """
    n_src = R.shape[0]
    ref_rows = np.flatnonzero(~silent_ref)
    est_rows = np.flatnonzero(~silent_est)
    ref_pos = {int(j): n for n, j in enumerate(ref_rows)}
    est_pos = {int(i): n for n, i in enumerate(est_rows)}
    pairs = [(ref_pos[j], est_pos[int(match[j])]) for j in range(n_src) if status[j] == "ok"]
    found = _metrics(R[ref_rows], E[est_rows], pairs, window)

    sdr = np.full(n_src, np.nan)
    sir = np.full(n_src, np.nan)
    sar = np.full(n_src, np.nan)
    for j in range(n_src):
        if status[j] == "ok":
            sdr[j], sir[j], sar[j] = found[ref_pos[j]]
    return sdr, sir, sar


# --------------------------------------------------------------------------- SI-SDR


def si_sdr(reference, estimate) -> float:
    """Scale-invariant signal-to-distortion ratio (Le Roux et al. 2019), in dB.

    Both signals are made zero-mean; then, with ``α = <ŝ, s> / <s, s>``,
    ``SI-SDR = 10 log10(|α s|² / |α s - ŝ|²)``. Multiplying the estimate by any
    non-zero factor leaves it unchanged.

    Parameters
    ----------
    reference : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
        The true source; multichannel signals are downmixed to mono.
    estimate : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
        The estimate, same number of samples.

    Returns
    -------
    float
        SI-SDR in dB; +inf for an estimate proportional to the reference, -inf for
        one orthogonal to it, NaN (with an :class:`EvaluationWarning`) when the
        reference or the estimate is silent (constant).

    Raises
    ------
    ParameterError
        For bad shapes, non-finite samples or different lengths.

    See Also
    --------
    si_sdr_improvement : the gain over the mixture.

    Examples
    --------
    >>> s = np.sin(np.linspace(0, 100, 4000))
    >>> round(si_sdr(s, 3 * s + 0.01 * np.cos(np.linspace(0, 77, 4000))), 1) > 40
    True
    """
    r = _mono(_check_signal(reference, "reference"))
    e = _mono(_check_signal(estimate, "estimate"))
    if r.shape != e.shape:
        raise ParameterError(
            f"reference has {r.size} samples but estimate {e.size}; "
            "trim or pad with nmfsep.evaluate.reconcile first"
        )
    r = r - r.mean()
    e = e - e.mean()
    rr = float(r @ r)
    if rr == 0.0:
        _warn("SI-SDR is undefined for a silent reference; reported as NaN")
        return math.nan
    if not np.any(e != 0):
        _warn("SI-SDR is undefined for a silent estimate; reported as NaN")
        return math.nan
    alpha = float(e @ r) / rr
    target = alpha * r
    noise = e - target
    tt = float(target @ target)
    nn = float(noise @ noise)
    if nn == 0.0:
        return math.inf
    if tt == 0.0:
        return -math.inf
    return 10.0 * math.log10(tt / nn)


def si_sdr_improvement(reference, estimate, mixture) -> float:
    """SI-SDR improvement: ``si_sdr(reference, estimate) - si_sdr(reference, mixture)``.

    Parameters
    ----------
    reference, estimate, mixture : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
        Same number of samples; multichannel signals are downmixed to mono.

    Returns
    -------
    float
        dB gained by the separation over doing nothing; NaN when undefined.
    """
    a = si_sdr(reference, estimate)
    b = si_sdr(reference, mixture)
    if math.isinf(a) and math.isinf(b) and a == b:
        return math.nan
    return a - b


# --------------------------------------------------------------------------- reconcile


def _resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from nmfsep.io import resample

    return resample(np.asarray(y, dtype=np.float64), sr_in, sr_out)


def _fit_to(
    est: np.ndarray,
    *,
    n_samples: int,
    n_channels: int | None,
    sr_target: int,
    sr_est: int,
    label: str,
    messages: list[str],
) -> np.ndarray:
    """Resample, re-channel and trim/pad ``est`` (2-D) to the target, warning each time."""
    if sr_est != sr_target:
        est = _resample(est, sr_est, sr_target)
        _warn(f"{label}: resampled from {sr_est} Hz to {sr_target} Hz", messages, stacklevel=4)
    if n_channels is not None and est.shape[0] != n_channels:
        c = est.shape[0]
        if c == 1:
            est = np.repeat(est, n_channels, axis=0)
            how = f"mono copied to all {n_channels} channels"
        else:
            est = np.repeat(est.mean(axis=0, keepdims=True), n_channels, axis=0)
            how = (
                "downmixed to mono"
                if n_channels == 1
                else (f"downmixed to mono and copied to {n_channels} channels")
            )
        _warn(
            f"{label}: has {c} channel(s), the reference {n_channels}; {how}",
            messages,
            stacklevel=4,
        )
    n = est.shape[1]
    if n != n_samples:
        if n > n_samples:
            est = est[:, :n_samples]
            how = f"trimmed to {n_samples} samples"
        else:
            est = np.pad(est, ((0, 0), (0, n_samples - n)))
            how = f"zero-padded to {n_samples} samples"
        _warn(f"{label}: has {n} samples, the reference {n_samples}; {how}", messages, stacklevel=4)
    return est


def reconcile(
    reference, estimate, sr_ref: int, sr_est: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Make an estimate comparable with its reference, saying what was changed.

    In this order: the estimate is resampled to the reference's rate (soxr HQ);
    its channels are made to match (mono is copied to every channel, anything
    else is downmixed to mono, then copied if the reference has several); it is
    trimmed or zero-padded at the end to the reference's length. Every change
    emits an :class:`EvaluationWarning` and is listed in the returned messages.

    Parameters
    ----------
    reference : np.ndarray [shape=(n_channels, n_samples) or (n_samples,)]
        Left as it is (a 1-D array is returned as one channel).
    estimate : np.ndarray [shape=(n_channels_est, n_samples_est) or (n_samples_est,)]
        Adapted to ``reference``.
    sr_ref, sr_est : int
        Sample rates of ``reference`` and ``estimate`` in Hz.

    Returns
    -------
    reference : np.ndarray [shape=(n_channels, n_samples)]
        A copy of the reference.
    estimate : np.ndarray [shape=(n_channels, n_samples)]
        The adapted estimate (a copy, float64 if it was resampled).
    messages : list of str
        One line per change; empty when the two already matched.

    Raises
    ------
    ParameterError
        For bad arrays or rates.
    """
    ref = _check_signal(reference, "reference")
    est = _check_signal(estimate, "estimate")
    sr_ref = _check_rate(sr_ref, "sr_ref")
    sr_est = _check_rate(sr_est, "sr_est")
    messages: list[str] = []
    est = _fit_to(
        est,
        n_samples=ref.shape[1],
        n_channels=ref.shape[0],
        sr_target=sr_ref,
        sr_est=sr_est,
        label="estimate",
        messages=messages,
    )
    return np.array(ref, copy=True), np.array(est, copy=True), messages


# --------------------------------------------------------------------------- results


def _fmt_csv(x: float) -> str:
    return repr(float(x))


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class StemScore:
    """The scores of one estimate against its matched reference.

    Attributes
    ----------
    name : str or None
        The estimate's name (None for a reference that no estimate matched).
    reference : str or None
        The matched reference's name (None for an unmatched estimate).
    sdr, sir, sar : float
        BSS Eval v3 in dB (:mod:`nmfsep.bsseval`), NaN when undefined.
    si_sdr : float
        Scale-invariant SDR in dB.
    si_sdri : float
        SI-SDR improvement over the mixture in dB; NaN without a mixture.
    status : str
        ``"ok"``, ``"silent reference"``, ``"silent estimate"``, ``"no estimate"``
        or ``"unmatched"``.
    isr : float
        Source image to spatial distortion ratio in dB (``images=True`` only; NaN
        otherwise): how well the stem keeps its reference's stereo image.
    """

    name: str | None
    reference: str | None
    sdr: float = math.nan
    sir: float = math.nan
    sar: float = math.nan
    si_sdr: float = math.nan
    si_sdri: float = math.nan
    status: str = "ok"
    isr: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """Return the scores as JSON types (NaN and ±inf become None; ``isr`` if set)."""
        d: dict[str, Any] = {"name": self.name, "reference": self.reference}
        d.update({m: _json_float(getattr(self, m)) for m in METRICS})
        d["status"] = self.status
        if not math.isnan(self.isr):
            d["isr"] = _json_float(self.isr)
        return d


_CSV_FIELDS = ("name", "reference", *METRICS, "status")


@dataclass(frozen=True)
class EvaluationResult:
    """Scores of a separation, one row per estimate, with means.

    Attributes
    ----------
    stems : tuple of StemScore
        One per estimate (in the order given), then one per reference that no
        estimate matched.
    match : {"name", "permutation"}
        How estimates were matched to references.
    sr : int
        Sample rate the metrics were computed at (the references').
    n_samples : int
        Length of the evaluated signals.
    warnings : tuple of str
        Every adaptation made to the inputs and every undefined metric.
    oracle : EvaluationResult or None
        The scores of the oracle-mask separation, when asked for.
    oracle_kind : str or None
        ``"irm"``, ``"wiener"`` or ``"ibm"`` when ``oracle`` is set.
    downmix : str
        How channels were handled: ``"mono"`` (the mean of the channels) or
        ``"images"`` (SDR/ISR/SIR/SAR of the multichannel source images; SI-SDR
        still on mono downmixes).
    framewise : float or None
        Seconds per window when SDR/SIR/SAR are framewise medians; None: whole signals.
    """

    stems: tuple[StemScore, ...]
    match: str
    sr: int
    n_samples: int
    warnings: tuple[str, ...] = ()
    oracle: EvaluationResult | None = None
    oracle_kind: str | None = None
    downmix: str = "mono"
    framewise: float | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics of this result: :data:`METRICS`, or :data:`IMAGE_METRICS`."""
        return IMAGE_METRICS if self.downmix == "images" else METRICS

    @property
    def means(self) -> dict[str, float]:
        """Mean of each metric over the stems where it is finite (NaN if none)."""
        out = {}
        for m in self.metrics:
            vals = [getattr(s, m) for s in self.stems if math.isfinite(getattr(s, m))]
            out[m] = float(np.mean(vals)) if vals else math.nan
        return out

    def __getitem__(self, name: str) -> StemScore:
        """Return the row of the estimate called ``name``."""
        for s in self.stems:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return everything as JSON types (NaN and ±inf become None).

        Returns
        -------
        dict
            Keys ``match``, ``sr``, ``n_samples``, ``downmix``, ``metrics`` (a
            description), ``framewise``, ``stems`` (list of per-stem dicts), ``mean``,
            ``warnings``, ``oracle_kind`` and ``oracle`` (a nested dict or None).
            :meth:`from_dict` rebuilds an equal result.
        """
        return {
            "match": self.match,
            "sr": int(self.sr),
            "n_samples": int(self.n_samples),
            "downmix": self.downmix,
            "metrics": "BSS Eval v3 (bss_eval_sources, 512-tap filters) and SI-SDR, dB"
            + ("" if self.framewise is None else
               f"; SDR/SIR/SAR: medians over {self.framewise:g} s windows"),
            "framewise": self.framewise,
            "stems": [s.to_dict() for s in self.stems],
            "mean": {m: _json_float(v) for m, v in self.means.items()},
            "warnings": list(self.warnings),
            "oracle_kind": self.oracle_kind,
            "oracle": None if self.oracle is None else self.oracle.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvaluationResult:
        """Rebuild a result from :meth:`to_dict` (None becomes NaN)."""
        try:
            stems = tuple(
                StemScore(
                    name=s["name"],
                    reference=s["reference"],
                    status=s["status"],
                    isr=math.nan if s.get("isr") is None else float(s["isr"]),
                    **{m: math.nan if s[m] is None else float(s[m]) for m in METRICS},
                )
                for s in d["stems"]
            )
            return cls(
                stems=stems,
                match=d["match"],
                sr=int(d["sr"]),
                n_samples=int(d["n_samples"]),
                warnings=tuple(d.get("warnings", ())),
                oracle=None if d.get("oracle") is None else cls.from_dict(d["oracle"]),
                oracle_kind=d.get("oracle_kind"),
                downmix=d.get("downmix", "mono"),
                framewise=None if d.get("framewise") is None else float(d["framewise"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(f"not an evaluation result dictionary: {exc!r}") from exc

    def to_csv(self, path_or_file: str | os.PathLike[str] | TextIO) -> None:
        """Write one row per stem (no mean row) as CSV.

        Columns ``name, reference, sdr, sir, sar, si_sdr, si_sdri, status``; numbers
        are written in full precision (``repr``), undefined ones as ``nan``; a
        missing name is an empty field. The oracle scores are not included.

        Parameters
        ----------
        path_or_file : str, os.PathLike or text file
            A path is written atomically (:func:`nmfsep.io.atomic_output`; an existing
            file is replaced); an open text file is written to and left open.

        Raises
        ------
        OutputError
            If the path is a folder or cannot be written.
        """
        if hasattr(path_or_file, "write"):
            self._write_csv(path_or_file)  # type: ignore[arg-type]
            return
        from nmfsep.io import atomic_output

        p = Path(path_or_file)
        buf = _stdio.StringIO()
        self._write_csv(buf)
        with atomic_output(p, force=True, example="scores.csv", hint="choose another path") as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                f.write(buf.getvalue())

    def _write_csv(self, f: TextIO) -> None:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_CSV_FIELDS)
        for s in self.stems:
            writer.writerow(
                [
                    s.name or "",
                    s.reference or "",
                    *(_fmt_csv(getattr(s, m)) for m in METRICS),
                    s.status,
                ]
            )

    def format_table(self) -> str:
        """Return a fixed-width text table of the scores (and of the oracle, if any).

        Every line of a table block has the same width; values are in dB with two
        decimals, ``-`` where undefined.
        """
        seconds = self.n_samples / self.sr
        title = (
            f"BSS Eval v3 and SI-SDR in dB, "
            f"{'source images' if self.downmix == 'images' else 'mono downmix'}, {self.sr} Hz, "
            f"{seconds:.2f} s, matched by {self.match}"
            + ("" if self.framewise is None else
               f"; SDR/SIR/SAR: medians over {self.framewise:g} s windows")
        )
        parts = [title, _table(self.stems, self.means, self.metrics)]
        if self.oracle is not None:
            kind = {"irm": "IRM", "wiener": "Wiener", "ibm": "IBM"}.get(
                self.oracle_kind or "", str(self.oracle_kind)
            )
            parts += [
                "",
                f"Oracle ceiling ({kind} mask, same STFT):",
                _table(self.oracle.stems, self.oracle.means),
            ]
        return "\n".join(parts)


def _num(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.2f}"


def _table(stems: Sequence[StemScore], means: Mapping[str, float],
           metrics: Sequence[str] = METRICS) -> str:
    header = ["estimate", "reference", *(METRIC_LABELS[m] for m in metrics), "note"]
    rows = [
        [
            s.name or "-",
            s.reference or "-",
            *(_num(getattr(s, m)) for m in metrics),
            "" if s.status == "ok" else s.status,
        ]
        for s in stems
    ]
    rows.append(["mean", "", *(_num(means[m]) for m in metrics), ""])
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
        cells += [r[c].rjust(widths[c]) for c in range(2, 2 + len(metrics))]
        cells.append(r[-1].ljust(widths[-1]))
        lines.append("  ".join(cells))
    rule = "-" * len(lines[0])
    return "\n".join([lines[0], rule, *lines[1:-1], rule, lines[-1]])


# --------------------------------------------------------------------------- evaluation


def _check_named(d: object, what: str) -> dict[str, np.ndarray]:
    if not isinstance(d, Mapping) or len(d) == 0:
        raise ParameterError(f"{what} must be a non-empty mapping of name -> audio array")
    out = {}
    for name, y in d.items():
        if not isinstance(name, str) or not name:
            raise ParameterError(f"{what} names must be non-empty strings, got {name!r}")
        out[name] = _check_signal(y, f"{what[:-1]} {name!r}")
    return out


def evaluate_separation(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    *,
    sr: int,
    mixture: np.ndarray | None = None,
    match: Literal["name", "permutation"] = "name",
    sr_estimates: int | None = None,
    sr_mixture: int | None = None,
    oracle: OracleKind | None = None,
    config=None,
    framewise: float | None = None,
    images: bool | None = None,
) -> EvaluationResult:
    """Score separated stems against the true sources.

    Parameters
    ----------
    references : Mapping[str, np.ndarray [shape=(n_channels, n_samples) or (n_samples,)]]
        The true sources by name, all at ``sr``. References of different lengths
        are zero-padded to the longest (with a warning).
    estimates : Mapping[str, np.ndarray [shape=(n_channels, n_samples) or (n_samples,)]]
        The separated stems by name, at ``sr_estimates``. Each is adapted to the
        references with the rules of :func:`reconcile` (with a warning per change).
    sr : int
        Sample rate of the references in Hz; the metrics are computed at it.
    mixture : np.ndarray [shape=(n_channels, n_samples) or (n_samples,)], optional
        The mixture that was separated, for SI-SDRi (and the oracle).
    match : {"name", "permutation"}, default="name"
        ``"name"``: estimate ``x`` is scored against reference ``x``; the two sets
        of names must be equal. ``"permutation"``: the assignment that maximises
        the total SDR (for blind separations; see :func:`bss_eval`); the counts
        may then differ.
    sr_estimates, sr_mixture : int, optional
        Sample rates of the estimates and of the mixture (default ``sr``).
    oracle : {"irm", "wiener", "ibm"}, optional
        Also separate the mixture (or, without one, the sum of the references)
        with oracle masks computed from the references (:func:`oracle_separation`)
        and score it; the result is in ``.oracle``. All references need the same
        number of channels.
    config : STFTConfig, optional
        STFT of the oracle; default ``STFTConfig.for_sample_rate(sr)``, as
        :func:`nmfsep.separate` uses. Pass the settings of your separation.
    framewise : float, optional
        Seconds per window: SDR, SIR and SAR become the medians over successive
        windows of that length (museval/SiSEC style, e.g. 1.0), ignoring windows
        where a reference or the estimate is silent; SI-SDR stays whole-signal.
    images : bool or None, default=None
        Score the multichannel source images (``bss_eval_images``: SDR, ISR, SIR,
        SAR; stereo stems keep or lose their image, as SiSEC / museval judge
        stereo separation) instead of mono downmixes; matching still uses the
        downmixes. All references need the same number of channels. Not with
        ``framewise``. None: images when every reference has the same number of
        channels, more than one, and ``framewise`` is None; else mono downmixes.

    Returns
    -------
    EvaluationResult
        One row per estimate (plus one per unmatched reference), means, warnings.

    Raises
    ------
    ParameterError
        For bad arrays or rates, an unknown ``match`` or ``oracle``, or (``match=
        "name"``) names that do not pair up; the message lists both sets of names.

    Warns
    -----
    EvaluationWarning
        For every adaptation of the inputs and every undefined metric (silent or
        unmatched stems); the same lines are in ``result.warnings``.

    Notes
    -----
    Without ``images`` the metrics are computed on mono downmixes (see the module
    documentation).
    """
    sr, sr_est, sr_mix, window = _checked_options(match, oracle, sr, sr_estimates, sr_mixture,
                                                  framewise)
    refs = _check_named(references, "references")
    ests = _check_named(estimates, "estimates")
    messages: list[str] = []

    ref_names = list(refs)
    est_names = list(ests)
    if match == "name" and set(ref_names) != set(est_names):
        raise _names_disagree(ref_names, est_names)
    n_samples = _pad_references(refs, messages)
    channels = {y.shape[0] for y in refs.values()}
    common_channels = channels.pop() if len(channels) == 1 else None
    stereo = framewise is None and (common_channels or 1) > 1  # the default of images=None
    images = stereo if images is None else images
    for name in est_names:
        target_ch = refs[name].shape[0] if match == "name" else common_channels
        ests[name] = _fit_to(
            ests[name],
            n_samples=n_samples,
            n_channels=target_ch,
            sr_target=sr,
            sr_est=sr_est,
            label=f"estimate {name!r}",
            messages=messages,
        )
    mix = None
    if mixture is not None:
        mix = _fit_to(
            _check_signal(mixture, "mixture"),
            n_samples=n_samples,
            n_channels=common_channels,
            sr_target=sr,
            sr_est=sr_mix,
            label="mixture",
            messages=messages,
        )

    order = ref_names if match == "name" else est_names
    R = np.stack([_mono(refs[n]) for n in ref_names])
    E = np.stack([_mono(ests[n]) for n in order])
    scores = _bss_eval_recorded(R, E, match, ref_names, order, messages, window)
    stems = _stem_scores(scores, R, E, ref_names, est_names, order,
                         None if mix is None else _mono(mix))
    if images:
        stems = _image_scores(stems, refs, ests, common_channels, window)
    oracle_result = None
    if oracle is not None:
        oracle_result = _oracle_result(refs, mix, common_channels, config, oracle, sr)
    return EvaluationResult(
        stems=tuple(stems),
        match=match,
        sr=sr,
        n_samples=n_samples,
        warnings=tuple(messages),
        oracle=oracle_result,
        oracle_kind=oracle,
        framewise=None if framewise is None else float(framewise),
        downmix="images" if images else "mono",
    )


def _image_scores(stems: list[StemScore], refs: dict[str, np.ndarray],
                  ests: dict[str, np.ndarray], channels: int | None,
                  window: int | None) -> list[StemScore]:
    """Replace SDR/SIR/SAR of every scored stem by ``bss_eval_images``' and add ISR."""
    if channels is None or window is not None:
        what = "references with one channel count" if channels is None else "no framewise"
        raise fail("images", f"used with {what}", True)
    live = [n for n, y in refs.items() if np.any(y != 0)]
    if not live:
        return stems
    bss = _quietly(BSSEval, np.stack([refs[n] for n in live]))
    out = []
    for s in stems:
        if s.status == "ok" and s.name is not None and s.reference in live:
            sdr, isr, sir, sar = _quietly(bss.image_scores, ests[s.name], live.index(s.reference))
            s = replace(s, sdr=sdr, isr=isr, sir=sir, sar=sar)
        out.append(s)
    return out


def _checked_options(
    match: object, oracle: object, sr: object, sr_estimates: object, sr_mixture: object,
    framewise: object,
) -> tuple[int, int, int, int | None]:
    """Check :func:`evaluate_separation`'s options; return the three rates and the window."""
    check_choice(match, "match", ("name", "permutation"))
    if oracle is not None and oracle not in ORACLE_KINDS:
        raise fail("oracle", f"one of {sorted(ORACLE_KINDS)} or None", oracle)
    sr = _check_rate(sr, "sr")
    window = None if framewise is None else _window(framewise, sr)
    sr_est = sr if sr_estimates is None else _check_rate(sr_estimates, "sr_estimates")
    sr_mix = sr if sr_mixture is None else _check_rate(sr_mixture, "sr_mixture")
    return sr, sr_est, sr_mix, window


def _window(framewise: object, sr: int) -> int:
    """Return the framewise window in samples: at least twice the BSS Eval filter."""
    seconds = check_real(framewise, "framewise", strict=True)
    window = int(round(seconds * sr))
    if window < 2 * FILTER_LENGTH:
        raise fail("framewise", f"at least {2 * FILTER_LENGTH / sr:.3g} s (1024 samples: BSS "
                   "Eval's 512-tap filters need them)", framewise)
    return window


def _names_disagree(ref_names: list[str], est_names: list[str]) -> ParameterError:
    """Return the error for ``match="name"`` when the two sets of names differ."""
    only_est = [n for n in est_names if n not in ref_names]
    only_ref = [n for n in ref_names if n not in est_names]
    return ParameterError(
        f"estimates {only_est} have no reference of the same name and references "
        f"{only_ref} no estimate (references: {', '.join(ref_names)}; estimates: "
        f"{', '.join(est_names)}); rename them so the names agree or match by permutation"
    )


def _pad_references(refs: dict[str, np.ndarray], messages: list[str]) -> int:
    """Zero-pad every reference (in place in ``refs``) to the longest; return its length.

    ``refs`` maps names to ``(n_channels, n_samples)`` arrays; a warning is recorded in
    ``messages`` (and emitted at the caller of :func:`evaluate_separation`) per padding.
    """
    n_samples = max(y.shape[1] for y in refs.values())
    for name, y in refs.items():
        if y.shape[1] != n_samples:
            refs[name] = np.pad(y, ((0, 0), (0, n_samples - y.shape[1])))
            _warn(
                f"reference {name!r}: has {y.shape[1]} samples, the longest reference "
                f"{n_samples}; zero-padded",
                messages,
                stacklevel=4,
            )
    return n_samples


def _bss_eval_recorded(
    R: np.ndarray, E: np.ndarray, match: str, ref_names: list[str], order: list[str],
    messages: list[str], window: int | None = None,
) -> dict[str, Any]:
    """Run :func:`bss_eval` on mono sources, recording its warnings in ``messages``.

    Parameters
    ----------
    R : np.ndarray [shape=(n_sources, n_samples)]
        References, in the order of ``ref_names``.
    E : np.ndarray [shape=(n_estimates, n_samples)]
        Estimates, in the order of ``order``.
    match : {"name", "permutation"}
    ref_names, order : list of str
        Names of the rows of ``R`` and ``E``.
    messages : list of str
        Receives the EvaluationWarnings, which are emitted again at the caller of
        :func:`evaluate_separation`, as are other warnings.
    window : int or None
        Framewise window in samples (:func:`bss_eval`).

    Returns
    -------
    dict
        As :func:`bss_eval` returns it.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvaluationWarning)
        scores = bss_eval(
            R,
            E,
            permute=(match == "permutation"),
            names=[f"reference {n!r}" for n in ref_names],
            estimate_names=[f"estimate {n!r}" for n in order],
            window=window,
        )
    for w in caught:  # pass them on, recording ours in the result
        if issubclass(w.category, EvaluationWarning):
            _warn(str(w.message), messages, stacklevel=4)
        else:
            warnings.warn(w.message, w.category, stacklevel=3)
    return scores


def _stem_scores(
    scores: dict[str, Any],
    R: np.ndarray,
    E: np.ndarray,
    ref_names: list[str],
    est_names: list[str],
    order: list[str],
    mix_mono: np.ndarray | None,
) -> list[StemScore]:
    """Turn the scores of :func:`bss_eval` into one :class:`StemScore` per estimate.

    Parameters
    ----------
    scores : dict
        From :func:`bss_eval` on ``R`` and ``E``.
    R : np.ndarray [shape=(n_sources, n_samples)]
    E : np.ndarray [shape=(n_estimates, n_samples)]
        Mono references and estimates; rows named by ``ref_names`` and ``order``.
    ref_names, est_names, order : list of str
        Reference names, estimate names as given, estimate names in the rows of ``E``.
    mix_mono : np.ndarray [shape=(n_samples,)] or None
        The mono mixture, for SI-SDRi.

    Returns
    -------
    list of StemScore
        One per estimate in the order of ``est_names`` (``"unmatched"`` ones
        included), then one per reference that got no estimate.
    """
    by_estimate: dict[str, StemScore] = {}
    missing_refs: list[StemScore] = []
    for j, ref_name in enumerate(ref_names):
        i = int(scores["estimate"][j])
        status = scores["status"][j]
        if i < 0:
            missing_refs.append(StemScore(name=None, reference=ref_name, status=status))
            continue
        est_name = order[i]
        s_sisdr = s_sisdri = math.nan
        if status == "ok":
            s_sisdr = si_sdr(R[j], E[i])
            if mix_mono is not None:
                s_sisdri = si_sdr_improvement(R[j], E[i], mix_mono)
        by_estimate[est_name] = StemScore(
            name=est_name,
            reference=ref_name,
            sdr=float(scores["sdr"][j]),
            sir=float(scores["sir"][j]),
            sar=float(scores["sar"][j]),
            si_sdr=s_sisdr,
            si_sdri=s_sisdri,
            status=status,
        )
    return [
        by_estimate.get(n, StemScore(name=n, reference=None, status="unmatched")) for n in est_names
    ] + missing_refs


def _oracle_result(
    refs: dict[str, np.ndarray], mix: np.ndarray | None, common_channels: int | None,
    config: Any, oracle: OracleKind, sr: int,
) -> EvaluationResult:
    """Evaluate the oracle masks of kind ``oracle`` on the same references.

    ``mix`` is the fitted mixture (None: the sum of the references); the references
    must share their number of channels (``common_channels``).
    """
    if common_channels is None:
        raise ParameterError(
            "the oracle needs references with the same number of channels, got "
            f"{sorted(y.shape[0] for y in refs.values())}"
        )
    mix_oracle = mix if mix is not None else np.sum(list(refs.values()), axis=0)
    stems_oracle = oracle_separation(refs, mix_oracle, config, kind=oracle, sr=sr)
    return evaluate_separation(refs, stems_oracle, sr=sr, mixture=mix_oracle, match="name")


def _stem_names(paths: Sequence[str | os.PathLike[str]], what: str) -> list[str]:
    if isinstance(paths, str | bytes | os.PathLike) or len(paths) == 0:
        raise ParameterError(f"{what} must be a non-empty list of audio file paths")
    names = [Path(p).stem for p in paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ParameterError(
            f"several {what} are named {dup} (file names without extension must differ); "
            "rename or copy them"
        )
    return names


def evaluate_files(
    reference_paths: Sequence[str | os.PathLike[str]],
    estimate_paths: Sequence[str | os.PathLike[str]],
    *,
    mixture_path: str | os.PathLike[str] | None = None,
    match: Literal["name", "permutation"] = "name",
    oracle: OracleKind | None = None,
    config=None,
    framewise: float | None = None,
    images: bool | None = None,
) -> EvaluationResult:
    """Score separated audio files against reference files.

    The name of each stem is its file name without extension (``out/mix/piano.wav``
    is ``piano``). Everything is evaluated at the sample rate of the first
    reference; other files are resampled to it with a warning.

    Parameters
    ----------
    reference_paths : sequence of path
        The true sources (any format :func:`nmfsep.io.load` reads).
    estimate_paths : sequence of path
        The separated stems.
    mixture_path : path, optional
        The mixture, for SI-SDRi and the oracle.
    match : {"name", "permutation"}, default="name"
        See :func:`evaluate_separation`.
    oracle : {"irm", "wiener", "ibm"}, optional
        Also score an oracle-mask separation; see :func:`evaluate_separation`.
    config : STFTConfig, optional
        STFT of the oracle.
    framewise : float, optional
        Seconds per window of framewise SDR/SIR/SAR (see :func:`evaluate_separation`).
    images : bool or None, default=None
        Score the stems as multichannel source images, with ISR; None: for stereo
        (multichannel) references without ``framewise`` (see
        :func:`evaluate_separation`).

    Returns
    -------
    EvaluationResult

    Raises
    ------
    AudioFormatError
        For a file that cannot be read.
    ParameterError
        For duplicate stem names, names that do not pair up, or bad options.
    """
    ref_names = _stem_names(reference_paths, "reference_paths")
    est_names = _stem_names(estimate_paths, "estimate_paths")
    check_choice(match, "match", ("name", "permutation"))
    from nmfsep.io import check_input_file

    for p in (*reference_paths, *estimate_paths, *([mixture_path] if mixture_path else [])):
        check_input_file(p)  # a mistyped path is reported before its name is matched
    if match == "name" and set(ref_names) != set(est_names):
        only_est = [n for n in est_names if n not in ref_names]
        only_ref = [n for n in ref_names if n not in est_names]
        raise ParameterError(
            f"estimate files {only_est} have no reference file of the same name and reference "
            f"files {only_ref} no estimate (references: {', '.join(ref_names)}; estimates: "
            f"{', '.join(est_names)}); rename them so the names agree or use "
            "match='permutation' (--match permutation)"
        )
    from nmfsep.io import load

    messages: list[str] = []
    refs: dict[str, np.ndarray] = {}
    sr = None
    for name, p in zip(ref_names, reference_paths, strict=True):
        y, sr_file = load(p)
        if sr is None:
            sr = sr_file
        elif sr_file != sr:
            y = _resample(y, sr_file, sr)
            _warn(f"reference {os.fspath(p)}: resampled from {sr_file} Hz to {sr} Hz", messages)
        refs[name] = y
    assert sr is not None
    ests: dict[str, np.ndarray] = {}
    for name, p in zip(est_names, estimate_paths, strict=True):
        y, sr_file = load(p)
        if sr_file != sr:
            y = _resample(y, sr_file, sr)
            _warn(f"estimate {os.fspath(p)}: resampled from {sr_file} Hz to {sr} Hz", messages)
        ests[name] = y
    mix = None
    if mixture_path is not None:
        mix, sr_file = load(mixture_path)
        if sr_file != sr:
            mix = _resample(mix, sr_file, sr)
            _warn(
                f"mixture {os.fspath(mixture_path)}: resampled from {sr_file} Hz to {sr} Hz",
                messages,
            )
    result = evaluate_separation(refs, ests, sr=sr, mixture=mix, match=match, oracle=oracle,
                                 config=config, framewise=framewise, images=images)
    return replace(result, warnings=tuple(messages) + result.warnings)


# --------------------------------------------------------------------------- oracles


def _check_kind_power(kind: str, power: float | None) -> tuple[OracleKind, float]:
    if not is_choice(kind, tuple(ORACLE_KINDS)):
        raise fail("kind", f"one of {sorted(ORACLE_KINDS)}", kind)
    if power is None:
        return kind, ORACLE_KINDS[kind] or 1.0
    return kind, check_real(power, "power", 0.0, strict=True)


def oracle_masks(
    references,
    config,
    *,
    kind: OracleKind = "irm",
    power: float | None = None,
) -> np.ndarray:
    """Oracle masks computed from the true sources: the ceiling of mask-based separation.

    With ``|S_s|`` the magnitude spectrogram of source ``s`` (root mean square
    over channels, :func:`nmfsep.spectral.model_spectrogram` with ``power=1``):

    * ``"irm"``: ideal ratio mask ``|S_s| / Σ_j |S_j|`` (exponent 1, magnitudes);
    * ``"wiener"``: oracle Wiener mask ``|S_s|² / Σ_j |S_j|²`` (exponent 2, powers);
    * ``"ibm"``: ideal binary mask, each bin to the loudest source.

    These are exactly nmfsep's masks (:func:`nmfsep.masks.masks`) fed with the
    true spectrograms instead of NMF models, so with the same STFT they bound
    what any nmfsep separation with that mask can reach.

    Parameters
    ----------
    references : np.ndarray [shape=(n_sources, n_channels, n_samples) or (n_sources, n_samples)]
        The true sources.
    config : STFTConfig
        The STFT settings of the separation being compared.
    kind : {"irm", "wiener", "ibm"}, default="irm"
        The mask.
    power : float, optional
        Override the exponent of a soft mask (α-Wiener); default 1 for ``"irm"``
        and 2 for ``"wiener"``. Ignored by ``"ibm"``.

    Returns
    -------
    M : np.ndarray [shape=(n_sources, n_frames, n_bins)], float32
        In [0, 1], summing to one over the sources in every bin (bins silent in
        every source are shared equally).

    Raises
    ------
    ParameterError
        For bad arrays, an unknown ``kind``, a bad ``power`` or ``config``.
    """
    from nmfsep.masks import masks
    from nmfsep.spectral import model_spectrogram, stft

    kind, p = _check_kind_power(kind, power)
    refs = _check_sources(references, "references")
    if refs.dtype not in (np.float32, np.float64):
        refs = refs.astype(np.float32)
    models = np.stack([model_spectrogram(stft(r, config), power=1.0) for r in refs])
    if kind == "ibm":
        return masks(models, kind="binary")
    return masks(models, kind="soft", power=p)


def oracle_separation(
    references,
    mixture=None,
    config=None,
    *,
    kind: OracleKind = "irm",
    power: float | None = None,
    sr: int | None = None,
) -> dict[str, np.ndarray]:
    """Separate a mixture with oracle masks, as nmfsep would with perfect models.

    The mixture's STFT is multiplied by :func:`oracle_masks` on every channel
    (mixture phase) and inverted, so the stems add back to the mixture.

    Parameters
    ----------
    references : Mapping[str, np.ndarray] or np.ndarray [shape=(n_sources, n_channels, n_samples)]
        The true sources (all the same shape). An array gives stems named
        ``source_1``, ``source_2`` ...
    mixture : np.ndarray [shape=(n_channels, n_samples)], optional
        The mixture, same shape as each reference; default the sum of the
        references.
    config : STFTConfig, optional
        STFT settings (use those of the separation being compared); default
        ``STFTConfig.for_sample_rate(sr)``.
    kind : {"irm", "wiener", "ibm"}, default="irm"
        See :func:`oracle_masks`.
    power : float, optional
        See :func:`oracle_masks`.
    sr : int, optional
        Sample rate in Hz; needed only when ``config`` is None.

    Returns
    -------
    dict of str to np.ndarray [shape=(n_channels, n_samples)], float32
        One stem per reference, in order.

    Raises
    ------
    ParameterError
        For bad arrays, shapes that differ, or neither ``config`` nor ``sr``.
    """
    from nmfsep.masks import apply_masks
    from nmfsep.spectral import STFTConfig, istft, stft

    if isinstance(references, Mapping):
        if len(references) == 0:
            raise ParameterError("references must hold at least one source")
        names = list(references)
        arrays = [_check_signal(v, f"reference {k!r}") for k, v in references.items()]
        if len({a.shape for a in arrays}) != 1:
            raise ParameterError(
                "the references must all have the same shape (n_channels, n_samples), got "
                f"{[a.shape for a in arrays]}"
            )
        refs = np.stack(arrays)
    else:
        refs = _check_sources(references, "references")
        names = [f"source_{i + 1}" for i in range(refs.shape[0])]
    if refs.dtype not in (np.float32, np.float64):
        refs = refs.astype(np.float32)
    if config is None:
        if sr is None:
            raise ParameterError("give the STFTConfig of your separation as config, or sr")
        config = STFTConfig.for_sample_rate(_check_rate(sr, "sr"))
    if mixture is None:
        mix = refs.sum(axis=0)
    else:
        mix = _check_signal(mixture, "mixture")
        if mix.shape != refs.shape[1:]:
            raise ParameterError(
                f"mixture has shape {mix.shape} but the references {refs.shape[1:]}; "
                "reconcile them first"
            )
        if mix.dtype not in (np.float32, np.float64):
            mix = mix.astype(np.float32)
    M = oracle_masks(refs, config, kind=kind, power=power)
    X = stft(mix, config)
    S = apply_masks(X, M)
    n = mix.shape[-1]
    return {name: istft(S[g], config, n) for g, name in enumerate(names)}
