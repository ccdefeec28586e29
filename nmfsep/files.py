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
from pathlib import Path
from typing import Any

from nmfsep import io
from nmfsep.exceptions import ParameterError
from nmfsep.plan import (
    Plan,
    SeparationParams,
    file_summary,
    gain_warnings,
    load_dictionaries,
    make_plan,
    output_folder,
)
from nmfsep.report import write_report
from nmfsep.separate import analyse, check_mixture, stem_blocks

__all__ = ["separate_file"]

_MODE_KEYS = ("n_components", "n_sources", "dictionaries", "n_free")
_RUN_KEYS = ("callback", "n_threads")


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
        If the mixture's name or a stem name is not a safe file name, or a parameter
        is invalid.
    DictionaryError
        If a dictionary cannot be read or does not fit.
    OutputError
        If a target exists (without ``force``) or the output cannot be written.
    """
    start = time.perf_counter()
    src = Path(path)
    folder = output_folder(src, out_dir, name)
    fmt = io.audio_format(format, subtype)
    y, sr = check_mixture(*io.load(src))
    plan, params, options = _plan_of(kwargs)
    outputs = io.output_files(folder, plan.names, model=save_model, report=report,
                              ext=fmt.ext)
    with io.OutputTransaction(folder, outputs.all(), force=force, inputs=[src]) as out:
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
                        warnings=[*m.warnings, *gain_warnings(out.gain, fmt)],
                        report=report_path)


def _plan_of(kwargs: dict[str, Any]) -> tuple[Plan, SeparationParams, dict[str, Any]]:
    """Split :func:`separate`'s keywords into the plan, the settings and run options."""
    kwargs = dict(kwargs)
    modes = {k: kwargs.pop(k) for k in _MODE_KEYS if k in kwargs}
    options = {k: kwargs.pop(k) for k in _RUN_KEYS if k in kwargs}
    try:
        params = SeparationParams(**kwargs)
    except TypeError as exc:
        raise ParameterError(f"separate_file got an unknown keyword ({exc})") from None
    plan = make_plan(
        modes.get("n_components"), modes.get("n_sources"),
        load_dictionaries(modes.get("dictionaries", ())), modes.get("n_free", 0),
    )
    return plan, params.validate(), options

