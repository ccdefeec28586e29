"""Group models, soft (α-Wiener) and binary masks, and their application to an STFT.

Shapes follow the nmfsep convention: ``V ≈ W @ H`` with the activations
``W (n_frames, k)`` and the spectral atoms ``H (k, n_bins)``; the model of each group
of components and its mask are ``(n_groups, n_frames, n_bins)``; the STFT is
``X (n_channels, n_bins, n_frames)``. Masks lie in ``[0, 1]`` and sum to one over the
groups in every bin, so the masked STFTs add back to ``X``.

Every function is pure: arguments are never modified in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from nmfsep._checks import check_choice
from nmfsep._checks import is_int as _is_int
from nmfsep._checks import is_real as _is_real
from nmfsep.exceptions import ParameterError

__all__ = [
    "group_models", "masks", "GroupMasks", "ChannelMasks", "apply_masks", "MASK_KINDS",
    "MaskKind",
]

#: The type of a mask kind (one of :data:`MASK_KINDS`).
MaskKind = Literal["soft", "binary"]
#: Mask kinds: soft (α-Wiener, summing to one) and binary (the loudest group wins).
MASK_KINDS: tuple[MaskKind, ...] = ("soft", "binary")


def _as_float_matrix(a: object, name: str, shape_doc: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ParameterError(f"{name} must have shape {shape_doc}, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ParameterError(f"{name} must be a real array, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name} contains NaN or Inf values")
    if (arr < 0).any():
        raise ParameterError(f"{name} must be non-negative, got a minimum of {arr.min()}")
    return arr


def group_models(W: np.ndarray, H: np.ndarray, groups: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Model spectrogram of each group of NMF components.

    The model of group ``g`` with component indices ``idx`` is
    ``W[:, idx] @ H[idx]``; the models add up to ``W @ H``.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)], non-negative
        Activations.
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms (the dictionary).
    groups : Mapping[str, Sequence[int]]
        Ordered mapping from group name to the indices of its components, e.g.
        ``{"piano": [0, 1, 2], "flute": [3, 4], "residual": [5]}``. Every component
        ``0 .. k-1`` must belong to exactly one group; put the leftovers in a group
        of their own (e.g. ``"residual"``) rather than dropping them.

    Returns
    -------
    models : np.ndarray [shape=(n_groups, n_frames, n_bins)], non-negative
        In the order of ``groups``; dtype is the common floating type of ``W`` and
        ``H`` (float32 when both are float32).

    Raises
    ------
    ParameterError
        If the shapes disagree, ``W`` or ``H`` hold negative or non-finite values,
        ``groups`` is empty, a name is not a non-empty string, a group is empty, an
        index is not an int in ``[0, k)``, a component is in two groups, or a
        component is in no group.

    See Also
    --------
    masks : turns the models into masks.
    """
    W, H, index_lists = _check_factors(W, H, groups)
    return _models(W, H, index_lists)


def _check_factors(
    W: object, H: object, groups: Mapping[str, Sequence[int]]
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Validate ``W``, ``H`` and ``groups`` as :func:`group_models` documents.

    Returns ``W``, ``H`` as arrays and one index array per group.
    """
    W = _as_float_matrix(W, "W", "(n_frames, k)")
    H = _as_float_matrix(H, "H", "(k, n_bins)")
    k = W.shape[1]
    if H.shape[0] != k:
        raise ParameterError(
            f"W has {k} components (columns) but H has {H.shape[0]} (rows); "
            "W must be (n_frames, k) and H (k, n_bins)"
        )
    if not isinstance(groups, Mapping) or len(groups) == 0:
        raise ParameterError(
            f"groups must be a non-empty mapping of name -> component indices, got {groups!r}"
        )
    owner: dict[int, str] = {}
    index_lists: list[np.ndarray] = []
    for name, idx in groups.items():
        if not isinstance(name, str) or not name:
            raise ParameterError(f"group names must be non-empty strings, got {name!r}")
        if isinstance(idx, str | bytes) or not isinstance(idx, Sequence | np.ndarray):
            raise ParameterError(f"group {name!r} must list component indices, got {idx!r}")
        if len(idx) == 0:
            raise ParameterError(f"group {name!r} has no components; remove it or add some")
        checked: list[int] = []
        for i in idx:
            if not _is_int(i):
                raise ParameterError(f"group {name!r}: component index {i!r} is not an int")
            if not 0 <= i < k:
                raise ParameterError(
                    f"group {name!r}: component index {i} is out of range [0, {k})"
                )
            if int(i) in owner:
                raise ParameterError(
                    f"component {int(i)} is in both group {owner[int(i)]!r} and group {name!r}"
                )
            owner[int(i)] = name
            checked.append(int(i))
        index_lists.append(np.asarray(checked, dtype=np.intp))
    unassigned = sorted(set(range(k)) - set(owner))
    if unassigned:
        raise ParameterError(
            f"component(s) {unassigned} are in no group; add them to a group (e.g. 'residual')"
        )
    return W, H, index_lists


def _models(W: np.ndarray, H: np.ndarray, index_lists: Sequence[np.ndarray]) -> np.ndarray:
    """``out[g] = W[:, idx_g] @ H[idx_g]`` for checked factors, ``(n_groups, n_frames, n_bins)``."""
    dtype = np.result_type(W.dtype, H.dtype, np.float32)
    out = np.empty((len(index_lists), W.shape[0], H.shape[1]), dtype=dtype)
    for g, sel in enumerate(index_lists):
        Wg, Hg = W[:, sel].astype(dtype, copy=False), H[sel].astype(dtype, copy=False)
        if sel.shape[0] == 1:  # an outer product: the same numbers, without BLAS's overhead
            np.multiply(Wg, Hg, out=out[g])
        else:
            np.matmul(Wg, Hg, out=out[g])
    return out


def masks(
    models: np.ndarray,
    *,
    kind: MaskKind = "soft",
    power: float = 2.0,
    eps: float | None = None,
) -> np.ndarray:
    """Masks that share every time-frequency bin among the groups.

    ``kind="soft"`` is the α-Wiener mask
    ``M_g = models_g**power / Σ_j models_j**power``, computed stably: the models are
    first divided by their maximum over the groups in each bin (as
    :func:`librosa.util.softmask` does), so huge or tiny values neither overflow
    nor underflow to NaN. ``kind="binary"`` gives each bin wholly to the group with
    the largest model (ties go to the first of them).

    Parameters
    ----------
    models : np.ndarray [shape=(n_groups, n_frames, n_bins)], non-negative, finite
        One model spectrogram per group, e.g. from :func:`group_models`.
    kind : {"soft", "binary"}
        Mask type.
    power : float
        Exponent of the soft mask, finite and > 0 (1: magnitude ratio, 2: the
        classic Wiener mask on magnitude models). Ignored by ``kind="binary"``
        but still validated.
    eps : float or None
        A bin whose largest model is ``<= eps`` counts as silent. ``None`` means
        only bins whose largest model is zero or below the smallest normal number
        of the dtype. Must be finite and >= 0.

    Returns
    -------
    M : np.ndarray [shape=(n_groups, n_frames, n_bins)], float32
        In ``[0, 1]`` and summing to one over the groups (to float32 precision) in
        every bin; never NaN or Inf. Silent bins get ``1 / n_groups`` for every
        group (soft) or go wholly to the first group (binary). With one group,
        the mask is all ones.

    Raises
    ------
    ParameterError
        If ``models`` is not a 3-D non-negative finite array with at least one
        group, or ``kind``, ``power`` or ``eps`` is invalid.

    See Also
    --------
    group_models : builds the models.
    apply_masks : applies the masks to every channel of an STFT.
    """
    if not isinstance(models, np.ndarray):
        models = np.asarray(models)
    if models.ndim != 3 or models.shape[0] < 1:
        raise ParameterError(
            "models must have shape (n_groups, n_frames, n_bins) with n_groups >= 1, "
            f"got shape {models.shape}"
        )
    _check_mask_settings(kind, power, eps)
    if not (np.issubdtype(models.dtype, np.floating) or np.issubdtype(models.dtype, np.integer)):
        raise ParameterError(f"models must be a real array, got dtype {models.dtype}")
    if not np.isfinite(models).all():
        raise ParameterError("models contain NaN or Inf values")
    if (models < 0).any():
        raise ParameterError(f"models must be non-negative, got a minimum of {models.min()}")
    n_groups, n_frames, n_bins = models.shape
    out = np.empty(models.shape, dtype=np.float32)
    # frame by frame: blocks of frames that stay in the CPU caches give the same numbers
    step = max(1, _BLOCK_BYTES // max(1, n_groups * n_bins * 8))
    for t0 in range(0, n_frames, step):
        out[:, t0 : t0 + step] = _mask_block(models[:, t0 : t0 + step], kind, power, eps)
    return out


#: Bytes of the models of one block of frames (see :func:`masks`, :class:`GroupMasks`).
_BLOCK_BYTES = 1 << 22


def _check_mask_settings(kind: object, power: object, eps: object) -> None:
    check_choice(kind, "kind", MASK_KINDS)
    if not _is_real(power) or float(power) <= 0:
        raise ParameterError(
            f"power must be a finite number > 0, got {power!r}; for hard masks use kind='binary'"
        )
    if eps is not None and (not _is_real(eps) or float(eps) < 0):
        raise ParameterError(f"eps must be None or a finite number >= 0, got {eps!r}")


def _mask_block(models: np.ndarray, kind: str, power: float, eps: float | None) -> np.ndarray:
    """Masks of checked models ``(n_groups, n, n_bins)``, float32; see :func:`masks`."""
    n_groups = models.shape[0]
    work_dtype = np.result_type(models.dtype, np.float32)
    m = models.astype(work_dtype, copy=False)
    peak = m.max(axis=0)  # (n, n_bins)
    silent = peak < np.finfo(work_dtype).tiny if eps is None else peak <= eps
    any_silent = bool(silent.any())

    if kind == "binary":
        winner = np.argmax(m, axis=0)
        if any_silent:
            winner[silent] = 0
        return (np.arange(n_groups)[:, None, None] == winner[None]).astype(np.float32)

    scale = np.where(silent, 1.0, peak).astype(work_dtype, copy=False) if any_silent else peak
    # `ratio` is a fresh array owned here, so the in-place steps below touch no input.
    ratio = m / scale  # in [0, 1]; the loudest group is exactly 1 where not silent
    p = float(power)
    if p != 1.0:
        np.power(ratio, p, out=ratio)
    total = ratio.sum(axis=0)  # >= 1 where not silent
    if any_silent:
        total[silent] = 1.0
    ratio /= total
    if any_silent:
        ratio[:, silent] = 1.0 / n_groups
    np.clip(ratio, 0.0, 1.0, out=ratio)
    return ratio.astype(np.float32, copy=False)


class GroupMasks:
    """The masks of a factorization, computed a block of frames at a time.

    ``GroupMasks(W, H, groups, kind=..., power=...)(start, stop)`` equals
    ``masks(group_models(W, H, groups), kind=..., power=...)[:, start:stop]`` (to the
    rounding of the matrix products), with memory for those frames only: every bin's
    mask depends on that bin's models alone, so the shared denominator
    ``Σ_j (W_j H_j)**power`` is computed per block.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)], non-negative
        Activations.
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms.
    groups : Mapping[str, Sequence[int]]
        Group name -> component indices, as for :func:`group_models`.
    kind, power, eps
        As for :func:`masks`.

    Attributes
    ----------
    names : list of str
        Group names, in order.
    n_frames, n_bins : int
        Size of every mask.

    Raises
    ------
    ParameterError
        As :func:`group_models` and :func:`masks` do.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W, H = rng.random((100, 3)), rng.random((3, 20))
    >>> source = GroupMasks(W, H, {"a": [0], "b": [1, 2]}, power=1.0)
    >>> source(10, 20).shape
    (2, 10, 20)
    """

    def __init__(
        self,
        W: np.ndarray,
        H: np.ndarray,
        groups: Mapping[str, Sequence[int]],
        *,
        kind: MaskKind = "soft",
        power: float = 2.0,
        eps: float | None = None,
    ) -> None:
        self._W, self._H, self._index = _check_factors(W, H, groups)
        _check_mask_settings(kind, power, eps)
        self.names = list(groups)
        self.n_frames, self.n_bins = self._W.shape[0], self._H.shape[1]
        self._kind, self._power, self._eps = kind, float(power), eps

    def __len__(self) -> int:
        return len(self.names)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """Masks of frames ``start .. stop - 1``.

        Parameters
        ----------
        start, stop : int
            Frame range, ``0 <= start <= stop <= n_frames``.

        Returns
        -------
        M : np.ndarray [shape=(n_groups, stop - start, n_bins)], float32
            In ``[0, 1]``, summing to one over the groups.
        """
        if not (_is_int(start) and _is_int(stop) and 0 <= start <= stop <= self.n_frames):
            raise ParameterError(
                f"frames [{start!r}, {stop!r}) are not a range within [0, {self.n_frames}]"
            )
        models = _models(self._W[start:stop], self._H, self._index)
        return _mask_block(models, self._kind, self._power, self._eps)


class ChannelMasks:
    """Every channel's masks of a multichannel factorization, a block of frames at a time.

    Channel c is modelled by ``W diag(Q[c]) H`` (:mod:`nmfsep.ntf`), so its masks are
    those of :class:`GroupMasks` with the activations ``W * Q[c]``: each channel's masks
    lie in ``[0, 1]`` and sum to one over the groups.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)], non-negative
        Activations.
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms.
    Q : np.ndarray [shape=(n_channels, k)], non-negative
        Gain of every component in every channel.
    groups : Mapping[str, Sequence[int]]
        Group name -> component indices, as for :func:`group_models`.
    kind, power, eps
        As for :func:`masks`.

    Raises
    ------
    ParameterError
        As :class:`GroupMasks`, or for gains of the wrong shape or values.
    """

    def __init__(
        self,
        W: np.ndarray,
        H: np.ndarray,
        Q: np.ndarray,
        groups: Mapping[str, Sequence[int]],
        *,
        kind: MaskKind = "soft",
        power: float = 2.0,
        eps: float | None = None,
    ) -> None:
        W = _as_float_matrix(W, "W", "(n_frames, k)")
        Q = _as_float_matrix(Q, "Q", "(n_channels, k)")
        if Q.shape[1] != W.shape[1]:
            raise ParameterError(
                f"Q has {Q.shape[1]} components (columns) but W has {W.shape[1]}; "
                "Q must be (n_channels, k)"
            )
        dtype = np.result_type(W.dtype, np.float32)
        self._channels = [GroupMasks(W * Q[c].astype(dtype), H, groups, kind=kind, power=power,
                                     eps=eps) for c in range(Q.shape[0])]
        self.names = self._channels[0].names
        self.n_frames, self.n_bins = self._channels[0].n_frames, self._channels[0].n_bins

    def __len__(self) -> int:
        return len(self.names)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """Masks of frames ``start .. stop - 1`` of every channel.

        Returns
        -------
        M : np.ndarray [shape=(n_groups, n_channels, stop - start, n_bins)], float32
            In ``[0, 1]``, summing to one over the groups in every channel.
        """
        return np.stack([m(start, stop) for m in self._channels], axis=1)


def apply_masks(X: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Apply one mask per group to every channel of an STFT (mixture phase kept).

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        STFT of the mixture, as returned by :func:`nmfsep.spectral.stft`.
    M : np.ndarray [shape=(n_groups, n_frames, n_bins)], real
        Masks from :func:`masks` (frame-major, like ``V``); the same mask is used
        for every channel. Masks of shape ``(n_groups, n_channels, n_frames,
        n_bins)`` (:class:`ChannelMasks`) give every channel its own.

    Returns
    -------
    S : np.ndarray [shape=(n_groups, n_channels, n_bins, n_frames)], complex
        ``S[g, c] = M[g].T * X[c]``, with the dtype of ``X`` (complex64 stays
        complex64). When the masks sum to one, ``S.sum(axis=0) == X`` to float
        precision.

    Raises
    ------
    ParameterError
        If the shapes do not match, or ``X`` or ``M`` hold non-finite values.

    See Also
    --------
    masks : computes ``M``.
    nmfsep.spectral.istft : turns each ``S[g]`` back into audio.
    """
    if not isinstance(X, np.ndarray) or X.ndim != 3:
        raise ParameterError(
            f"X must have shape (n_channels, n_bins, n_frames), got {getattr(X, 'shape', type(X))}"
        )
    M = np.asarray(M)
    if M.ndim == 4 and M.shape[1] == X.shape[0]:  # every channel its own masks
        return np.stack([apply_masks(X[c : c + 1], M[:, c])[:, 0] for c in range(X.shape[0])],
                        axis=1)
    if M.ndim != 3:
        raise ParameterError(f"M must have shape (n_groups, n_frames, n_bins), got {M.shape}")
    if np.iscomplexobj(M):
        raise ParameterError(f"M must be real, got dtype {M.dtype}")
    if M.shape[1:] != (X.shape[2], X.shape[1]):
        raise ParameterError(
            f"masks of shape {M.shape} (n_groups, n_frames, n_bins) do not fit X of shape "
            f"{X.shape} (n_channels, n_bins, n_frames)"
        )
    if not np.isfinite(M).all():
        raise ParameterError("M contains NaN or Inf values")
    out_dtype = X.dtype if np.iscomplexobj(X) else np.result_type(X.dtype, np.complex64)
    real_dtype = np.finfo(out_dtype).dtype
    Mt = M.astype(real_dtype, copy=False).transpose(0, 2, 1)  # (n_groups, n_bins, n_frames)
    return (Mt[:, None, :, :] * X[None, :, :, :]).astype(out_dtype, copy=False)
