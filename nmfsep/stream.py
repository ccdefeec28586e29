"""Supervised and semi-supervised separation of a recording of any length, block by block.

:func:`separate_stream` gives the stems of :func:`nmfsep.separate.separate_file`
(same dictionaries, same settings, same summary) in memory that depends on
``block_seconds``, not on the duration of the recording: an hour-long mixture is
never held in memory, neither as audio nor as a spectrogram.

How it stays equal to whole-file processing
-------------------------------------------
* **Frames.** Blocks are cut on the STFT hop grid: block ``b`` owns frames
  ``[t0, t1)`` of the whole-file STFT and reads the samples those frames cover
  (``n_fft - hop`` samples of overlap with the next block, zeros outside the
  file, as the whole-file STFT pads). Every frame is therefore the whole-file
  frame (same samples, same window), not an approximation near block edges.
* **Scale.** :func:`separate` divides the spectrogram by a global scale (the
  STFT peak and the spectrogram's mean; for β <= 0 also a floor at
  ``EPSILON * max(V)``). A first, cheap pass over the file (read + STFT, no NMF)
  computes exactly these numbers, so every block sees the spectrogram
  ``separate`` factorises.
* **Activations.** With the atoms fixed, NMF's activation updates are frame by
  frame ("mu" and "cd" solvers), so solving each block alone from the same start
  gives the whole-file activations. What can differ is *when* it stops: with
  ``tol > 0`` each block stops at its own convergence check instead of the
  whole file's. With ``tol=0`` (a fixed number of iterations) the stems equal
  ``separate``'s to float32 rounding; with the default ``tol`` they differ by the
  convergence tolerance (tests/test_stream.py measures both: stems within
  ``1e-4`` of the peak (``tol=0``) and an SDR of the streamed stems against the
  whole-file ones above 40 dB (default ``tol``)). ``solver="amu"`` adapts its step
  to the objective of what it factorises, so it is block-dependent too.
* **Synthesis.** Masked frames go through the same block-wise inverse STFT as
  whole-file separation (:class:`nmfsep.spectral.OverlapAdd`, which carries the
  ``n_fft - hop`` overlapping samples from one block to the next); a sample is
  written once every frame that covers it has been added. The remainder
  ``mixture - Σ stems`` is shared equally among the stems, as ``separate`` does,
  so the stems add up to the mixture to float32 rounding.

Free atoms (``n_free > 0``, semi-supervised)
---------------------------------------------
Whole-file separation learns the free atoms jointly over the whole spectrogram,
which a stream cannot hold. Here they are learned *once for the whole file*
with the online β-NMF of :mod:`nmfsep.online` (the dictionary atoms fixed,
``learn_passes`` passes over the blocks, default 1), then frozen, and every
block's activations are solved with all atoms fixed, as in supervised mode. So
the residual stem is modelled by the same atoms from the first to the last block
(no change of model at a block edge, unlike re-fitting free atoms per block).
The free atoms are a different estimate than the whole-file ones, so
semi-supervised streams are *not* equal to ``separate``; they separated the
sources as well or better in our checks (piano + flute tiled to 24 s, 16 atoms a
source, 4 free: SDR piano/flute 7.4/8.9 dB streamed in 5 s blocks against
2.6/6.0 dB whole-file, whose free atoms absorb more of the sources; one online
pass did better than three for the same reason), and the stems add up to the
mixture.

Sample rate
-----------
The mixture must be at the dictionaries' sample rate; otherwise a
:class:`~nmfsep.exceptions.DictionaryError` says to resample the file first
(``separate`` resamples in memory and regrids its masks, which a stream does not).

Memory
------
Per block of ``F`` frames, ``C`` channels, ``n_bins`` bins and ``G`` stems: the
audio block, its STFT (``8 C n_bins F`` bytes), the spectrogram and activations,
and the masks (``4 G n_bins F``); the spectrogram, masks and inverse FFTs are
computed 256 frames at a time inside a block, and the overlap-add keeps only the
``n_fft - hop`` samples that the next frames still add to. At 44.1 kHz stereo with
two stems (n_fft 4096) and the default 30 s blocks, the process's peak RSS is about
360 MiB (1 minute) to 400 MiB (10 or 60 minutes) above the imports' and
dictionaries' 52 MiB
(``benchmarks/bench_long.py``; whole-file separation needs 2 GiB for 10 minutes).

Output
------
Stems are written progressively, block by block, with :class:`soundfile.SoundFile`
as 32-bit float WAV (RF64 when a stem would exceed WAV's 4 GiB) to hidden
temporary names in ``out_dir/<mix stem>/``, renamed over the targets only once
every stem is complete; on any failure the temporaries (and a folder created for
them) are removed, so no partial output is left.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nmfsep.dictionary import Dictionary
from nmfsep.exceptions import AudioFormatError, DictionaryError, OutputError, ParameterError
from nmfsep.separate import SUPERVISED_MASK_POWER
from nmfsep.spectral import STFTConfig

__all__ = ["separate_stream", "DEFAULT_BLOCK_SECONDS", "DEFAULT_LEARN_PASSES"]

#: Seconds of audio per block: long enough that the per-block overhead is small,
#: short enough that a block of 44.1 kHz stereo takes a few hundred MB.
DEFAULT_BLOCK_SECONDS = 30.0
#: Passes of the online learning of free atoms (semi-supervised mode only).
DEFAULT_LEARN_PASSES = 1

_WAV_LIMIT = 2**32 - 1024  # bytes of a RIFF WAV, header included
#: Frames per step inside a block for the spectrogram, masks and synthesis (their
#: temporaries are this size, not the block's).
_CHUNK = 256


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def _is_real(value: object) -> bool:
    return (
        isinstance(value, Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


# ---------------------------------------------------------------------- frames and reading


@dataclass(frozen=True)
class _Grid:
    """The whole-file STFT grid: frame ``t`` covers samples ``[start(t), start(t) + n_fft)``."""

    n_fft: int
    hop: int
    offset: int  # n_fft // 2 with center=True, else 0

    @classmethod
    def of(cls, cfg: STFTConfig) -> _Grid:
        return cls(cfg.n_fft, cfg.hop_length, cfg.n_fft // 2 if cfg.center else 0)

    def start(self, t: int) -> int:
        return t * self.hop - self.offset

    def n_frames(self, n_samples: int) -> int:
        # nmfsep.spectral.stft zero-pads a clip shorter than n_fft to n_fft samples
        length = max(n_samples, self.n_fft)
        return 1 + (length + 2 * self.offset - self.n_fft) // self.hop


class _Reader:
    """Sequential reader of sample ranges ``[a, b)`` (``a`` never decreasing), zeros outside.

    Keeps only the samples from the last ``a`` on; the length of the file becomes
    known (``n``) when a read reaches its end.
    """

    def __init__(self, f: Any, path: Path, channels: int):
        self.f = f
        self.path = path
        self.channels = channels
        self.start = 0  # absolute index of buf[:, 0]
        self.pos = 0  # samples read from the file so far
        self.buf = np.zeros((channels, 0), dtype=np.float32)
        self.n: int | None = None

    def read(self, a: int, b: int) -> np.ndarray:
        lo = max(a, 0)
        if lo > self.start:
            drop = min(lo, self.pos) - self.start
            self.buf = self.buf[:, drop:]
            self.start += drop
        need = b - self.pos
        if need > 0 and self.n is None:
            import soundfile as sf

            try:
                data = self.f.read(need, dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError, ValueError) as exc:
                raise AudioFormatError(
                    f"{self.path}: cannot be read as audio past sample {self.pos} ({exc}); "
                    "convert it to WAV or FLAC (e.g. with ffmpeg -i IN OUT.wav)"
                ) from exc
            got = data.shape[0]
            if got and not np.isfinite(data).all():
                raise AudioFormatError(
                    f"{self.path}: contains NaN or Inf samples; re-export it as PCM or clean "
                    "float audio"
                )
            self.pos += got
            if got < need:
                self.n = self.pos
            if got:
                self.buf = np.concatenate([self.buf, data.T], axis=1)
        out = np.zeros((self.channels, b - a), dtype=np.float32)
        s, e = max(a, self.start), min(b, self.pos)
        if e > s:
            out[:, s - a : e - a] = self.buf[:, s - self.start : e - self.start]
        return out


def _blocks(
    reader: _Reader, grid: _Grid, frames_per_block: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(t0, t1, samples)``: the frames ``[t0, t1)`` of a block and the samples they cover.

    ``samples`` covers ``[grid.start(t0), grid.start(t1 - 1) + n_fft)``.
    """
    t0 = 0
    while True:
        a = grid.start(t0)
        b = grid.start(t0 + frames_per_block - 1) + grid.n_fft
        seg = reader.read(a, b)
        # While the end of the file is unknown, it lies at or after b, so all the
        # frames up to t0 + frames_per_block exist.
        total = None if reader.n is None else grid.n_frames(reader.n)
        t1 = t0 + frames_per_block if total is None else min(t0 + frames_per_block, total)
        if t1 <= t0:
            return
        if t1 < t0 + frames_per_block:
            seg = seg[:, : grid.start(t1 - 1) + grid.n_fft - a]
        yield t0, t1, seg
        if total is not None and t1 >= total:
            return
        t0 = t1


@contextlib.contextmanager
def _writing(folder: Path) -> Iterator[None]:
    """Turn soundfile's write errors (disk full, ...) into an :class:`OutputError`."""
    import soundfile as sf

    try:
        yield
    except (sf.SoundFileError, RuntimeError) as exc:
        raise OutputError(
            f"{folder}: cannot write the stems ({exc}); check disk space and permissions"
        ) from exc


# ---------------------------------------------------------------------- the pipeline


@dataclass
class _Scale:
    """Global normalisation of the spectrogram, as :func:`separate` computes it."""

    peak: float  # max |X| over the file
    mean: float  # mean of model_spectrogram(X / peak)
    vmax: float  # max of model_spectrogram(X / peak)


def _scan(open_reader, grid: _Grid, fpb: int, cfg_frames: STFTConfig, power: float,
          n_bins: int, tick) -> tuple[_Scale, int, int]:
    """First pass: the global peak, mean and max of the spectrogram, and the file's length."""
    from nmfsep.spectral import model_spectrogram, stft

    peak = total = vmax = 0.0
    n_frames = 0
    with open_reader() as reader:
        for t0, t1, seg in _blocks(reader, grid, fpb):
            X = stft(seg, cfg_frames)
            n_frames += t1 - t0
            p_b = max(float(np.abs(X[..., j : j + _CHUNK]).max())
                      for j in range(0, X.shape[2], _CHUNK))
            if p_b > 0:
                s_b = m_b = 0.0
                for j in range(0, X.shape[2], _CHUNK):
                    V = model_spectrogram(X[..., j : j + _CHUNK], power, scale=p_b)
                    s_b += float(V.sum(dtype=np.float64))
                    m_b = max(m_b, float(V.max()))
                # keep the sums relative to the running peak (no under- or overflow)
                if p_b > peak:
                    r = (peak / p_b) ** power if peak > 0 else 0.0
                    total, vmax, peak = total * r, vmax * r, p_b
                    total += s_b
                    vmax = max(vmax, m_b)
                else:
                    r = (p_b / peak) ** power
                    total += s_b * r
                    vmax = max(vmax, m_b * r)
            tick()
        n_samples = reader.n if reader.n is not None else reader.pos
    mean = total / (n_frames * n_bins) if n_frames else 0.0
    return _Scale(peak=peak, mean=mean, vmax=vmax), n_samples, n_frames


def separate_stream(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "separated",
    *,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]],
    n_free: int = 0,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    beta: str | float | None = None,
    mask: Literal["soft", "binary"] = "soft",
    mask_power: float = SUPERVISED_MASK_POWER,
    solver: str = "mu",
    max_iter: int = 200,
    tol: float = 1e-4,
    alpha_W: float = 0.0,
    l1_ratio: float = 0.0,
    random_state: int | None = 0,
    learn_passes: int = DEFAULT_LEARN_PASSES,
    n_threads: int | None = None,
    force: bool = False,
    callback: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Separate an audio file of any length block by block; write ``out_dir/<mix stem>/<name>.wav``.

    Supervised (``dictionaries``) or semi-supervised (``n_free > 0``) separation
    with the settings and the output of :func:`nmfsep.separate.separate_file`, in
    memory that does not grow with the duration. See the module documentation for
    how the result relates to whole-file processing.

    Parameters
    ----------
    path : str or os.PathLike
        The mixture: any file libsndfile reads, at the dictionaries' sample rate.
    out_dir : str or os.PathLike
        Output root; the stems go to ``out_dir/<mix stem>/``.
    dictionaries : sequence of Dictionary or paths
        The fixed atoms, one stem per source name (as for :func:`separate`).
    n_free : int
        Free atoms (semi-supervised); their stem is ``residual``. They are learned
        online over the whole file, then frozen (module documentation).
    block_seconds : float
        Audio per block, > 0 (rounded to whole hops; at least one frame).
    beta : {"kullback-leibler", "itakura-saito", "frobenius"}, float or None
        β-divergence; None: the dictionaries' β.
    mask : {"soft", "binary"}
        Mask kind.
    mask_power : float
        Exponent of the soft mask, > 0 (:data:`nmfsep.separate.SUPERVISED_MASK_POWER`).
    solver : {"mu", "amu", "cd"}
        NMF solver of the activations ("mu" and "cd" are frame by frame, hence
        block-independent).
    max_iter, tol : int, float
        NMF stopping rules, applied to every block.
    alpha_W, l1_ratio : float
        Regularisation of the activations, as for :func:`separate`.
    random_state : int or None
        Seed of the free atoms' initialisation.
    learn_passes : int
        Passes over the file of the online learning of free atoms (``n_free > 0``).
    n_threads : int or None
        Threads of the NMF kernels (default: usable cores); 1 in a batch worker.
    force : bool
        Overwrite existing stems.
    callback : callable(done, total), optional
        Progress: called after every block of every pass with the number of block
        steps done and their total (the total is exact once the first pass has
        read the whole file; before that it is estimated from the header).

    Returns
    -------
    summary : dict
        The keys of :func:`separate_file`'s summary (``input``, ``output_dir``,
        ``mode``, ``stems``, ``model`` and ``report`` (None), ``sr``, ``n_channels``, ``duration``,
        ``seconds``, ``n_iter`` (the most iterations a block took), ``converged``
        (every block converged), ``warnings``, ``settings``) plus ``n_blocks``;
        ``settings["stream"]`` records the block settings.

    Raises
    ------
    ParameterError
        Invalid parameters or unsafe names; no dictionaries.
    AudioFormatError
        The mixture cannot be read, is empty or holds NaN/Inf.
    DictionaryError
        A dictionary cannot be read or does not fit, or the mixture is not at the
        dictionaries' sample rate.
    OutputError
        A target exists (without ``force``) or the output cannot be written.
    """
    from nmfsep import io
    from nmfsep.context import expand_factors, expand_indices, stack_frames
    from nmfsep.divergence import EPSILON, beta_loss_to_float
    from nmfsep.masks import group_models, masks
    from nmfsep.nmf import nmf
    from nmfsep.separate import (
        _fallback_groups,
        _load_dictionaries,
        _plan,
        _version,
        abandon_outputs,
        check_settings,
        commit_outputs,
        dictionaries_settings,
        prepare_output_folder,
    )
    from nmfsep.spectral import model_spectrogram, stft

    start_time = time.perf_counter()
    # --- parameters ---------------------------------------------------------------
    dicts = _load_dictionaries(dictionaries)
    if not dicts:
        raise ParameterError(
            "separate_stream needs dictionaries (supervised or semi-supervised); blind "
            "separation factorises the whole file: use separate_file"
        )
    plan = _plan(None, None, dicts, n_free)
    combined = plan.dictionary
    assert combined is not None
    if not _is_real(block_seconds) or float(block_seconds) <= 0:
        raise ParameterError(f"block_seconds must be a number > 0, got {block_seconds!r}")
    check_settings(mask=mask, mask_power=mask_power, solver=solver, max_iter=max_iter, tol=tol,
                   alpha_W=alpha_W, l1_ratio=l1_ratio)
    if not _is_int(learn_passes) or learn_passes < 1:
        raise ParameterError(f"learn_passes must be an int >= 1, got {learn_passes!r}")
    if n_threads is not None and (not _is_int(n_threads) or n_threads < 1):
        raise ParameterError(f"n_threads must be None or an int >= 1, got {n_threads!r}")
    if random_state is not None and not _is_int(random_state):
        raise ParameterError(f"random_state must be an int or None, got {random_state!r}")
    if callback is not None and not callable(callback):
        raise ParameterError("callback must be callable(done, total)")
    beta_f = combined.beta if beta is None else beta_loss_to_float(beta)
    power = combined.power
    cfg = combined.stft
    sr = combined.sr
    grid = _Grid.of(cfg)
    cfg_frames = STFTConfig(n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                            win_length=cfg.win_length, window=cfg.window, center=False)
    n_bins = cfg.n_bins
    k, n_fixed = plan.k, plan.n_fixed
    n_free_atoms = k - n_fixed
    groups = _fallback_groups(plan, k)
    names = list(groups)
    # temporal context (nmfsep.context): frames are stacked within each block, so the
    # first and last frame of a block see a repeated edge frame instead of their
    # neighbour in the next block (whole-file separation sees the neighbour)
    context = combined.context_frames
    groups_1 = {name: expand_indices(idx, context) for name, idx in groups.items()}

    # --- the mixture's header -------------------------------------------------------
    src = Path(path)
    mix_name = io.check_name(src.stem)
    info = io.audio_info(src)  # missing, folder, empty or undecodable -> AudioFormatError
    if info["frames"] == 0:
        raise AudioFormatError(
            f"{src}: contains no audio samples; give a file with at least one sample"
        )
    if info["samplerate"] != sr:
        raise DictionaryError(
            f"{src}: is at {info['samplerate']} Hz but the dictionaries were learned at {sr} Hz; "
            f"streaming needs the same rate: resample the file first (e.g. ffmpeg -i IN -ar {sr} "
            "OUT.wav) or separate it whole (without --stream)"
        )
    channels = int(info["channels"])
    # frames per block; no more than the file has (a huge block_seconds reads it whole)
    fpb = max(1, min(int(round(min(float(block_seconds), 1e9) * sr / grid.hop)),
                     grid.n_frames(int(info["frames"]))))

    import soundfile as sf

    @contextlib.contextmanager
    def open_reader() -> Iterator[_Reader]:
        try:
            f = sf.SoundFile(str(src))
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
            raise AudioFormatError(
                f"{src}: cannot be read as audio ({exc}); convert it to WAV or FLAC"
            ) from exc
        with f:
            yield _Reader(f, src, channels)

    # --- the targets, checked and prepared before computing (as separate_file) -------
    for name in names:
        io.check_name(name)
    folder = Path(out_dir) / mix_name
    targets = {name: folder / f"{name}.wav" for name in names}
    anchor, created = prepare_output_folder(folder, list(targets.values()), force=force)

    # progress in block steps over every pass
    n_passes = 2 + (learn_passes if n_free_atoms else 0)
    est_blocks = -(-grid.n_frames(int(info["frames"])) // fpb)
    progress = {"done": 0, "total": est_blocks * n_passes}

    def tick() -> None:
        progress["done"] += 1
        if callback is not None:
            callback(progress["done"], max(progress["total"], progress["done"]))

    token = secrets.token_hex(4)
    temporaries = {name: folder / f".{name}.{token}.partial.wav" for name in names}
    writers: list[Any] = []
    warnings_out: list[str] = []
    from threadpoolctl import threadpool_limits

    # BLAS on one thread: the NMF kernels run their own threads on blocks of 256 frames
    # or more; on smaller blocks a multi-threaded BLAS only spins (20x slower on a busy
    # machine, measured).
    limits = threadpool_limits(limits=1, user_api="blas")
    try:
        # --- pass 1: global scale and length ------------------------------------------
        scale, n_samples, n_frames = _scan(open_reader, grid, fpb, cfg_frames, power, n_bins,
                                           tick)
        if n_samples == 0:
            raise AudioFormatError(
                f"{src}: contains no audio samples; give a file with at least one sample"
            )
        n_blocks = -(-n_frames // fpb)
        progress["total"] = n_blocks * n_passes
        silent = not scale.peak > 0
        quiet = not silent and not (scale.mean > 0 and math.isfinite(scale.mean))
        if silent:
            warnings_out.append(
                "the mixture is silent (all samples are zero); the stems are silent"
            )
        elif quiet:
            warnings_out.append(
                "the mixture is too quiet to analyse (its spectrogram underflows); the stems "
                "share it equally"
            )
        analyse = not (silent or quiet)
        norm = np.float32(scale.mean) if analyse else np.float32(1)
        v_floor = EPSILON * scale.vmax / float(norm) if analyse else 0.0
        w_start = np.sqrt(np.float32(scale.mean / float(norm)) / np.float32(k)) if analyse else 0

        def spectrogram(X: np.ndarray) -> np.ndarray:
            # frame by frame, so computing it in chunks gives the same numbers with
            # smaller temporaries
            V = np.empty((X.shape[2], n_bins), dtype=np.float32)
            for j in range(0, X.shape[2], _CHUNK):
                V[j : j + _CHUNK] = (
                    model_spectrogram(X[..., j : j + _CHUNK], power, scale=scale.peak) / norm
                )
            return V

        # --- the atoms: the dictionaries' plus, semi-supervised, free ones learned online
        H = np.zeros((k, context * n_bins), dtype=np.float32)
        H[:n_fixed] = combined.atoms
        learned: dict[str, Any] = {}
        normalize_free = bool(alpha_W > 0 and n_free_atoms > 0)
        if n_free_atoms and analyse:
            from nmfsep.online import OnlineNMF

            state = OnlineNMF(
                k, beta=beta_f, fixed_atoms=combined.atoms, normalize_atoms=normalize_free,
                eps=v_floor if beta_f <= 0 else None, random_state=random_state,
                n_threads=n_threads,
            )
            for _ in range(learn_passes):
                with open_reader() as reader:
                    for _t0, _t1, seg in _blocks(reader, grid, fpb):
                        state.partial_fit(stack_frames(spectrogram(stft(seg, cfg_frames)),
                                                       context))
                        tick()
            if state.H is not None:
                H = np.ascontiguousarray(state.H, dtype=np.float32)
            losses = np.asarray(state.losses, dtype=np.float64)
            learned = {"n_batches": state.n_batches,
                       "last_loss": float(losses[-1]) if losses.size else None}

        # --- pass 2: activations, masks, stems, written block by block ----------------
        from nmfsep.spectral import OverlapAdd

        subtype_bytes = 4 * channels * n_samples
        fmt = "WAV" if subtype_bytes + 1024 < _WAV_LIMIT else "RF64"
        for name in names:
            with _writing(folder):
                writers.append(sf.SoundFile(str(temporaries[name]), "w", samplerate=sr,
                                            channels=channels, subtype="FLOAT", format=fmt))
        G = len(names)
        # the inverse STFT of separate_file, fed block by block: a sample comes out once
        # every frame that covers it has been added
        ola = OverlapAdd(cfg, n_frames, n_samples, shape=(G, channels), dtype=np.float32)
        written = 0
        n_iter_max, all_converged = 0, True

        def write(start: int, part: np.ndarray) -> None:
            # the remainder mixture - Σ stems is shared equally among the stems, as
            # separate does, so the stems add up to the mixture
            nonlocal written
            n = part.shape[-1]
            if n == 0:
                return
            y = reader.read(start, start + n)
            share = (y - part.sum(axis=0, dtype=np.float64)) / G
            stems = part + share.astype(np.float32)[None]
            with _writing(folder):
                for g, w in enumerate(writers):
                    w.write(np.ascontiguousarray(stems[g].T))
            written = start + n

        with open_reader() as reader:
            for t0, t1, seg in _blocks(reader, grid, fpb):
                nb = t1 - t0
                X = stft(seg, cfg_frames)  # (C, n_bins, nb), the whole-file frames t0..t1-1
                if analyse:
                    V = stack_frames(spectrogram(X), context)
                    res = nmf(
                        V, k, beta=beta_f, solver=solver, init="custom", H=H,
                        W=np.full((nb, k), w_start, dtype=V.dtype), update_H=False,
                        max_iter=max_iter, tol=tol, alpha_W=alpha_W, alpha_H=0.0,
                        l1_ratio=l1_ratio, eps=v_floor if v_floor > 0 else None,
                        n_threads=n_threads, warn=False,
                    )
                    W = np.asarray(res.W, dtype=np.float32)
                    n_iter_max = max(n_iter_max, int(res.n_iter))
                    all_converged = all_converged and bool(res.converged)
                else:
                    W = np.zeros((nb, k), dtype=np.float32)
                W, H_1 = expand_factors(W, H, context)  # single-frame atoms (context.py)
                frames = X.transpose(0, 2, 1)  # (C, nb, n_bins)
                # masks and inverse FFTs a chunk of frames at a time: masks are frame by
                # frame, so chunks change nothing (frames past the end are ignored by ola)
                for j0 in range(0, nb, _CHUNK):
                    j1 = min(nb, j0 + _CHUNK)
                    M = masks(group_models(W[j0:j1], H_1, groups_1), kind=mask,
                              power=float(mask_power))
                    write(*ola.push(M[:, None] * frames[None, :, j0:j1]))
                    del M
                del W, X, frames
                tick()
            write(*ola.finish())
        if written != n_samples:
            raise AudioFormatError(
                f"{src}: changed while it was being separated ({written} of {n_samples} "
                "samples); separate it again"
            )
        with _writing(folder):
            for w in writers:
                w.close()
        commit_outputs([(temporaries[n], targets[n]) for n in names], force=force)
    except BaseException as exc:
        for w in writers:
            try:
                w.close()
            except Exception:  # noqa: BLE001 - cleaning up after the real error
                pass
        error = abandon_outputs(exc, list(temporaries.values()), folder, anchor, created)
        if error is not None:
            raise error from exc
        raise
    finally:
        limits.restore_original_limits()

    settings = {
        "mode": plan.mode,
        "n_components": k,
        "n_sources": None,
        "n_free": n_free_atoms,
        "beta": beta_f,
        "power": power,
        "mask": mask,
        "mask_power": float(mask_power),
        "grouping": None,
        "solver": solver,
        "max_iter": int(max_iter),
        "tol": float(tol),
        "alpha_W": float(alpha_W),
        "l1_ratio": float(l1_ratio),
        "random_state": random_state,
        "dictionaries": dictionaries_settings(dicts),
        "sr": sr,
        "stft": cfg.to_dict(),
        "analysis_sr": sr,
        "analysis_stft": cfg.to_dict(),
        "context_frames": context,
        "nmfsep_version": _version(),
        "stream": {
            "block_seconds": float(block_seconds),
            "block_frames": fpb,
            "n_blocks": n_blocks,
            "free_atoms": "online" if n_free_atoms else None,
            "learn_passes": learn_passes if n_free_atoms else None,
            **({"online": learned} if learned else {}),
        },
    }
    return {
        "input": str(src),
        "output_dir": str(folder),
        "mode": plan.mode,
        "stems": {name: str(targets[name]) for name in names},
        "model": None,
        "report": None,
        "sr": int(sr),
        "n_channels": channels,
        "duration": float(n_samples / sr),
        "seconds": round(time.perf_counter() - start_time, 3),
        "n_iter": n_iter_max,
        "converged": all_converged,
        "warnings": warnings_out,
        "settings": settings,
        "n_blocks": n_blocks,
    }
