"""Separating audio files: load, separate, write every output or none.

:func:`separate_file` is the file boundary of :func:`nmfsep.separate.separate`:
it names every output (:func:`nmfsep.io.output_files`), checks them before
computing, writes the stems block by block as they are computed through one
all-or-nothing transaction (:class:`nmfsep.io.OutputTransaction`), and optionally
saves the model and writes the listening report (:mod:`nmfsep.report`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nmfsep import io
from nmfsep._checks import check_int
from nmfsep.auto_sources import is_auto, plan_for
from nmfsep.builtins import dictionary_files
from nmfsep.exceptions import ParameterError
from nmfsep.ntf import GAINS_CACHE_BYTES
from nmfsep.plan import (
    Plan,
    SeparationParams,
    file_summary,
    gain_warnings,
    load_dictionaries,
    output_folder,
)
from nmfsep.report import write_report
from nmfsep.separate import analyse, check_mixture, stem_blocks
from nmfsep.spatial_wiener import MAX_WIENER_SOURCES
from nmfsep.spectral import STFTConfig

__all__ = ["separate_file", "estimate_memory", "default_memory", "stream_reason"]

#: Share of the machine's physical memory that whole-file separation may use by
#: default before :func:`separate_file` streams (``memory="auto"``).
DEFAULT_MEMORY_FRACTION = 0.5
#: Peak memory of whole-file separation besides the arrays that grow with the file
#: (interpreter, numpy, scipy, soundfile, numba kernels), bytes.
_BASE_BYTES = 200 * 2**20
#: Temporaries on top of the audio, its STFT and the spectrogram: the measured peak of
#: separate_file over that sum (1.17 for 10 minutes of 44.1 kHz stereo,
#: benchmarks/bench_long.py), rounded up.
_OVERHEAD = 1.25

_MODE_KEYS = ("n_components", "n_sources", "dictionaries", "n_free", "percussive",
              "harmonic")
_RUN_KEYS = ("callback", "n_threads")
_STREAM_KEYS = ("block_seconds", "learn_passes")  # used only when the file is streamed


def separate_file(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "separated",
    *,
    force: bool = False,
    save_model: bool = False,
    report: bool = False,
    format: str = "wav",
    subtype: str | None = None,
    name: str | None = None,
    memory: int | str | None = None,
    other_inputs: Sequence[str | os.PathLike[str]] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """Separate an audio file and write ``out_dir/<mix stem>/<stem>.wav``, all or nothing.

    (``.flac`` with ``format="flac"``; the folder is ``out_dir/<name>`` with ``name``.)

    Checks the names, the targets (none may exist unless ``force``) and that the output
    folder is writable before computing; writes every stem to a temporary name and
    renames them all at the end; on failure removes the temporaries (and the folder,
    if it was created here and is empty). The stems are written a block at a time as
    they are computed, so memory holds the mixture, its STFT and the factorization,
    never all masks or stems (:func:`separate` returns them all).

    Parameters
    ----------
    path : str or os.PathLike
        The mixture (any format :func:`nmfsep.io.load` reads).
    out_dir : str or os.PathLike
        Output root; the stems go to ``out_dir/<mix stem>/``.
    force : bool
        Overwrite existing stems.
    save_model : bool
        Also write the factorization to ``out_dir/<mix stem>/model.npz``
        (:func:`nmfsep.model.save_model`).
    report : bool
        Also write ``out_dir/<mix stem>/report.html`` and the mixture next to the stems
        as ``mixture.wav`` (:func:`nmfsep.report.write_report`), after the stems are in
        place. Both are checked with the stems before computing (none may exist unless
        ``force``); if writing the report fails anyway (disk full ...), the stems stay
        and the error is raised.
    format : {"wav", "flac"}, default="wav"
        Stem file format (and extension).
    subtype : {"float", "pcm24", "pcm16"} or None
        Sample type; None: float for WAV, pcm24 for FLAC. Integer samples never clip:
        when a stem would, every stem is scaled by one gain (a warning says by how
        much; the stems still add up, to the mixture times that gain).
    name : str or None
        The output folder under ``out_dir``, a ``/``-separated relative path
        (:func:`nmfsep.io.output_names` makes them for many files); default the
        mixture's stem.
    memory : int, "auto" or None
        Budget in bytes for whole-file separation: when :func:`estimate_memory` of
        the file is larger, the file is separated block by block with
        :func:`nmfsep.stream.separate_stream` instead (blind, supervised or
        semi-supervised; same stem names; the summary's ``streamed`` says why).
        ``"auto"``: :func:`default_memory`; None (default): always whole-file.
        A run that cannot stream (``save_model``, ``report``, ``stft`` or
        ``power`` given, dictionaries at another rate than the file) stays
        whole-file, with a warning. ``block_seconds`` and ``learn_passes`` in
        ``kwargs`` go to the stream (ignored when the file is separated whole).
    other_inputs : sequence of paths
        Other files the run reads, such as dictionary files a caller loaded itself:
        no output may be one of them, ``force`` or not. The mixture and the paths
        given in ``dictionaries`` count already.
    **kwargs
        Passed to :func:`nmfsep.separate.separate` (``n_components``, ``dictionaries``
        ...).

    Returns
    -------
    summary : dict
        JSON-serializable: ``input``, ``output_dir``, ``mode``, ``stems`` (name -> path
        written), ``model`` (path or None), ``report`` (path or None), ``sr``,
        ``n_channels``, ``duration`` (seconds of audio), ``seconds`` (time taken),
        ``n_iter``, ``converged``, ``warnings`` and ``settings``.

    Raises
    ------
    AudioFormatError
        If the mixture cannot be read.
    ParameterError
        If the mixture's name or a stem name is not a safe file name, a parameter
        is invalid, or ``format`` cannot hold the mixture (FLAC: at most 8 channels
        and 655350 Hz, :data:`nmfsep.io.FORMAT_LIMITS`), before any work.
    DictionaryError
        If a dictionary cannot be read or does not fit.
    OutputError
        If a target exists (without ``force``) or the output cannot be written.
    """
    start = time.perf_counter()
    src = Path(path)
    stream_options = {k: kwargs.pop(k) for k in _STREAM_KEYS if k in kwargs}
    if memory is not None:
        budget = default_memory() if memory == "auto" else check_int(memory, "memory", 1)
        why = stream_reason(src, budget, save_model=save_model, report=report, **kwargs)
        if why is not None and why.get("stream"):
            return _streamed(src, out_dir, why, force=force, format=format,
                             subtype=subtype, name=name,
                             kwargs={**kwargs, **stream_options,
                                     "other_inputs": other_inputs})
    else:
        why = None
    folder = output_folder(src, out_dir, name)
    fmt = io.audio_format(format, subtype)
    y, sr = check_mixture(*io.load(src))
    io.check_format_fits(fmt, y.shape[0], sr, src)
    plan, params, options = _plan_of(kwargs, (y, sr))
    outputs = io.output_files(folder, plan.names, model=save_model, report=report,
                              ext=fmt.ext)
    read = [src, *dictionary_files(kwargs.get("dictionaries")), *other_inputs]
    with io.OutputTransaction(folder, outputs.all(), force=force, inputs=read) as out:
        fit = analyse(y, sr, plan, params, **options)
        # every stem is written as its blocks are computed (to a temporary name; all are
        # renamed at the end): no stem or mask is ever held whole in memory
        writers = [out.audio_writer(outputs.stems[g], sr, y.shape[0], y.shape[1], fmt)
                   for g in fit.model.groups]
        for _, part in stem_blocks(fit.X, fit.masks, fit.y, fit.model.stft, len(writers)):
            if part.shape[-1]:
                for writer, stem in zip(writers, part, strict=True):
                    writer.write(stem)
        del fit.X  # the STFT is not needed any more (the report needs memory)
        if outputs.model is not None:
            fit.model.save(out.temporary(outputs.model), force=True)
        out.commit()
        report_path = None
        if report:
            # the stems are read back from their files
            report_path = write_report(fit.model, folder, mixture=y, force=force)
    m = fit.model
    return file_summary(src, outputs, m.settings, sr=sr, n_channels=y.shape[0],
                        n_samples=y.shape[1], seconds=time.perf_counter() - start,
                        n_iter=m.n_iter, converged=m.converged,
                        warnings=[*m.warnings, *gain_warnings(out.gain, fmt),
                                  *([why["warning"]] if why and why.get("warning") else []),
                                  *outputs.leftover_warnings()],
                        report=report_path)


def _plan_of(kwargs: dict[str, Any], mixture: tuple[Any, int] | None = None
             ) -> tuple[Plan, SeparationParams, dict[str, Any]]:
    """Split :func:`separate`'s keywords into the plan, the settings and run options.

    ``mixture`` ``(y, sr)``, checked, decides ``n_sources="auto"``
    (:func:`nmfsep.auto_sources.plan_for`); without it "auto" plans the most sources.
    """
    kwargs = dict(kwargs)
    modes = {k: kwargs.pop(k) for k in _MODE_KEYS if k in kwargs}
    options = {k: kwargs.pop(k) for k in _RUN_KEYS if k in kwargs}
    try:
        params = SeparationParams(**kwargs)
    except TypeError as exc:
        raise ParameterError(f"separate_file got an unknown keyword ({exc})") from None
    y, sr = mixture if mixture is not None else (None, 0)
    plan = plan_for(
        y, sr, n_components=modes.get("n_components"), n_sources=modes.get("n_sources"),
        dictionaries=load_dictionaries(modes.get("dictionaries", ())),
        n_free=modes.get("n_free", 0), percussive=modes.get("percussive", False),
        harmonic=modes.get("harmonic", "auto"), spatial=params.spatial,
    )
    return plan, params.validate(), options



def default_memory() -> int:
    """Return the default budget of whole-file separation: half the physical memory, bytes.

    Returns
    -------
    int
        :data:`DEFAULT_MEMORY_FRACTION` of the machine's RAM (4 GiB where the
        system does not say).
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 8 * 2**30
    return int(total * DEFAULT_MEMORY_FRACTION)


def estimate_memory(path: str | os.PathLike[str], **kwargs: Any) -> int:
    """Estimate the peak memory of :func:`separate_file` on a file, from its header.

    The arrays that grow with the duration: the audio (float32, every channel), its
    complex64 STFT (every channel) and the spectrogram the NMF factorises (one, with
    the dictionaries' temporal context; with ``spatial="gains"`` one per channel and
    the models of the sources, :mod:`nmfsep.ntf`), at the analysis settings of the run
    (the file's rate and :meth:`~nmfsep.spectral.STFTConfig.for_sample_rate` blind,
    the dictionaries' otherwise), times a measured overhead, plus the imports.

    Parameters
    ----------
    path : str or os.PathLike
        The mixture (only its header is read).
    **kwargs
        The mode and settings as for :func:`separate_file` (``n_components``,
        ``dictionaries``, ``stft`` ...).

    Returns
    -------
    int
        Bytes.

    Raises
    ------
    AudioFormatError
        If the header cannot be read.
    ParameterError, DictionaryError
        As :func:`separate_file` for the mode options.
    """
    info = io.audio_info(Path(path))
    plan, params, _ = _plan_of({k: v for k, v in kwargs.items() if k not in _NOT_PARAMS})
    sr, n, channels = int(info["samplerate"]), int(info["frames"]), int(info["channels"])
    combined = plan.dictionary
    if combined is None:
        cfg = params.stft if params.stft is not None else STFTConfig.for_sample_rate(sr)
        a_sr, context = sr, 1
    else:
        cfg, a_sr, context = combined.stft, combined.sr, combined.context_frames
    per_frame = cfg.n_bins / cfg.hop_length  # spectrogram values per sample at a_sr
    n_a = n * a_sr / sr
    grows = channels * n * 4.0 + channels * n_a * 8.0 * per_frame + n_a * 4.0 * context * per_frame
    if a_sr != sr:  # the resampled copy and the native-rate STFT of the masks
        grows += channels * n_a * 4.0 + channels * n * 8.0 * per_frame
    if params.spatial_for(channels, plan) == "gains":  # a spectrogram per channel, group models
        one = n_a * 4.0 * context * per_frame
        grows += (channels - 1) * one + min(float(GAINS_CACHE_BYTES),
                                            (len(plan.names) + 3 * channels) * one)
        if params.wiener_iterations and len(plan.names) <= MAX_WIENER_SOURCES:
            grows += len(plan.names) * n * 4.0 * per_frame  # the filter's source powers
    return int(_BASE_BYTES + _OVERHEAD * grows)


_NOT_PARAMS = ("save_model", "report", "callback", "n_threads")


def stream_reason(
    path: str | os.PathLike[str], memory: int, **kwargs: Any
) -> dict[str, Any] | None:
    """Tell whether :func:`separate_file` with a budget of ``memory`` bytes streams, and why.

    Parameters
    ----------
    path : str or os.PathLike
        The mixture.
    memory : int
        Budget in bytes.
    **kwargs
        As for :func:`separate_file` (``save_model``, ``report`` and the mode).

    Returns
    -------
    dict or None
        None when the estimate fits; else ``{"estimate": bytes, "memory": bytes,
        "stream": bool}``, and with ``stream`` False a ``warning`` saying why the
        run stays whole-file.
    """
    estimate = estimate_memory(path, **kwargs)
    if estimate <= memory:
        return None
    out: dict[str, Any] = {"estimate": estimate, "memory": int(memory), "stream": True}
    blockers = [k for k in ("save_model", "report", "percussive") if kwargs.get(k)]
    blockers += ["n_sources='auto'"] if is_auto(kwargs.get("n_sources")) else []
    blockers += [k for k in ("stft", "power", "adapt") if kwargs.get(k) is not None]
    dicts = load_dictionaries(kwargs.get("dictionaries", ()))
    if dicts and io.audio_info(Path(path))["samplerate"] != dicts[0].sr:
        blockers.append("dictionaries at another sample rate than the file")
    if blockers:
        out["stream"] = False
        out["warning"] = (
            f"whole-file separation needs about {estimate / 2**30:.1f} GiB, more than the "
            f"memory budget ({memory / 2**30:.1f} GiB), but cannot stream with "
            f"{', '.join(blockers)}; separating the whole file"
        )
    return out


def _streamed(src: Path, out_dir: str | os.PathLike[str], why: dict[str, Any], *,
              force: bool, format: str, subtype: str | None, name: str | None,
              kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`separate_stream` for :func:`separate_file`; the summary says why."""
    from nmfsep.stream import separate_stream

    # the stream reports blocks, not NMF iterations: its progress is not the callback's
    options = {k: v for k, v in kwargs.items() if k not in ("callback", "stft", "power")}
    summary = separate_stream(src, out_dir, force=force, format=format, subtype=subtype,
                              name=name, **options)
    summary["streamed"] = {"estimate": why["estimate"], "memory": why["memory"]}
    return summary
