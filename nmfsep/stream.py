"""Separation of a recording of any length, block by block (supervised, semi-supervised, blind).

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

Blind (``n_components``, ``n_sources``)
---------------------------------------
Every atom is learned online over the whole file as the free atoms above
(:class:`nmfsep.online.OnlineNMF`, ``learn_passes`` passes, separate's blind
defaults: the file's rate, :meth:`~nmfsep.spectral.STFTConfig.for_sample_rate`,
Kullback-Leibler), then frozen; each block's activations and masks follow as in
supervised mode, and the stems are named as :func:`separate` names them
(``component_01`` ..., or ``source_1`` ... with ``n_sources``). Grouping into
``n_sources`` cannot see the whole ``W``: it uses the learned atoms and the
statistics (frame count, column sums, Gram matrix) of the activations that the
last online pass solved, accumulated block by block
(:class:`nmfsep.grouping.ActivationStats`). The default grouping (``"timbre"``;
``"kmeans"`` from three sources on) clusters the atoms alone, as whole-file
separation does; the statistics order the groups
by spectral centroid and give ``"activations"``/``"combined"`` their
correlations (equal to the whole-``W`` ones for the same ``W``,
tests/test_grouping.py). The atoms are a different estimate than whole-file
NMF's (a few online updates per block instead of 200 iterations over all
frames): on short files blind streams separate worse than ``separate`` (the
8-second piano + flute sample: 0.4 dB summed SDR against 9.9 dB whole-file, one
pass of 2 s blocks); long files give the online learning many more updates.

Stereo and more channels
------------------------
Multichannel input gets the model of ``separate``'s ``spatial``
(:meth:`~nmfsep.plan.SeparationParams.spatial_for`; "gains" by default): every
block is factorised with a gain per channel and source (:func:`nmfsep.ntf.ntf`,
the atoms fixed, the free ones too once learned online) and its stems come from
the spatial Wiener filter of that block (:mod:`nmfsep.spatial_wiener`,
``wiener_iter`` EM iterations on the block's frames). So the gains and the
spatial covariances are those of each block (a whole-file run estimates them
once for the file), and with dictionaries a block is separated as ``separate``
separates a mixture of that length: with a single block, the stems are
``separate``'s to within the convergence tolerance (tests/test_stream.py). The
first pass adds up the pan histogram of the whole file, so a mixture whose
sources all sit at one place takes the shared model, as in ``separate``
(:data:`~nmfsep.plan.MIN_PAN_SPREAD`).
Blind streams learn their atoms online from the channels combined and group them
by timbre and position (below; the positions are the components' shares of each
channel in the last online pass, :func:`nmfsep.ntf.initial_gains`), then fit
every block's activations with a gain per channel and component.

Relearn
-------
Where ``relearn`` applies (:func:`nmfsep.relearn.should_relearn`), whole-file
separation learns more atoms for every source from its first-pass stem. A stream
cannot hold those stems: its first pass separates only the excerpts the atoms are
learned from (:func:`nmfsep.relearn.excerpt_spans`: six 5-second excerpts spread
over a long file, or the whole file up to 30 s), each as a mixture of its own, then
every block is separated with the widened dictionaries (for a file of up to 30 s,
the atoms ``separate`` learns).

Sample rate
-----------
With dictionaries, the mixture must be at their sample rate; otherwise a
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

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nmfsep import io
from nmfsep._checks import check_callable, check_int, check_real, fail, is_int
from nmfsep.builtins import dictionary_files
from nmfsep.context import expand_factors, expand_indices, stack_frames
from nmfsep.dictionary import Dictionary, default_power
from nmfsep.divergence import EPSILON, beta_loss_to_float
from nmfsep.exceptions import AudioFormatError, DictionaryError, ParameterError
from nmfsep.grouping import ActivationStats, GroupingMethod, group_components_stats
from nmfsep.masks import ChannelMasks, MaskKind, group_models, masks
from nmfsep.nmf import blas_single_thread, nmf
from nmfsep.ntf import (
    PAN_SPREAD_BINS,
    gain_positions,
    histogram_spread,
    initial_gains,
    pan_histogram,
)
from nmfsep.online import OnlineNMF
from nmfsep.plan import (
    DEFAULT_RELEARN,
    HARMONIC_FIT_RATIO,
    MIN_PAN_SPREAD,
    Plan,
    SeparationParams,
    fallback_groups,
    file_summary,
    gain_warnings,
    load_dictionaries,
    make_plan,
    output_folder,
    plain_plan,
    settings_record,
)
from nmfsep.relearn import check_relearn, excerpt_spans, relearned, should_relearn
from nmfsep.separate import (
    analysis_grids,
    factorize_gains,
    filter_iterations,
    separate,
    short_warning,
    spatial_filter,
)
from nmfsep.spectral import FrameGrid, OverlapAdd, STFTConfig, model_spectrogram, stft

__all__ = ["separate_stream", "DEFAULT_BLOCK_SECONDS", "DEFAULT_LEARN_PASSES"]

#: Seconds of audio per block: long enough that the per-block overhead is small,
#: short enough that a block of 44.1 kHz stereo takes a few hundred MB.
DEFAULT_BLOCK_SECONDS = 30.0
#: Passes of the online learning of free atoms (semi-supervised mode only).
DEFAULT_LEARN_PASSES = 1

#: Frames per step inside a block for the spectrogram, masks and synthesis (their
#: temporaries are this size, not the block's).
_CHUNK = 256


def separate_stream(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "separated",
    *,
    dictionaries: Sequence[Dictionary | str | os.PathLike[str]] = (),
    n_free: int = 0,
    n_components: int | None = None,
    n_sources: int | None = None,
    grouping: GroupingMethod | None = None,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    beta: str | float | None = None,
    mask: MaskKind = "soft",
    mask_power: float | None = None,
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
    format: str = "wav",
    subtype: str | None = None,
    name: str | None = None,
    spatial: str | None = None,
    harmonic: str = "auto",
    wiener_iter: int | None = None,
    relearn: str = DEFAULT_RELEARN,
    other_inputs: Sequence[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """Separate an audio file of any length block by block; write ``out_dir/<mix stem>/<stem>.wav``.

    Supervised (``dictionaries``) or semi-supervised (``n_free > 0``) separation
    with the settings and the output of :func:`nmfsep.files.separate_file`, in
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
        Exponent of the soft mask, > 0 (:data:`nmfsep.plan.SUPERVISED_MASK_POWER`).
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
    format, subtype, name : str or None
        Stem file format, sample type and output folder, as for
        :func:`nmfsep.files.separate_file`.
    spatial : {"shared", "gains"} or None
        As for :func:`nmfsep.separate`: "gains" fits every block's gains (with the atoms
        fixed, learned online when blind) and filters its stems from the channels
        together (module documentation).
    harmonic : {"auto", "on", "off"}
        As for :func:`nmfsep.separate`, but "auto" compares the fits with and without
        harmonic atoms on the first block only (channels combined), and keeps that
        choice for every block.
    wiener_iter : int or None
        As for :func:`nmfsep.separate`: EM iterations of every block's spatial Wiener
        filter with the gains model (0: per-channel masks); None:
        :data:`nmfsep.spatial_wiener.WIENER_ITER`.
    relearn : {"auto", "on", "off"}
        As for :func:`nmfsep.separate`: where it applies, every dictionary is widened
        by atoms learned from first-pass stems before the blocks are separated; the
        first pass separates only the excerpts they are learned from
        (:func:`nmfsep.relearn.excerpt_spans`: the whole file up to 30 s, else six
        excerpts spread over it), each as a mixture of its own.
    other_inputs : sequence of paths
        Other files the run reads (dictionary files loaded by the caller): no output
        may be one of them, ``force`` or not.

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
        Invalid parameters or unsafe names; no dictionaries; a ``format`` that
        cannot hold the mixture (:func:`nmfsep.io.check_format_fits`).
    AudioFormatError
        The mixture cannot be read, is empty or holds NaN/Inf.
    DictionaryError
        A dictionary cannot be read or does not fit, or the mixture is not at the
        dictionaries' sample rate.
    OutputError
        A target exists (without ``force``) or the output cannot be written.
    """
    start_time = time.perf_counter()
    plan = make_plan(n_components, n_sources, load_dictionaries(dictionaries), n_free,
                     harmonic=harmonic)
    params = SeparationParams(
        beta=beta, mask=mask, mask_power=mask_power, grouping=grouping, solver=solver,
        max_iter=max_iter, tol=tol, alpha_W=alpha_W, l1_ratio=l1_ratio,
        random_state=random_state, spatial=spatial, wiener_iter=wiener_iter,
        relearn=relearn,
    ).validate()
    check_relearn(relearn, plan, None, 0)
    check_real(block_seconds, "block_seconds", strict=True)
    check_int(learn_passes, "learn_passes", 1)
    check_int(n_threads, "n_threads", 1, none_ok=True)
    if random_state is not None and not is_int(random_state):
        raise fail("random_state", "an int or None", random_state)
    check_callable(callback, "callback", "callable(done, total)")
    src = Path(path)
    folder = output_folder(src, out_dir, name)
    fmt = io.audio_format(format, subtype)
    outputs = io.output_files(folder, plan.names, ext=fmt.ext)
    run = _Run.start(src, plan, params, float(block_seconds), n_threads)
    io.check_format_fits(fmt, run.channels, run.sr, src)
    n_passes = 2 + (learn_passes if plan.n_free else 0)  # blind: n_free == k
    progress = _Progress(callback, -(-run.grid.n_frames(run.file_frames) // run.fpb) * n_passes)
    with blas_single_thread(), io.OutputTransaction(
        folder, outputs.all(), force=force,
        inputs=[src, *dictionary_files(dictionaries), *other_inputs],
    ) as out:
        # BLAS on one thread: the NMF kernels run their own threads on blocks of 256
        # frames or more; on smaller blocks a multi-threaded BLAS only spins (20x slower
        # on a busy machine, measured).
        warnings_out = run.scan(progress)
        run = run.choose_harmonic()
        run, relearn_record = run.relearn()
        plan = run.plan
        progress.total = run.n_blocks * n_passes
        learned = run.learn_free_atoms(learn_passes, progress)
        writers = [out.audio_writer(outputs.stems[g], run.sr, run.channels, run.n_samples, fmt)
                   for g in plan.names]
        n_iter_max, all_converged = run.write_stems(writers, progress)
        out.commit()
    stream = {
        "block_seconds": float(block_seconds),
        "block_frames": run.fpb,
        "n_blocks": run.n_blocks,
        "free_atoms": "online" if plan.n_free else None,
        **({"grouping": "atoms, activations of the last online pass"}
           if plan.n_sources is not None else {}),
        "learn_passes": learn_passes if plan.n_free else None,
        **({"online": learned} if learned else {}),
    }
    warnings_out = [*warnings_out, *gain_warnings(out.gain, fmt),
                    *([plan.harmonic_note] if plan.harmonic_note else []),
                    *outputs.leftover_warnings()]
    return run.summary(outputs, stream, warnings_out, n_iter_max, all_converged,
                       seconds=time.perf_counter() - start_time, relearn=relearn_record)


class _Progress:
    """Block steps done over every pass, reported to ``callback(done, total)``."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int):
        self.callback = callback
        self.done = 0
        self.total = total

    def tick(self) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, max(self.total, self.done))


def _header(src: Path, sr: int | None) -> tuple[int, int, int]:
    """Return the mixture's channels, frames and rate (header only); refuse another rate.

    ``sr``: the dictionaries' rate, or None (blind: any rate).
    """
    info = io.audio_info(src)  # missing, folder, empty or undecodable -> AudioFormatError
    if info["frames"] == 0:
        raise AudioFormatError(
            f"{src}: contains no audio samples; give a file with at least one sample"
        )
    if sr is not None and info["samplerate"] != sr:
        raise DictionaryError(
            f"{src}: is at {info['samplerate']} Hz but the dictionaries were learned at {sr} Hz; "
            f"streaming needs the same rate: resample the file first (e.g. ffmpeg -i IN -ar {sr} "
            "OUT.wav) or separate it whole (without --stream)"
        )
    return int(info["channels"]), int(info["frames"]), int(info["samplerate"])


@dataclass
class _Run:
    """A streamed separation: its settings, the global scale and the atoms."""

    src: Path
    plan: Plan
    params: SeparationParams
    n_threads: int | None
    beta: float
    power: float
    cfg: STFTConfig
    grid: FrameGrid
    fpb: int  # frames per block
    channels: int
    file_frames: int  # samples per channel the header declares
    H: np.ndarray  # (k, context * n_bins): the dictionaries' atoms, then the free ones
    sr: int
    context: int
    groups: dict[str, list[int]]  # fallback_groups until blind atoms are grouped
    n_samples: int = 0
    n_frames: int = 0
    n_blocks: int = 0
    analyse: bool = False  # False for a silent or underflowing mixture
    fit_ratio: float | None = None  # harmonic atoms' fit / the plain atoms' (first block)
    norm: np.float32 = np.float32(1)
    peak: float = 0.0
    v_floor: float = 0.0
    w_level: Any = 0  # mean of the scaled spectrogram: W starts at sqrt(w_level / k)
    spatial: str = "shared"  # "gains": a gain per channel and source, block by block
    grids: Any = None  # separate's analysis settings (the gains model's β and power)
    pan: Any = None  # the pan histogram's weights (stereo "gains"), added up by scan

    @classmethod
    def start(cls, src: Path, plan: Plan, params: SeparationParams, block_seconds: float,
              n_threads: int | None) -> _Run:
        combined = plan.dictionary
        channels, frames, sr = _header(src, None if combined is None else combined.sr)
        if combined is None:  # blind: separate's defaults for the file's rate
            beta = 1.0 if params.beta is None else beta_loss_to_float(params.beta)
            power, cfg, context = default_power(beta), STFTConfig.for_sample_rate(sr), 1
        else:
            beta = combined.beta if params.beta is None else beta_loss_to_float(params.beta)
            power, cfg, context = combined.power, combined.stft, combined.context_frames
        grid = FrameGrid.of(cfg)
        # frames per block; no more than the file has (a huge block_seconds reads it whole)
        fpb = max(1, min(int(round(min(block_seconds, 1e9) * sr / grid.hop)),
                         grid.n_frames(frames)))
        H = np.zeros((plan.k, context * cfg.n_bins), dtype=np.float32)
        if combined is not None:
            H[: plan.n_fixed] = combined.atoms
        spatial = params.spatial_for(channels, plan)
        return cls(src=src, plan=plan, params=params, n_threads=n_threads, beta=beta,
                   power=power, cfg=cfg, grid=grid, fpb=fpb, channels=channels,
                   file_frames=frames, H=H, sr=sr, context=context,
                   groups=fallback_groups(plan), spatial=spatial,
                   grids=analysis_grids(plan, params, sr) if spatial == "gains" else None)

    def blocks(self) -> Any:
        """Yield ``(t0, t1, X)``: the whole-file STFT frames ``t0 .. t1 - 1`` block by block."""
        cfg = self.cfg
        frames_cfg = STFTConfig(n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                win_length=cfg.win_length, window=cfg.window, center=False)
        with io.open_blocks(self.src) as reader:
            self.reader = reader
            for t0, t1, seg in io.read_blocks(reader, self.grid, self.fpb):
                yield t0, t1, stft(seg, frames_cfg)

    def scan(self, progress: _Progress) -> list[str]:
        """First pass: the global scale of the spectrogram and the file's length."""
        peak, mean, vmax = self._levels(progress)
        if self.n_samples == 0:
            raise AudioFormatError(
                f"{self.src}: contains no audio samples; give a file with at least one sample"
            )
        self.n_blocks = -(-self.n_frames // self.fpb)
        if self.plan.mode == "blind" and self.plan.k > self.n_frames:
            raise ParameterError(
                f"n_components={self.plan.k} is more than the {self.n_frames} STFT frames of "
                f"the mixture; use n_components <= {self.n_frames} or a longer mixture"
            )
        self.peak = peak
        if self.pan is not None and histogram_spread(*self.pan) < MIN_PAN_SPREAD:
            self.spatial = "shared"  # every source at one place, as separate decides
        short = short_warning(self.n_samples, self.sr, self.cfg.n_fft, self.sr)
        if not peak > 0:
            return ["the mixture is silent (all samples are zero); the stems are silent"]
        if not (mean > 0 and math.isfinite(mean)):
            return ["the mixture is too quiet to analyse (its spectrogram underflows); the "
                    "stems share it equally"]
        self.analyse = True
        self.norm = np.float32(mean)
        self.v_floor = EPSILON * vmax / float(self.norm)
        self.w_level = np.float32(mean / float(self.norm))
        return [short] if short else []

    def _levels(self, progress: _Progress) -> tuple[float, float, float]:
        """Return the peak of |X|, and the mean and max of the spectrogram scaled by it.

        As :func:`nmfsep.separate.separate` computes them on the whole file; the sums
        are kept relative to the running peak (no under- or overflow).
        """
        peak = total = vmax = 0.0
        stereo_gains = self.spatial == "gains" and self.channels == 2
        centres, pan = np.zeros(PAN_SPREAD_BINS), np.zeros(PAN_SPREAD_BINS)
        for t0, t1, X in self.blocks():
            self.n_frames += t1 - t0
            p_b = max(float(np.abs(X[..., j : j + _CHUNK]).max())
                      for j in range(0, X.shape[2], _CHUNK))
            if p_b > 0:
                s_b = m_b = 0.0
                pan_b = np.zeros(PAN_SPREAD_BINS)
                for j in range(0, X.shape[2], _CHUNK):
                    V = model_spectrogram(X[..., j : j + _CHUNK], self.power, scale=p_b)
                    s_b += float(V.sum(dtype=np.float64))
                    m_b = max(m_b, float(V.max()))
                    if stereo_gains:  # separate's pan_spread, a chunk at a time
                        Vc = self.channel_spectrograms(X[..., j : j + _CHUNK], scale=p_b)
                        centres, w = pan_histogram(Vc, power=self.power,
                                                   n_bins=PAN_SPREAD_BINS)
                        pan_b += w * float(Vc.sum(dtype=np.float64))
                if p_b > peak:
                    r = (peak / p_b) ** self.power if peak > 0 else 0.0
                    total, vmax, peak = total * r, vmax * r, p_b
                    total += s_b
                    vmax = max(vmax, m_b)
                    pan = pan * r + pan_b
                else:
                    r = (p_b / peak) ** self.power
                    total += s_b * r
                    vmax = max(vmax, m_b * r)
                    pan += pan_b * r
            progress.tick()
        if stereo_gains:
            self.pan = (centres, pan)
        reader = self.reader
        self.n_samples = reader.n if reader.n is not None else reader.pos
        n_bins = self.cfg.n_bins
        mean = total / (self.n_frames * n_bins) if self.n_frames else 0.0
        return peak, mean, vmax

    def spectrogram(self, X: np.ndarray) -> np.ndarray:
        """Return the scaled spectrogram of a block, frames stacked (``separate``'s V)."""
        # frame by frame, so computing it in chunks gives the same numbers with
        # smaller temporaries
        V = np.empty((X.shape[2], self.cfg.n_bins), dtype=np.float32)
        for j in range(0, X.shape[2], _CHUNK):
            V[j : j + _CHUNK] = (
                model_spectrogram(X[..., j : j + _CHUNK], self.power, scale=self.peak)
                / self.norm
            )
        return stack_frames(V, self.context)

    def channel_spectrograms(self, X: np.ndarray, scale: float | None = None) -> np.ndarray:
        """Return every channel's spectrogram of a block, ``(n_channels, n_frames, n_cols)``.

        Scaled as :meth:`spectrogram` (``scale``: the peak only, unnormalised) and with
        the frames stacked when ``scale`` is None.
        """
        C, nb = X.shape[0], X.shape[2]
        V = np.empty((C, nb, self.cfg.n_bins), dtype=np.float32)
        for c in range(C):
            for j in range(0, nb, _CHUNK):
                V[c, j : j + _CHUNK] = model_spectrogram(
                    X[c : c + 1, :, j : j + _CHUNK], self.power,
                    scale=self.peak if scale is None else scale)
        if scale is not None:
            return V
        V /= self.norm
        return stack_frames(V, self.context)

    def learn_free_atoms(self, passes: int, progress: _Progress) -> dict[str, Any]:
        """Learn the free atoms online over the whole file, then freeze them.

        Semi-supervised: the free atoms beside the dictionaries'; blind: every atom,
        then grouped into ``n_sources`` (:meth:`group`).
        """
        if not (self.plan.n_free and self.analyse):
            return {}
        combined = self.plan.dictionary
        state = OnlineNMF(
            self.plan.k, beta=self.beta,
            fixed_atoms=None if combined is None else combined.atoms,
            normalize_atoms=bool(self.params.alpha_W > 0),
            eps=self.v_floor if self.beta <= 0 else None,
            random_state=self.params.random_state, n_threads=self.n_threads,
        )
        stats = ActivationStats(self.plan.k)
        # blind with gains: every component's channel shares, energy-weighted, so the
        # grouping sees positions as whole-file separation's does
        shares = (np.zeros((self.channels, self.plan.k))
                  if self.spatial == "gains" and self.plan.mode == "blind" else None)
        for i in range(passes):
            for _t0, _t1, X in self.blocks():
                state.partial_fit(self.spectrogram(X))
                if i == passes - 1 and state.last_W is not None:
                    stats.update(state.last_W)
                    if shares is not None and state.H is not None:
                        shares += self._channel_shares(X, state.last_W, state.H)
                progress.tick()
        if state.H is not None:
            self.H = np.ascontiguousarray(state.H, dtype=np.float32)
            self.group(stats, None if shares is None else gain_positions(
                shares / np.maximum(shares.sum(axis=0), np.finfo(np.float64).tiny),
                self.power))
        losses = np.asarray(state.losses, dtype=np.float64)
        return {"n_batches": state.n_batches,
                "last_loss": float(losses[-1]) if losses.size else None}

    def _channel_shares(self, X: np.ndarray, W: np.ndarray, H: np.ndarray) -> np.ndarray:
        """Every component's share of every channel in a block, times its energy there.

        ``(n_channels, k)``: the ``"share"`` gains of :func:`nmfsep.ntf.initial_gains`
        for the block's activations ``W`` and the atoms ``H``, each column times
        ``Σ_t W[t, k] Σ_f H[k, f]``.
        """
        Q = initial_gains(self.channel_spectrograms(X), W, H, method="share",
                          power=self.power)
        return Q * (W.sum(axis=0, dtype=np.float64) * H.sum(axis=1, dtype=np.float64))

    def group(self, stats: ActivationStats, positions: np.ndarray | None = None) -> None:
        """Blind with ``n_sources``: group the learned atoms into sources.

        From the atoms and the statistics of the activations that the last online
        pass solved (:func:`nmfsep.grouping.group_components_stats`): the default
        ``"timbre"`` clusters the atoms alone, as whole-file separation does, and
        with the components' ``positions`` (``(k, n_channels)``,
        :func:`nmfsep.ntf.gain_positions`) when given; the statistics order the
        groups and give the other criteria's correlations.
        """
        plan = self.plan
        if plan.mode != "blind" or plan.n_sources is None:
            return
        self.groups = group_components_stats(
            stats, self.H, plan.n_sources, method=self.params.grouping_for(plan),
            sr=self.sr, n_fft=self.cfg.n_fft, positions=positions,
        )

    def activations(self, X: np.ndarray) -> tuple[np.ndarray, int, bool]:
        """Solve a block's activations with every atom fixed; return W, n_iter, converged."""
        if not self.analyse:
            return np.zeros((X.shape[2], self.plan.k), dtype=np.float32), 0, True
        res = self._fit_block(self.spectrogram(X), self.H)
        return np.asarray(res.W, dtype=np.float32), int(res.n_iter), bool(res.converged)

    def channel_masks(self, X: np.ndarray, groups_1: dict[str, list[int]]
                      ) -> tuple[Callable[[int, int], np.ndarray], int, bool]:
        """Return a block's masks by the gains model, through its spatial Wiener filter.

        Returns
        -------
        masks_of : callable(j0, j1) -> np.ndarray [shape=(n_groups, n_channels, j1 - j0, n_bins)]
            The masks of the block's frames ``j0 .. j1 - 1`` (complex with the filter).
        n_iter : int
        converged : bool
        """
        V = self.channel_spectrograms(X)
        C, k = X.shape[0], self.plan.k
        sounding = self.analyse and bool(V.any())
        if sounding:
            res = factorize_gains(V, self.plan, self.params, self.grids, None, fixed=self.H)
            W, Q = np.asarray(res.W, np.float32), np.asarray(res.Q, np.float32)
            n_iter, converged = int(res.n_iter), bool(res.converged)
        else:
            W = np.zeros((V.shape[1], k), dtype=np.float32)
            Q = np.full((C, k), 1.0 / C, dtype=np.float32)
            n_iter, converged = 0, True
        del V
        W, H_1 = expand_factors(W, self.H, self.context)  # single-frame atoms
        Q = np.repeat(Q, self.context, axis=1)
        masks_of: Callable[[int, int], np.ndarray] = ChannelMasks(
            W, H_1, Q, groups_1, kind=self.params.mask,
            power=self.params.mask_power_for(self.plan))
        n_wiener = filter_iterations(self.params, len(groups_1))
        if sounding and n_wiener:
            masks_of = spatial_filter(X, masks_of, W, H_1, Q, groups_1, self.power, n_wiener)
        return masks_of, n_iter, converged

    def _fit_block(self, V: np.ndarray, H: np.ndarray) -> Any:
        """:func:`nmf` of a block's spectrogram ``V`` against the fixed atoms ``H``."""
        p, (nb, k) = self.params, (V.shape[0], H.shape[0])
        w_start = np.sqrt(self.w_level / np.float32(k))
        return nmf(
            V, k, beta=self.beta, solver=p.solver, init="custom", H=H,
            W=np.full((nb, k), w_start, dtype=V.dtype), update_H=False,
            max_iter=p.max_iter, tol=p.tol, alpha_W=p.alpha_W, alpha_H=0.0,
            l1_ratio=p.l1_ratio, eps=self.v_floor if self.v_floor > 0 else None,
            n_threads=self.n_threads, warn=False,
        )

    def choose_harmonic(self) -> _Run:
        """Return the run with or without the harmonic atoms, by the first block's fits.

        Where ``plan.harmonic_choice``, the first block is fitted with and without them
        and they are kept when the ratio of the divergences is below
        :data:`~nmfsep.plan.HARMONIC_FIT_RATIO` (whole-file separation decides on its
        first :data:`~nmfsep.plan.HARMONIC_CHOICE_SECONDS`); ``fit_ratio`` records it.
        """
        if not (self.plan.harmonic_choice and self.analyse and self.params.max_iter > 0):
            return self
        plain = plain_plan(self.plan)
        assert plain.dictionary is not None  # harmonic_choice: supervised
        blocks = self.blocks()
        try:
            _, _, X = next(blocks)
        finally:
            blocks.close()
        V = self.spectrogram(X)
        d_plain = self._fit_block(V, plain.dictionary.atoms).loss
        d_harm = self._fit_block(V, self.H).loss
        self.fit_ratio = float(d_harm / d_plain) if d_plain > 0 else 1.0
        if self.fit_ratio < HARMONIC_FIT_RATIO:
            return self
        return replace(self, plan=plain, H=np.ascontiguousarray(plain.dictionary.atoms),
                       groups=fallback_groups(plain))

    def relearn(self) -> tuple[_Run, dict[str, Any]]:
        """Return the run with its dictionaries widened by relearn, and the record.

        Where :func:`nmfsep.relearn.should_relearn` says so: the excerpts of
        :func:`nmfsep.relearn.excerpt_spans` are read and separated one by one
        (:func:`nmfsep.separate.separate`, the run's settings, one pass), every
        source's dictionary learns atoms from its stems (:func:`relearned`), and the
        harmonic choice is made again with them, as the second pass of ``separate``.
        """
        record: dict[str, Any] = {"setting": self.params.relearn, "passes": 1}
        if not (self.analyse and should_relearn(self.params.relearn, self.plan, None, 0)):
            return self, record
        p, names = self.params, list(self.plan.names)
        excerpts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        with io.open_blocks(self.src) as reader:
            for a, b in excerpt_spans(self.n_samples, self.sr):
                res = separate(
                    reader.read(a, b), self.sr, dictionaries=self.plan.dictionaries,
                    harmonic="on", relearn="off", beta=p.beta, mask=p.mask,
                    mask_power=p.mask_power, solver=p.solver, max_iter=p.max_iter, tol=p.tol,
                    alpha_W=p.alpha_W, l1_ratio=p.l1_ratio, spatial=self.spatial,
                    wiener_iter=p.wiener_iter, n_threads=self.n_threads)
                for n in names:
                    excerpts[n].append(res.stems[n])
        dicts = relearned(self.plan.dictionaries, excerpts, self.sr)
        plan = make_plan(None, None, dicts, 0, False,
                         "auto" if self.plan.harmonic_choice else "on")
        H = np.ascontiguousarray(plan.dictionary.atoms)  # type: ignore[union-attr]
        again = replace(self, plan=plan, H=H, groups=fallback_groups(plan)).choose_harmonic()
        record.update(passes=2, first_pass="excerpts", added_atoms={
            d.names[0]: d.training.get("relearned", {}).get("atoms", 0) for d in dicts})
        return again, record

    def summary(self, outputs: io.OutputFiles, stream: dict[str, Any], warnings: list[str],
                n_iter: int, converged: bool, *, seconds: float,
                relearn: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return :func:`separate_stream`'s summary (``separate_file``'s keys + ``n_blocks``)."""
        settings = settings_record(self.plan, self.params, beta=self.beta, power=self.power,
                                   sr=self.sr, stft=self.cfg, analysis_sr=self.sr,
                                   analysis_stft=self.cfg, spatial=self.spatial,
                                   harmonic_fit_ratio=self.fit_ratio)
        if self.spatial == "gains":
            settings["wiener_iter"] = filter_iterations(self.params, len(self.plan.names))
        settings["stream"] = stream
        if relearn is not None:
            settings["relearn"] = relearn
        summary = file_summary(self.src, outputs, settings, sr=self.sr,
                               n_channels=self.channels, n_samples=self.n_samples,
                               seconds=seconds, n_iter=n_iter, converged=converged,
                               warnings=warnings)
        return {**summary, "n_blocks": self.n_blocks}

    def write_stems(self, writers: list[io.WavWriter], progress: _Progress) -> tuple[int, bool]:
        """Second pass: activations, masks and stems, written block by block."""
        groups_1 = {name: expand_indices(idx, self.context)
                    for name, idx in self.groups.items()}
        G = len(writers)
        # the inverse STFT of separate_file, fed block by block: a sample comes out once
        # every frame that covers it has been added
        ola = OverlapAdd(self.cfg, self.n_frames, self.n_samples, shape=(G, self.channels),
                         dtype=np.float32)
        written = 0
        n_iter_max, all_converged = 0, True
        mask_power = self.params.mask_power_for(self.plan)

        def write(start: int, part: np.ndarray) -> None:
            # the remainder mixture - Σ stems is shared equally among the stems, as
            # separate does, so the stems add up to the mixture
            nonlocal written
            n = part.shape[-1]
            if n == 0:
                return
            y = self.reader.read(start, start + n)
            share = (y - part.sum(axis=0, dtype=np.float64)) / G
            stems = part + share.astype(np.float32)[None]
            for g, w in enumerate(writers):
                w.write(stems[g])
            written = start + n

        for t0, t1, X in self.blocks():
            if self.spatial == "gains":
                masks_of, n_iter, converged = self.channel_masks(X, groups_1)
            else:
                W, n_iter, converged = self.activations(X)
                W, H_1 = expand_factors(W, self.H, self.context)  # single-frame atoms

                def masks_of(j0: int, j1: int, W: np.ndarray = W, H: np.ndarray = H_1
                             ) -> np.ndarray:  # the same masks for every channel
                    return masks(group_models(W[j0:j1], H, groups_1), kind=self.params.mask,
                                 power=mask_power)[:, None]
            n_iter_max, all_converged = max(n_iter_max, n_iter), all_converged and converged
            frames = X.transpose(0, 2, 1)  # (C, nb, n_bins)
            # masks and inverse FFTs a chunk of frames at a time: masks are frame by
            # frame, so chunks change nothing (frames past the end are ignored by ola)
            for j0 in range(0, t1 - t0, _CHUNK):
                j1 = min(t1 - t0, j0 + _CHUNK)
                M = masks_of(j0, j1)
                write(*ola.push(M * frames[None, :, j0:j1]))
                del M
            del masks_of, X, frames
            progress.tick()
        write(*ola.finish())
        if written != self.n_samples:
            raise AudioFormatError(
                f"{self.src}: changed while it was being separated ({written} of "
                f"{self.n_samples} samples); separate it again"
            )
        return n_iter_max, all_converged
