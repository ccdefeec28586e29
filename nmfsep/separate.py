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
(:func:`stem_blocks`); :func:`nmfsep.files.separate_file` writes every block of
every stem as it is computed, so it never holds all masks or all stems (its peak memory is the
mixture, its STFT and the factorization's).

:func:`separate` works on arrays; :func:`nmfsep.files.separate_file` is the file
boundary (load, separate, write every stem or none). What to run (mode, stem names,
settings) is decided in :mod:`nmfsep.plan`.
"""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep._checks import MAX_CHANNELS, check_audio, check_rate, peak_problem
from nmfsep.adaptation import atom_plan, check_adaptation
from nmfsep.auto_sources import plan_for
from nmfsep.context import expand_factors, expand_indices, stack_frames
from nmfsep.dictionary import Dictionary, default_power, fit_mismatch
from nmfsep.divergence import beta_loss_to_float
from nmfsep.exceptions import AudioFormatError, DictionaryError, ParameterError
from nmfsep.grouping import GroupingMethod, components_groups, group_components
from nmfsep.io import resample
from nmfsep.masks import ChannelMasks, GroupMasks, MaskKind, group_models, masks
from nmfsep.model import Factorization, save_model
from nmfsep.nmf import NMFResult, nmf, starting_factors
from nmfsep.ntf import (
    NTFResult,
    gain_positions,
    group_positions,
    initial_gains,
    ntf,
    pan_spread,
)
from nmfsep.ntf_coarse import ntf_coarse_to_fine
from nmfsep.percussive import factorize_percussive
from nmfsep.plan import (
    BLIND_COARSE_ITER,
    BLIND_FINE_ITER,
    BLIND_JOINT_GAINS,
    BLIND_POOL_FRAMES,
    DEFAULT_RELEARN,
    GAIN_INIT_BLIND,
    GAIN_INIT_SUPERVISED,
    HARMONIC_CHOICE_SECONDS,
    HARMONIC_FIT_RATIO,
    MIN_PAN_SPREAD,
    RESIDUAL,
    SEMI_COARSE_ITER,
    SEMI_FINE_ITER,
    SEMI_JOINT_GAINS,
    SEMI_POOL_FRAMES,
    SUPERVISED_JOINT_GAINS,
    TIE_GAINS,
    Plan,
    SeparationParams,
    fallback_groups,
    fit_frames,
    load_dictionaries,
    make_plan,
    plain_plan,
    settings_record,
)
from nmfsep.relearn import check_relearn, relearned, should_relearn, stem_excerpts
from nmfsep.spatial_wiener import MAX_WIENER_SOURCES, SpatialWiener, real_masks
from nmfsep.spectral import (
    OverlapAdd,
    STFTConfig,
    block_frames,
    fft_frequencies,
    frame_times,
    max_magnitude,
    model_spectrogram,
)
from nmfsep.spectral import stft as compute_stft

__all__ = ["SeparationResult", "separate", "analyse", "Analysis", "stem_blocks",
           "check_mixture", "short_warning", "spatial_filter", "filter_iterations",
           "analysis_grids", "factorize_gains", "Grids"]

#: Blocks of stems computed ahead of the one being written (see :func:`stem_blocks`).
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
        ``[0, 1]`` and summing to one over the groups; with gains (``Q`` not None)
        every channel has its own, shape ``(n_groups, n_channels, n_frames, n_bins)``.
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
    Q : np.ndarray [shape=(n_channels, k)], float32, or None
        With ``spatial="gains"``: the gain of every component (column of ``W``) in
        every channel, each column summing to one (:mod:`nmfsep.ntf`); None for
        one model of the channels combined.
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
    Q: np.ndarray | None = None

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
        """Save the factorization (not the audio): :func:`nmfsep.model.save_model`.

        Read it back with :func:`nmfsep.model.load_model`; ``force`` overwrites ``path``.
        """
        return save_model(self, path, force=force)




# ---------------------------------------------------------------------- helpers


def check_mixture(y: object, sr: object) -> tuple[np.ndarray, int]:
    """Return the mixture and its rate, checked (:func:`nmfsep._checks.check_audio`).

    Array-likes are taken through :func:`numpy.asarray`; 1-D audio is mono and comes
    back as ``(1, n_samples)``.

    Raises
    ------
    ParameterError
        For a wrong type, shape or rate; a shape with more than 8 channels and more
        channels than samples (or more than ``MAX_CHANNELS``), which is almost surely
        the transposed ``(n_samples, n_channels)`` layout.
    AudioFormatError
        If ``y`` holds NaN or Inf, or samples beyond ``MAX_SAMPLE`` (1e12) in magnitude.
    """
    if not isinstance(y, np.ndarray):
        try:
            y = np.asarray(y)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"y must be an array of audio samples ({exc})") from None
    if y.ndim == 1:
        y = y[np.newaxis]  # mono, librosa's convention; separate() gives 1-D stems back
    # more rows than columns is the transposed layout only for a long signal: a file
    # of 1 stereo sample is (2, 1)
    if y.ndim == 2 and y.shape[1] and y.shape[0] > min(max(y.shape[1], 8), MAX_CHANNELS):
        raise ParameterError(
            f"y has shape {y.shape}: {y.shape[0]} channels of {y.shape[1]} samples; nmfsep "
            f"takes (n_channels, n_samples) with at most {MAX_CHANNELS} channels: for "
            "soundfile's (n_samples, n_channels) layout pass y.T"
        )
    y = check_audio(y, finite=False)
    if not np.isfinite(y).all():
        raise AudioFormatError(
            "the mixture contains NaN or Inf samples; replace them (e.g. np.nan_to_num) first"
        )
    if (problem := peak_problem(y)) is not None:
        raise AudioFormatError(f"the mixture {problem}; scale it into about [-1, 1] first")
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


_Weights = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def _interp_weights(x_old: np.ndarray, x_new: np.ndarray) -> _Weights:
    """Left and right neighbours in ``x_old`` of every ``x_new`` and the right one's weight.

    The weight is None when ``x_old`` has one point (every new point takes it).
    """
    n = x_old.shape[0]
    if n == 1:
        zeros = np.zeros(x_new.shape[0], dtype=np.intp)
        return zeros, zeros, None
    i0 = np.clip(np.searchsorted(x_old, x_new, side="right") - 1, 0, n - 2)
    i1 = i0 + 1
    return i0, i1, np.clip((x_new - x_old[i0]) / (x_old[i1] - x_old[i0]), 0.0, 1.0)


def _interp_axis(M: np.ndarray, x_old: np.ndarray, x_new: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``M`` along ``axis``; outside ``x_old`` the edge value is kept."""
    i0, i1, w = _interp_weights(x_old, x_new)
    if w is None:
        return np.take(M, i0, axis=axis)
    shape = [1] * M.ndim
    shape[axis] = -1
    w = w.reshape(shape).astype(M.dtype)
    return np.take(M, i0, axis=axis) * (1 - w) + np.take(M, i1, axis=axis) * w


def _regrid_block(Mg: np.ndarray, f_a: np.ndarray, f_n: np.ndarray, time_weights: _Weights,
                  t0: int, t1: int) -> np.ndarray:
    """Native frames ``t0 .. t1 - 1`` of one group's mask ``Mg (T_a, F_a)``, float64.

    Over frequency, then over time, from the analysis frames those frames lie between:
    element by element the arithmetic of interpolating the whole mask.
    """
    i0, i1 = time_weights[0][t0:t1], time_weights[1][t0:t1]
    w = None if time_weights[2] is None else time_weights[2][t0:t1]
    lo, hi = int(i0.min()), int(i1.max()) + 1
    rows = _interp_axis(Mg[lo:hi].astype(np.float64), f_a, f_n, axis=1)
    if w is None:
        out = np.take(rows, i0 - lo, axis=0)
    else:
        w = w[:, None]
        out = np.take(rows, i0 - lo, axis=0) * (1 - w) + np.take(rows, i1 - lo, axis=0) * w
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _picks(weights: _Weights) -> np.ndarray | None:
    """Return the old point each new point takes if interpolation only picks, else None."""
    i0, i1, w = weights
    if w is None:
        return i0
    if not np.all((w == 0) | (w == 1)):
        return None
    return np.where(w == 1, i1, i0)


def _regrid_masks(
    M: np.ndarray,
    sr_a: int,
    stft_a: STFTConfig,
    sr_n: int,
    stft_n: STFTConfig,
    n_frames_n: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Bring masks ``(G, T_a, F_a)`` from the analysis grid to the native STFT grid.

    Linear interpolation over frequency (bins above the analysis Nyquist take the top
    bin's mask) and over frame time (frames beyond the ends take the edge frame's),
    then renormalisation so that the masks sum to one. A block of native frames at a
    time (about 8 MB of float64 per group), every group's block computed once. Where
    the grids meet (every native frame and bin lies on an analysis one, or beyond the
    last), the values are picked in float32 instead: the same masks to rounding.
    ``out``: a float32 array ``(G, n_frames_n, F_n)`` (or a view) to write into.
    """
    f_a = fft_frequencies(sr_a, stft_a)
    f_n = fft_frequencies(sr_n, stft_n)
    time_weights = _interp_weights(frame_times(M.shape[1], sr_a, stft_a),
                                   frame_times(n_frames_n, sr_n, stft_n))
    if out is None:
        out = np.empty((M.shape[0], n_frames_n, f_n.shape[0]), dtype=np.float32)
    step = max(1, (1 << 20) // f_n.shape[0])
    t_pick, f_pick = _picks(time_weights), _picks(_interp_weights(f_a, f_n))
    if t_pick is not None and f_pick is not None:
        # the grids meet (e.g. 22.05 kHz analysis of a 44.1 kHz file, same durations):
        # every native value is one analysis value, so the masks are picked, not
        # blended, and still sum to one (float32 rounding), as the blend would give
        for t0 in range(0, n_frames_n, step):
            rows = t_pick[t0 : t0 + step]
            for g in range(M.shape[0]):
                out[g, t0 : t0 + len(rows)] = M[g][rows][:, f_pick]
        return out
    for t0 in range(0, n_frames_n, step):
        t1 = min(t0 + step, n_frames_n)
        blocks = [_regrid_block(M[g], f_a, f_n, time_weights, t0, t1) for g in range(M.shape[0])]
        total = np.zeros((t1 - t0, f_n.shape[0]), dtype=np.float64)
        for block in blocks:
            total += block
        np.copyto(total, 1.0, where=~(total > 0))
        for g, block in enumerate(blocks):
            out[g, t0:t1] = block / total
    return out


def stem_blocks(
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
        called for consecutive ranges from frame 0. The same masks go to every
        channel; masks of shape ``(n_groups, n_channels, t1 - t0, n_bins)`` give
        every channel its own (:class:`nmfsep.masks.ChannelMasks`).
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
        if M.ndim == 3:  # the same masks for every channel
            M = M[:, None]
        return ola.windowed(M * frames[None, :, t0:t1])

    # A worker thread computes the masks and inverse FFTs of the next blocks while this
    # one overlap-adds and the caller writes (numpy and soundfile release the GIL);
    # blocks are computed in order, so the result does not depend on the timing.
    step = block_frames(n_groups * n_channels * n_bins * X.itemsize)
    pending: collections.deque[Future[np.ndarray]] = collections.deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmfsep-stems") as pool:
        for t0 in range(0, ola.n_frames, step):
            pending.append(pool.submit(windowed, t0, min(t0 + step, ola.n_frames)))
            if len(pending) > _LOOKAHEAD:
                yield consistent(*ola.add(pending.popleft().result()))
        while pending:
            yield consistent(*ola.add(pending.popleft().result()))
    yield consistent(*ola.finish())



# ---------------------------------------------------------------------- separate


def separate(
    y: np.ndarray,
    sr: int,
    *,
    n_components: int | None = None,
    n_sources: int | Sequence[str] | None = None,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]] = (),
    n_free: int = 0,
    beta: str | float | None = None,
    power: float | None = None,
    stft: STFTConfig | None = None,
    mask: MaskKind = "soft",
    mask_power: float | None = None,
    grouping: GroupingMethod | None = None,
    solver: str = "mu",
    max_iter: int = 200,
    tol: float = 1e-4,
    alpha_W: float = 0.0,
    l1_ratio: float = 0.0,
    random_state: int | np.random.Generator | None = 0,
    callback: Callable[[int, float | None], None] | None = None,
    n_threads: int | None = None,
    adapt: float | None = None,
    free_per_source: int = 0,
    percussive: bool = False,
    spatial: str | None = None,
    harmonic: str = "auto",
    relearn: str = DEFAULT_RELEARN,
    wiener_iter: int | None = None,
) -> SeparationResult:
    """Separate a mixture into stems with spectrogram NMF and soft masks.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples) or (n_samples,)], float, finite
        The mixture at its native rate (at most ``MAX_CHANNELS`` = 64 channels, fewer
        than samples; 1-D is mono and gives 1-D stems; array-likes are converted).
        Never modified.
    sr : int
        Sample rate of ``y`` in Hz.
    n_components : int or None
        Blind mode: number of components k, ``1 <= k <= n_frames``. With
        ``n_sources`` only, ``8 * n_sources``, and ``12 * n_sources`` from three
        sources on without ``percussive`` (:func:`nmfsep.plan.components_per_source`).
    n_sources : int, sequence of str, "auto", or None
        Blind mode: group the k components into this many stems ``source_1`` ...
        (``1 <= n_sources <= k``); None gives one stem per component. Names instead
        (``["drums", "bass", "other"]``): the built-in dictionaries of the names that
        are built-ins, and ``n_free`` free atoms (8 when 0) for the one that is not.
        ``"auto"``: the number :func:`nmfsep.sources.suggest_sources` suggests for
        ``y`` (a mixture of at least 1 s), with ``percussive=True`` when it found drums;
        the settings' ``sources_auto`` records the suggestion
        (:mod:`nmfsep.auto_sources`).
    dictionaries : sequence of Dictionary, paths or built-in names
        Supervised mode: fixed atoms, one stem per source name (in order). All must
        share sample rate, STFT settings, power and β (:func:`nmfsep.dictionary.combine`).
        A string names a file if one exists, else a built-in (``"drums"``,
        :func:`nmfsep.builtins.builtin_names`).
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
        (:func:`nmfsep.plan.default_mask_power`).
    grouping : {"timbre", "kmeans", "activations", "combined", "register"} or None
        How blind components are grouped into ``n_sources`` stems (see
        :mod:`nmfsep.grouping`). None (default): "timbre", "kmeans" from three sources
        on (:data:`nmfsep.plan.MANY_SOURCES`), and "register" for the harmonic stems of
        ``percussive=True`` (:data:`nmfsep.percussive.DEFAULT_GROUPING`).
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
        NMF progress callback. With harmonic atoms to choose (``harmonic="auto"``) a
        run makes two or three fits; a callback with a ``phase(name)`` method hears of
        each before it starts (``"harmonic choice 1/2: plain atoms, first 30 s"``, ...,
        ``""`` for the final fit; with ``relearn``, ``"second pass: learning atoms from
        the first pass's stems"``, then ``"second pass"`` and the second pass's fits
        named so) and sees the iterations of all; one without it sees those of one fit
        only.
    n_threads : int or None
        Threads of the NMF (:func:`nmfsep.nmf.nmf`); None: every core. The result does
        not depend on it (bit for bit).
    adapt : float or None
        With dictionaries (Kullback-Leibler): let their atoms move towards the mixture
        under a penalty of this weight μ >= 0 that keeps them near the learned ones
        (``nmf(adapt=)``, :mod:`nmfsep._adapt`); 0 frees them, large values keep them
        close. None (default) keeps them fixed.
    free_per_source : int
        With dictionaries (Kullback-Leibler): add this many free atoms to every
        source's stem, started from copies of the source's atoms
        (:mod:`nmfsep.adaptation`).
    percussive : bool
        Blind mode with ``n_sources >= 2``: split the drums off first (median-filter
        harmonic-percussive separation, :mod:`nmfsep.percussive`), then group the
        harmonic components into ``n_sources - 1`` stems; the stems are
        ``source_1 ... source_{S-1}, drums``.
    harmonic : {"auto", "on", "off"}
        The dictionaries' harmonic atoms (``learn_dictionary(harmonic=)``): "auto" uses
        them only when every source has them and ``n_free`` is 0 (a source without
        them loses its notes to the others'), and then only when they fit the mixture
        much better than the plain atoms alone (both fits are run, on the first
        :data:`nmfsep.plan.HARMONIC_CHOICE_SECONDS` of a longer mixture; divergence ratio
        below :data:`nmfsep.plan.HARMONIC_FIT_RATIO`, recorded as the settings'
        ``harmonic_fit_ratio``); "on" whenever present, "off" never
        (:func:`nmfsep.plan.harmonic_in_use`).
    spatial : {"shared", "gains"} or None
        Model of multichannel input: ``"shared"``, one model of the channels combined
        and the same masks for every channel; ``"gains"``, the same atoms and
        activations with a gain per channel and component (:func:`nmfsep.ntf.ntf`,
        multiplicative updates whatever ``solver``), so every channel gets its own
        masks and every stem keeps its own stereo position. None:
        :data:`nmfsep.plan.DEFAULT_SPATIAL`. Mono input always uses the shared model.
    wiener_iter : int or None
        With the gains model: the stems come from a multichannel Wiener filter of the
        mixture's channels together, its spatial covariances started from the learned
        gains and refined by this many EM iterations (:mod:`nmfsep.spatial_wiener`;
        ``result.masks`` then hold each stem's share of the magnitude). 0 applies the
        per-channel masks instead; None: :data:`nmfsep.spatial_wiener.WIENER_ITER`. Runs
        with more than :data:`nmfsep.spatial_wiener.MAX_WIENER_SOURCES` stems keep the
        masks; ``settings["wiener_iter"]`` records what was applied.

    Returns
    -------
    SeparationResult
        Stems (each ``(n_channels, n_samples)`` float32, adding up to ``y``; 1-D when
        ``y`` is 1-D), masks,
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
    params = SeparationParams(
        beta=beta, power=power, stft=stft, mask=mask, mask_power=mask_power,
        grouping=grouping, solver=solver, max_iter=max_iter, tol=tol, alpha_W=alpha_W,
        l1_ratio=l1_ratio, random_state=random_state, adapt=adapt,
        free_per_source=free_per_source, spatial=spatial, relearn=relearn,
        wiener_iter=wiener_iter,
    )
    y_in = y
    y, sr = check_mixture(y, sr)
    one_d = np.ndim(y_in) == 1  # mono given 1-D: 1-D stems back (librosa's convention)
    plan = plan_for(y, sr, n_components=n_components, n_sources=n_sources,
                    dictionaries=load_dictionaries(dictionaries), n_free=n_free,
                    percussive=percussive, harmonic=harmonic, spatial=spatial)
    fit = analyse(y, sr, plan, params.validate(), callback=callback, n_threads=n_threads)
    names = list(fit.model.groups)
    n_frames = fit.X.shape[2]
    stems = [np.empty(y.shape, dtype=np.float32) for _ in names]
    if fit.full_masks is not None:
        M, masks_of = fit.full_masks, fit.masks
    else:
        # the masks of the result are the very blocks applied to the mixture
        per_channel = [] if fit.model.Q is None else [y.shape[0]]
        M = np.empty((len(names), *per_channel, n_frames, fit.X.shape[1]), dtype=np.float32)
        done = [0]

        def masks_of(t0: int, t1: int) -> np.ndarray:
            block = fit.masks(t0, t1)
            M[..., t0:t1, :] = real_masks(block)
            done[0] = t1
            return block

    for start, part in stem_blocks(fit.X, masks_of, y, fit.model.stft, len(names)):
        for stem, values in zip(stems, part, strict=True):
            stem[:, start : start + values.shape[-1]] = values
    if fit.full_masks is None and done[0] < n_frames:  # frames after the end of the audio
        M[..., done[0] :, :] = real_masks(fit.masks(done[0], n_frames))
    m = fit.model
    return SeparationResult(
        stems=dict(zip(names, [s[0] if one_d else s for s in stems], strict=True)),
        masks=M, W=m.W, H=m.H, groups=m.groups,
        sr=m.sr, stft=m.stft, settings=m.settings, n_iter=m.n_iter,
        loss_history=m.loss_history, converged=m.converged, warnings=m.warnings, Q=m.Q,
    )


@dataclass
class Analysis:
    """What :func:`separate` computes before the stems.

    Attributes
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)]
        The mixture, checked.
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        Its STFT at its own rate (``model.stft``).
    masks : callable(t0, t1) -> np.ndarray [shape=(n_groups, t1 - t0, n_bins)]
        The masks of frames ``t0 .. t1 - 1`` on that grid; with gains
        (``model.Q``), ``(n_groups, n_channels, t1 - t0, n_bins)``.
    full_masks : np.ndarray or None
        All masks, when they were computed at once (another analysis rate).
    model : Factorization
        The factorization, groups and settings.
    """

    y: np.ndarray
    X: np.ndarray
    masks: Callable[[int, int], np.ndarray]
    full_masks: np.ndarray | None
    model: Factorization


@dataclass(frozen=True)
class Grids:
    """The analysis settings of a run: β, power, context, rates and STFTs."""

    beta: float
    power: float
    context: int
    analysis_sr: int
    analysis_stft: STFTConfig
    native_stft: STFTConfig


def analysis_grids(plan: Plan, params: SeparationParams, sr: int) -> Grids:
    """Decide β, power, context and the analysis grid (the dictionaries' when given).

    Parameters
    ----------
    plan : Plan
    params : SeparationParams
        Validated settings (their β, power and STFT, when given).
    sr : int
        The mixture's rate in Hz.

    Returns
    -------
    Grids

    Raises
    ------
    DictionaryError
        If ``params`` set an STFT or power the dictionaries were not learned with.
    """
    combined = plan.dictionary
    if combined is None:
        beta = 1.0 if params.beta is None else beta_loss_to_float(params.beta, "beta")
        power = default_power(beta) if params.power is None else float(params.power)
        stft = STFTConfig.for_sample_rate(sr) if params.stft is None else params.stft
        return Grids(beta, power, 1, sr, stft, stft)
    beta = combined.beta if params.beta is None else beta_loss_to_float(params.beta, "beta")
    reason = fit_mismatch(combined, None, params.stft, params.power)
    if reason is not None:
        raise DictionaryError(reason)
    a_stft = combined.stft
    native = a_stft if sr == combined.sr else _scaled_stft(a_stft, sr / combined.sr)
    return Grids(beta, combined.power, combined.context_frames, combined.sr, a_stft, native)


def short_warning(n_samples: int, sr: int, n_fft: int, analysis_sr: int) -> str | None:
    """Say that a mixture is shorter than one STFT frame (separated, but barely), or None.

    Parameters
    ----------
    n_samples, sr : int
        The mixture's length (samples) and rate (Hz).
    n_fft, analysis_sr : int
        The analysis window (samples) and rate (Hz).

    Returns
    -------
    str or None
    """
    need = math.ceil(n_fft * sr / analysis_sr)
    if n_samples >= need:
        return None
    return (
        f"the mixture is {n_samples} samples long ({n_samples / sr * 1000:.3g} ms), shorter "
        f"than one STFT frame ({need} samples, {need / sr * 1000:.3g} ms at {sr} Hz): the "
        f"stems are little more than guesses; give at least {need} samples"
    )


def _spectrogram(X: np.ndarray, power: float, context: int,
                 per_channel: bool = False) -> np.ndarray | None:
    """Return V scaled to a peak of 1 then a mean of 1 (frames stacked), or None if silent.

    ``per_channel``: one spectrogram per channel, ``(n_channels, n_frames, n_cols)``.
    """
    peak = max_magnitude(X)
    if not peak > 0:
        return None
    if per_channel:
        V = np.empty((X.shape[0], X.shape[2], X.shape[1]), dtype=np.float32)
        for c in range(X.shape[0]):
            model_spectrogram(X[c : c + 1], power, scale=peak, out=V[c])
    else:
        V = model_spectrogram(X, power, scale=peak)
    mean = float(V.mean(dtype=np.float64))
    if not mean > 0 or not math.isfinite(mean):
        return None
    V /= np.float32(mean)  # our own array
    # dictionaries with temporal context: atoms span `context` frames, so the
    # mixture's frames are stacked the same way (nmfsep.context)
    return stack_frames(V, context)  # every channel's into one array


def _factorize(
    V: np.ndarray, plan: Plan, params: SeparationParams, grids: Grids,
    callback: Callable[[int, float | None], None] | None, n_threads: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, list[int]], Any]:
    """Factorize ``V`` and group its components; return W, H, Q, groups and the result.

    ``V`` of shape ``(n_channels, n_frames, n_cols)`` is factorized with a gain per
    channel and component (:func:`factorize_gains`), a 2-D ``V`` with :func:`nmf`
    (Q is then None), or with the drums split off first when ``plan.percussive``
    (:mod:`nmfsep.percussive`; always the shared model, so V is 2-D).
    """
    if plan.percussive:
        fit = factorize_percussive(
            V, plan.k, int(plan.n_sources or 0), sr=grids.analysis_sr,
            n_fft=grids.analysis_stft.n_fft, grouping=params.grouping_for(plan), beta=grids.beta,
            solver=params.solver, max_iter=params.max_iter, tol=params.tol,
            alpha_W=params.alpha_W, alpha_H=0.0, l1_ratio=params.l1_ratio,
            random_state=params.random_state, n_threads=n_threads, warn=False)
        return fit.W, fit.H, None, fit.groups, fit
    atoms = atom_plan(plan, params)  # fixed atoms unless adapted (then the shared model)
    Q = None
    result: NMFResult | NTFResult
    if V.ndim == 3:
        result = factorize_gains(V, plan, params, grids, callback)
        Q = np.asarray(result.Q, dtype=np.float32)
    else:
        result = nmf(
            V, atoms.k, beta=grids.beta, solver=params.solver, fixed_atoms=atoms.fixed_atoms,
            adapt=atoms.adapt, max_iter=params.max_iter, tol=params.tol,
            alpha_W=params.alpha_W, alpha_H=0.0, l1_ratio=params.l1_ratio,
            normalize_atoms=bool(params.alpha_W > 0 and plan.n_free > 0),
            random_state=params.random_state, callback=callback, n_threads=n_threads,
            warn=False,
        )
    W = np.asarray(result.W, dtype=np.float32)
    H = np.asarray(result.H, dtype=np.float32)
    if plan.mode != "blind":
        groups = atoms.groups
    elif plan.n_sources is None:
        groups = components_groups(plan.k)
    else:
        positions = None if Q is None else gain_positions(Q, grids.power)
        groups = group_components(W, H, plan.n_sources, method=params.grouping_for(plan),
                                  sr=grids.analysis_sr, n_fft=grids.analysis_stft.n_fft,
                                  positions=positions)
    return W, H, Q, groups, result


def _mixture_spectrogram(
    y: np.ndarray, sr: int, plan: Plan, params: SeparationParams, grids: Grids,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Return the analysis STFT of ``y``, its spectrogram V and the channel model used.

    V (frames stacked for the context) is per channel for ``spatial="gains"``, of the
    channels combined otherwise, and None for a silent mixture; sources all at one
    place fall back to the shared model (:data:`~nmfsep.plan.MIN_PAN_SPREAD`).
    """
    spatial = params.spatial_for(y.shape[0], plan)
    y_a = resample(y, sr, grids.analysis_sr) if grids.analysis_sr != sr else y
    if y_a.shape[1] == 0:
        y_a = np.zeros((y.shape[0], 1), dtype=y.dtype)
    X_a = compute_stft(y_a, grids.analysis_stft)
    V = _spectrogram(X_a, grids.power, grids.context, per_channel=spatial == "gains")
    spread = None if spatial == "shared" or V is None else pan_spread(V, power=grids.power)
    if spread is not None and spread < MIN_PAN_SPREAD:
        # every source at one place: position cannot help, the shared model it is
        spatial = "shared"
        V = _spectrogram(X_a, grids.power, grids.context)
    return X_a, V, spatial


def _factorize_choosing(
    V: np.ndarray, plan: Plan, params: SeparationParams, grids: Grids,
    callback: Callable[[int, float | None], None] | None, n_threads: int | None,
) -> tuple[Plan, tuple, float | None]:
    """:func:`_factorize`, with and without harmonic atoms where ``plan.harmonic_choice``.

    The plain atoms' fit runs first, without ``callback``; the harmonic atoms are kept
    when their fit's final divergence is below :data:`~nmfsep.plan.HARMONIC_FIT_RATIO`
    of the plain fit's. A mixture longer than
    :data:`~nmfsep.plan.HARMONIC_CHOICE_SECONDS` is compared on its first frames that
    long (both fits, without ``callback``), then the atoms kept are fitted to all of it.
    A ``callback`` with a ``phase(name)`` method (:func:`_fit_phase`) sees every fit:
    ``phase`` names each before it starts.

    Returns
    -------
    plan : Plan
        The plan of the fit kept.
    fit : tuple
        :func:`_factorize`'s result for it.
    ratio : float or None
        Divergence with harmonic atoms / without (None: no comparison was made).
    """
    if not plan.harmonic_choice or params.max_iter == 0:
        return plan, _factorize(V, plan, params, grids, callback, n_threads), None
    plain = plain_plan(plan)
    n = 1 + int(HARMONIC_CHOICE_SECONDS * grids.analysis_sr / grids.analysis_stft.hop_length)
    part = V if V.shape[-2] <= n else np.ascontiguousarray(V[..., :n, :])
    where = "" if part is V else f", first {HARMONIC_CHOICE_SECONDS:g} s"
    fit_plain = _factorize(part, plain, params, grids,
                           _fit_phase(callback, f"harmonic choice 1/2: plain atoms{where}"),
                           n_threads)
    with_harmonic = _fit_phase(callback, f"harmonic choice 2/2: harmonic atoms{where}")
    fit = _factorize(part, plan, params, grids, callback if part is V else with_harmonic,
                     n_threads)
    d_plain, d_harm = fit_plain[4].loss, fit[4].loss
    ratio = float(d_harm / d_plain) if d_plain > 0 else 1.0
    chosen, fit = (plan, fit) if ratio < HARMONIC_FIT_RATIO else (plain, fit_plain)
    if part is not V:
        _fit_phase(callback, "")
        fit = _factorize(V, chosen, params, grids, callback, n_threads)
    return chosen, fit, ratio


def _fit_phase(callback: Callable[..., None] | None, name: str
              ) -> Callable[..., None] | None:
    """Tell ``callback`` that another fit starts; return it for that fit, or None.

    Parameters
    ----------
    callback : callable(iteration, loss or None) or None
        A progress callback; one with a ``phase(name)`` method hears of every fit of a
        run (the harmonic choice's, then the final one), the others of one fit only
        (their iterations would restart from 1 unannounced).
    name : str
        What the fit is (``"harmonic choice 1/2: plain atoms, first 30 s"``); "" for
        the final fit.

    Returns
    -------
    callable or None
        ``callback`` if it has ``phase`` (after calling ``callback.phase(name)``), else None.
    """
    start = getattr(callback, "phase", None)
    if start is None:
        return None
    start(name)
    return callback


def factorize_gains(
    V: np.ndarray, plan: Plan, params: SeparationParams, grids: Grids,
    callback: Callable[[int, float | None], None] | None,
    fixed: np.ndarray | None = None,
) -> NTFResult:
    """Run :func:`nmfsep.ntf.ntf` from nmf's start of ``Σ_c V_c`` and gains from the mixture.

    With dictionaries every source's atoms share one gain vector (a source sits at one
    place; :data:`nmfsep.plan.TIE_GAINS`), free atoms have one each; with every atom
    fixed (supervised), the gains are updated with the activations
    (:data:`nmfsep.plan.SUPERVISED_JOINT_GAINS`). Blind, and dictionaries with free atoms:
    coarse to fine (:func:`nmfsep.ntf_coarse.ntf_coarse_to_fine`,
    :data:`nmfsep.plan.BLIND_POOL_FRAMES`, :data:`nmfsep.plan.SEMI_POOL_FRAMES`).

    Parameters
    ----------
    V : np.ndarray [shape=(n_channels, n_frames, n_cols)], non-negative
        Every channel's spectrogram, scaled and frames stacked as the atoms'.
    plan : Plan
    params : SeparationParams
    grids : Grids
        The run's β and power (:func:`analysis_grids`).
    callback : callable(iteration, loss or None) or None
        Progress of the fit.
    fixed : np.ndarray [shape=(k_fixed, n_cols)] or None
        The atoms held fixed; None: the plan's dictionaries'. A stream passes all
        ``plan.k`` atoms (its free or blind atoms learned online): a blind plan then
        has a gain vector per component, fitted with the activations.

    Returns
    -------
    NTFResult
    """
    if fixed is None and plan.dictionary is not None:
        fixed = plan.dictionary.atoms
    W0, H0 = starting_factors(V.sum(axis=0), plan.k, fixed_atoms=fixed,
                              random_state=params.random_state)
    ties = None
    if plan.mode != "blind" and TIE_GAINS:
        by_source = fallback_groups(plan)
        free = by_source.pop(RESIDUAL, []) if plan.mode == "semi-supervised" else []
        ties = [*by_source.values(), *([i] for i in free)]
    method = GAIN_INIT_BLIND if plan.mode == "blind" else GAIN_INIT_SUPERVISED
    Q0 = initial_gains(V, W0, H0, method=method, power=grids.power,
                       n_peaks=plan.n_sources or len(plan.names), gain_groups=ties)
    if plan.mode == "blind" and fixed is None:
        return ntf_coarse_to_fine(
            V, plan.k, pool=BLIND_POOL_FRAMES, coarse_iter=BLIND_COARSE_ITER,
            fine_iter=BLIND_FINE_ITER, joint_coarse=BLIND_JOINT_GAINS,
            joint_fine=BLIND_JOINT_GAINS, beta=grids.beta, W=W0, H=H0, Q=Q0,
            max_iter=params.max_iter, tol=params.tol, callback=callback)
    if fixed is not None and len(fixed) < plan.k:  # free atoms beside the dictionaries
        return ntf_coarse_to_fine(
            V, plan.k, pool=SEMI_POOL_FRAMES, coarse_iter=SEMI_COARSE_ITER,
            fine_iter=SEMI_FINE_ITER, joint_coarse=SEMI_JOINT_GAINS,
            joint_fine=SEMI_JOINT_GAINS, beta=grids.beta, fixed_atoms=fixed, W=W0, H=H0, Q=Q0,
            gain_groups=ties, max_iter=params.max_iter, tol=params.tol, callback=callback)
    joint = SUPERVISED_JOINT_GAINS if fixed is not None else None
    return ntf(V, plan.k, beta=grids.beta, fixed_atoms=fixed, W=W0, H=H0, Q=Q0,
               gain_groups=ties, joint_gains=joint, max_iter=params.max_iter, tol=params.tol,
               callback=callback)


def filter_iterations(params: SeparationParams, n_stems: int) -> int:
    """EM iterations of the spatial Wiener filter for a gains-model run of ``n_stems`` stems.

    ``params.wiener_iterations``, or 0 (the per-channel masks) beyond
    :data:`~nmfsep.spatial_wiener.MAX_WIENER_SOURCES` stems.
    """
    return params.wiener_iterations if n_stems <= MAX_WIENER_SOURCES else 0


def spatial_filter(
    X: np.ndarray, masks_of: Callable[[int, int], np.ndarray], W: np.ndarray, H: np.ndarray,
    Q: np.ndarray, groups: dict[str, list[int]], power: float, n_iter: int,
) -> SpatialWiener:
    """Return the spatial Wiener filter of ``X``, started from a gains model's masks and gains.

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        The STFT the masks apply to.
    masks_of : callable(t0, t1) -> np.ndarray [shape=(n_groups, n_channels, t1 - t0, n_bins)]
        The model's per-channel masks (:class:`~nmfsep.masks.ChannelMasks`).
    W, H, Q : np.ndarray [shape=(n_frames, k), (k, n_bins), (n_channels, k)]
        The model (single-frame atoms); its groups' gains start the covariances.
    groups : dict[str, list[int]]
        Stem name -> component indices.
    power : float
        The spectrogram's power (gains of ``|X| ** power``).
    n_iter : int
        EM iterations.
    """
    gains = group_positions(W, H, Q, groups, power)
    A = np.stack([g for g, _ in gains.values()], axis=1) ** (1.0 / power)
    return SpatialWiener(X, masks_of, A, n_iter)


def _silent(plan: Plan, y: np.ndarray, n_frames: int, n_cols: int) -> tuple[
        np.ndarray, np.ndarray, dict[str, list[int]], str]:
    """Return the factorization of a silent mixture: no activations, the fixed atoms."""
    warning = (
        "the mixture is too quiet to analyse (its spectrogram underflows); the stems share "
        "it equally" if np.any(y) else
        "the mixture is silent (all samples are zero); the stems are silent"
    )
    W = np.zeros((n_frames, plan.k), dtype=np.float32)
    H = np.zeros((plan.k, n_cols), dtype=np.float32)
    if plan.dictionary is not None:
        H[: plan.n_fixed] = plan.dictionary.atoms
    return W, H, fallback_groups(plan), warning


def _native_masks(W: np.ndarray, H: np.ndarray, Q: np.ndarray | None,
                  groups: dict[str, list[int]], kind: Any, power: float, grids: Grids,
                  sr: int, n_frames: int) -> np.ndarray:
    """Return the masks on the native grid (``(G, T, F)``, or ``(G, C, T, F)`` with gains)."""
    def regrid(Wc: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        M_a = masks(group_models(Wc, H, groups), kind=kind, power=power)
        return _regrid_masks(M_a, grids.analysis_sr, grids.analysis_stft, sr,
                             grids.native_stft, n_frames, out)

    if Q is None:
        return regrid(W)
    # every channel's masks written in place (a stack of a list would hold them twice)
    full = np.empty((len(groups), Q.shape[0], n_frames, grids.native_stft.n_bins),
                    dtype=np.float32)
    for c in range(Q.shape[0]):
        regrid(W * Q[c], full[:, c])
    return full


def analyse(
    y: np.ndarray,
    sr: int,
    plan: Plan,
    params: SeparationParams,
    *,
    callback: Callable[[int, float | None], None] | None = None,
    n_threads: int | None = None,
) -> Analysis:
    """Do everything :func:`separate` does but the stems.

    With ``params.relearn`` (:mod:`nmfsep.relearn`) a supervised run whose first pass
    qualifies is done twice: the first pass's stems teach every source more atoms,
    and the second pass, with them added, gives the result.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)]
        The mixture, checked (:func:`check_mixture`).
    sr : int
        Its rate in Hz.
    plan : Plan
        Mode, components and stems (:func:`nmfsep.plan.make_plan`).
    params : SeparationParams
        Validated settings.
    callback, n_threads
        As for :func:`separate`.

    Returns
    -------
    Analysis

    Raises
    ------
    ParameterError, DictionaryError
        As :func:`separate`.
    """
    check_relearn(params.relearn, plan, params.adapt, params.free_per_source)
    fit, used = _analyse_once(y, sr, plan, params, callback=callback, n_threads=n_threads)
    record: dict[str, Any] = {"setting": params.relearn, "passes": 1}
    if should_relearn(params.relearn, used, params.adapt, params.free_per_source):
        _fit_phase(callback, "second pass: learning atoms from the first pass's stems")
        names = list(fit.model.groups)
        blocks = stem_blocks(fit.X, fit.masks, fit.y, fit.model.stft, len(names))
        excerpts = stem_excerpts(blocks, len(names), y.shape[0], y.shape[1], sr)
        dicts = relearned(plan.dictionaries, dict(zip(names, excerpts, strict=True)), sr)
        del fit, excerpts
        again = make_plan(None, None, dicts, 0, False, "auto" if plan.harmonic_choice else "on")
        _fit_phase(callback, "second pass")
        second = _SecondPass(callback) if hasattr(callback, "phase") else callback
        fit, _ = _analyse_once(y, sr, again, params, callback=second, n_threads=n_threads)
        record.update(passes=2, added_atoms={d.names[0]: d.training.get(
            "relearned", {}).get("atoms", 0) for d in dicts})
    fit.model.settings["relearn"] = record
    return fit


class _SecondPass:
    """A phased progress callback whose phases are named as the second pass's."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def __call__(self, iteration: int, loss: float | None = None) -> None:
        self.callback(iteration, loss)

    def phase(self, name: str) -> None:
        self.callback.phase(f"second pass: {name}" if name else "second pass")


def _analyse_once(
    y: np.ndarray,
    sr: int,
    plan: Plan,
    params: SeparationParams,
    *,
    callback: Callable[[int, float | None], None] | None = None,
    n_threads: int | None = None,
) -> tuple[Analysis, Plan]:
    """One pass of :func:`analyse` (same parameters and errors).

    Returns
    -------
    Analysis
    Plan
        The plan the factorization used: ``plan``, or its plain-atom version when the
        harmonic choice left the harmonic atoms out.
    """
    grids = analysis_grids(plan, params, sr)
    check_adaptation(params, plan, grids.beta)
    resampled = grids.analysis_sr != sr
    X_a, V, spatial = _mixture_spectrogram(y, sr, plan, params, grids)
    n_frames = X_a.shape[2]
    plan, fewer = fit_frames(plan, n_frames, y.shape[1] / sr)
    short = short_warning(y.shape[1], sr, grids.analysis_stft.n_fft, grids.analysis_sr)
    warnings_out: list[str] = [w for w in (short, fewer, plan.harmonic_note) if w]
    fit_ratio = None
    if V is None:
        W, H, groups, warning = _silent(plan, y, n_frames,
                                        grids.context * grids.analysis_stft.n_bins)
        warnings_out.append(warning)
        n_iter, loss_history, converged = 0, np.zeros(0, dtype=np.float64), True
        Q = None if spatial == "shared" else np.full((y.shape[0], plan.k), 1 / y.shape[0],
                                                     dtype=np.float32)
    else:
        plan, (W, H, Q, groups, res), fit_ratio = _factorize_choosing(
            V, plan, params, grids, callback, n_threads)
        n_iter, loss_history, converged = res.n_iter, res.loss_history, res.converged
    del V  # only the STFT and the factorization are needed from here on
    if grids.context > 1:
        # from here on, a factorisation of single frames: each atom of T frames becomes
        # T single-frame atoms with shifted activations, the same model averaged over
        # the T predictions of every frame (nmfsep.context.expand_factors)
        W, H = expand_factors(W, H, grids.context)
        groups = {name: expand_indices(idx, grids.context) for name, idx in groups.items()}
        Q = None if Q is None else np.repeat(Q, grids.context, axis=1)
    mask_power = params.mask_power_for(plan)
    if resampled:
        del X_a
        X = compute_stft(y, grids.native_stft)
        full = _native_masks(W, H, Q, groups, params.mask, mask_power, grids, sr, X.shape[2])
        masks_of: Callable[[int, int], np.ndarray] = lambda t0, t1: full[..., t0:t1, :]  # noqa: E731
    else:
        X, full = X_a, None
        masks_of = (GroupMasks(W, H, groups, kind=params.mask, power=mask_power) if Q is None
                    else ChannelMasks(W, H, Q, groups, kind=params.mask, power=mask_power))
    wiener_iter = None if Q is None else filter_iterations(params, len(groups))
    if Q is not None and wiener_iter:
        # the stems from the channels together: a multichannel Wiener filter started
        # from these masks and the sources' gains (nmfsep.spatial_wiener)
        masks_of = spatial_filter(X, masks_of, W, H, Q, groups, grids.power, wiener_iter)
        full = None
    settings = settings_record(
        plan, params, beta=grids.beta, power=grids.power, sr=sr, stft=grids.native_stft,
        analysis_sr=grids.analysis_sr, analysis_stft=grids.analysis_stft, spatial=spatial,
        harmonic_fit_ratio=fit_ratio,
    )
    settings["wiener_iter"] = wiener_iter
    model = Factorization(
        W=W, H=H, groups={name: list(idx) for name, idx in groups.items()}, sr=sr,
        stft=grids.native_stft, analysis_sr=grids.analysis_sr,
        analysis_stft=grids.analysis_stft, settings=settings, n_iter=int(n_iter),
        loss_history=np.asarray(loss_history, dtype=np.float64), converged=bool(converged),
        warnings=warnings_out, nmfsep_version=settings["nmfsep_version"], Q=Q,
    )
    return Analysis(y=y, X=X, masks=masks_of, full_masks=full, model=model), plan
