"""Separating many files: local processes with joblib, or a Dask cluster, same code.

:func:`separate_batch` expands files, folders and glob patterns, checks what it
can before any work (dictionaries, names, existing outputs), then runs one task
per file: :func:`nmfsep.files.separate_file` (or, with ``stream=True``,
:func:`nmfsep.stream.separate_stream`). Tasks receive *paths*, never audio; each
reads, separates and writes its own stems (all or nothing), and returns its
summary.

Where the tasks run
-------------------
* **Locally** (``scheduler=None``): ``joblib.Parallel(n_jobs,
  return_as="generator_unordered")`` with the loky process backend. Each of the
  ``n_jobs`` workers gets ``cores // n_jobs`` threads (BLAS through
  threadpoolctl, and the NMF kernels' own threads where the function takes
  ``n_threads``), so the machine is not oversubscribed. ``n_jobs=1`` runs in
  this process.
* **On a Dask cluster** (``scheduler="tcp://host:8786"`` or a
  ``distributed.Client``): the same joblib call under
  ``joblib.parallel_config(backend="dask")``; Dask's scheduler places the tasks
  on its workers (one task per worker thread; each task uses one thread). The
  workers need nmfsep installed and must see the input and output paths (a
  shared file system); paths are made absolute before they are sent.

Failures, reruns, names
-----------------------
* A file that fails (unreadable, wrong rate, disk full, even a crash inside the
  library) does not stop the batch: it is reported in :attr:`BatchResult.failed`
  with a one-line reason, and :attr:`BatchResult.ok` is False. A worker process
  that dies takes its unfinished files with it: they are reported as failed.
* A file whose stems all exist already is **skipped** (reported in
  :attr:`BatchResult.skipped`, not recomputed) unless ``force=True``; so a rerun
  after an interruption does only what is missing. Stems are written all or
  nothing, so "all exist" means "done".
* Stems go to ``out_dir/<mixture stem>/``. Inputs with the same stem (dataset
  trees such as ``songA/mixture.flac``, ``songB/mixture.flac``) go to
  ``out_dir/<relative path>/`` instead (``out_dir/songA/mixture/``; ``mix.mp3``
  and ``mix.ogg`` of one folder: ``out_dir/mix.mp3/``), as the command line does
  (:func:`nmfsep.io.output_names`): a dataset layout is never an error, and
  nothing is overwritten by another input of the same batch.
"""

from __future__ import annotations

import glob
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nmfsep._checks import fail, is_int
from nmfsep.exceptions import NmfsepError, ParameterError

__all__ = ["BatchResult", "separate_batch", "expand_inputs", "AUDIO_EXTENSIONS"]

#: File name extensions taken from folders (a file named explicitly is always tried).
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64",
})

_GLOB_CHARS = frozenset("*?[")


# ---------------------------------------------------------------------- result


@dataclass
class BatchResult:
    """What :func:`separate_batch` did, file by file (in input order).

    Attributes
    ----------
    done : list of dict
        The summaries of the files separated now (:func:`separate_file`'s keys).
    skipped : list of dict
        ``{"input", "output_dir", "reason"}`` for files whose stems existed already.
    failed : list of dict
        ``{"input", "reason", "error_type"}`` (and ``"traceback"`` for errors that
        are not an :class:`~nmfsep.exceptions.NmfsepError`, i.e. bugs) for every file
        or input that could not be separated.
    seconds : float
        Wall time of the batch.
    out_dir : str
        The output root.
    backend : str
        ``"sequential"``, ``"loky"`` (local processes) or ``"dask"``.
    n_jobs : int
        Tasks run at a time (locally), or the cluster's worker threads (Dask).
    scheduler : str or None
        The Dask scheduler address, if any.
    """

    done: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    out_dir: str = ""
    backend: str = "sequential"
    n_jobs: int = 1
    scheduler: str | None = None
    #: (input order, status, record) of every file, for :meth:`format_table`
    _rows: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True when no file failed (skipped files are fine)."""
        return not self.failed

    @property
    def n_files(self) -> int:
        """Files (and bad inputs) accounted for."""
        return len(self.done) + len(self.skipped) + len(self.failed)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable report (for ``--json`` or a summary file).

        Returns
        -------
        dict
            ``ok``, counts (``n_done``, ``n_skipped``, ``n_failed``), ``seconds``,
            ``out_dir``, ``backend``, ``n_jobs``, ``scheduler`` and the three lists.
        """
        return {
            "ok": self.ok,
            "n_done": len(self.done),
            "n_skipped": len(self.skipped),
            "n_failed": len(self.failed),
            "seconds": round(self.seconds, 3),
            "out_dir": self.out_dir,
            "backend": self.backend,
            "n_jobs": self.n_jobs,
            "scheduler": self.scheduler,
            "done": [dict(d) for d in self.done],
            "skipped": [dict(d) for d in self.skipped],
            "failed": [dict(d) for d in self.failed],
        }

    def format_table(self) -> str:
        """Return a plain-text table, one line per file, and a closing count.

        Returns
        -------
        str
            Columns: status, input, and the output folder (done, skipped) or the
            reason (failed), with the seconds each separation took.
        """
        rows = [("status", "input", "seconds", "output / reason")]
        entries = self._rows or (
            [(0, "done", e) for e in self.done] + [(0, "skipped", e) for e in self.skipped]
            + [(0, "failed", e) for e in self.failed]
        )
        for _, status, e in sorted(entries, key=lambda x: x[0]):
            if status == "done":
                rows.append((status, e["input"], f"{e.get('seconds', 0):.1f}",
                             e.get("output_dir", "")))
            elif status == "skipped":
                rows.append((status, e["input"], "", f"{e['output_dir']} ({e['reason']})"))
            else:
                rows.append(("FAILED", e["input"], "", e["reason"]))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [
            f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip()
            for r in rows
        ]
        lines.append(
            f"{len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed "
            f"in {self.seconds:.1f} s ({self.backend}, {self.n_jobs} at a time)"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------------- inputs


def _is_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


def _audio_files_in(folder: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern)
        if p.is_file()
        and p.suffix.lower() in AUDIO_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def expand_inputs(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude: str | os.PathLike[str] | None = None,
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Turn files, folders and glob patterns into a list of files.

    Parameters
    ----------
    inputs : path, glob pattern, or an iterable of them
        A file is taken as it is (whatever its extension); a folder gives its
        audio files (by extension, :data:`AUDIO_EXTENSIONS`; hidden files are left
        out); a pattern with ``*``, ``?`` or ``[`` (``"songs/*.flac"``,
        ``"**/*.wav"``) gives the files it matches (folders it matches are
        expanded as folders).
    recursive : bool
        Also take the audio files of sub-folders of the given folders.
    exclude : path, optional
        Leave out files under this folder (the output folder, so that a rerun
        with ``recursive`` does not separate the stems).

    Returns
    -------
    files : list of pathlib.Path
        In the order of ``inputs`` (each folder and pattern sorted), each file once.
    problems : list of dict
        ``{"input", "reason", "error_type"}`` for inputs that give nothing: a
        missing path, a pattern that matches no file, a folder without audio.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    excluded = Path(os.path.abspath(exclude)) if exclude is not None else None
    files: list[Path] = []
    seen: set[str] = set()
    problems: list[dict[str, Any]] = []

    def add(p: Path) -> None:
        key = os.path.realpath(p)
        if key in seen:
            return
        if excluded is not None and Path(os.path.abspath(p)).is_relative_to(excluded):
            return
        seen.add(key)
        files.append(p)

    for item in inputs:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            found = _audio_files_in(p, recursive)
            if not found:
                problems.append({"input": text, "error_type": "AudioFormatError",
                                 "reason": f"{text}: folder holds no audio files "
                                           f"({', '.join(sorted(AUDIO_EXTENSIONS)[:6])} ...)"})
            for f in found:
                add(f)
        elif p.exists():
            add(p)
        elif _is_glob(text):
            matches = sorted(glob.glob(text, recursive=True))
            found = []
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    found += _audio_files_in(mp, recursive)
                elif mp.is_file():
                    found.append(mp)
            if not found:
                problems.append({"input": text, "error_type": "AudioFormatError",
                                 "reason": f"{text}: matches no file; check the pattern "
                                           "(quote it so that the shell does not expand it)"})
            for f in found:
                add(f)
        else:
            problems.append({"input": text, "error_type": "AudioFormatError",
                             "reason": f"{text}: file not found; check the path"})
    return files, problems


# ---------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class _Task:
    index: int
    path: str
    out_dir: str
    force: bool
    stream: bool
    n_threads: int
    kwargs: dict[str, Any]


def _separate_one(task: _Task) -> dict[str, Any]:
    """Run one file; never raises for the file's own errors (they become a record)."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    try:
        with threadpool_limits(limits=task.n_threads, user_api="blas"):
            kwargs = dict(task.kwargs)
            if task.stream:
                from nmfsep.stream import separate_stream

                kwargs["n_threads"] = task.n_threads
                summary = separate_stream(task.path, task.out_dir, force=task.force, **kwargs)
            else:
                from nmfsep.files import separate_file

                kwargs["n_threads"] = task.n_threads  # the NMF kernels' own threads
                summary = separate_file(task.path, task.out_dir, force=task.force, **kwargs)
        summary = dict(summary)
        summary.setdefault("seconds", round(time.perf_counter() - start, 3))
        return {"index": task.index, "status": "done", "record": summary}
    except NmfsepError as exc:
        reason = str(exc) if task.path in str(exc) else f"{task.path}: {exc}"
        return {"index": task.index, "status": "failed",
                "record": {"input": task.path, "reason": reason,
                           "error_type": type(exc).__name__}}
    except Exception as exc:  # noqa: BLE001 - a bug or a resource error: report, go on
        return {"index": task.index, "status": "failed",
                "record": {"input": task.path,
                           "reason": f"{task.path}: {type(exc).__name__}: {exc} (an internal "
                                     "error; please report it with the traceback)",
                           "error_type": type(exc).__name__,
                           "traceback": traceback.format_exc(limit=20)}}


def _check_kwargs(kwargs: dict[str, Any], stream: bool) -> None:
    """Refuse keyword arguments the per-file function does not take (before any task)."""
    import inspect

    if stream:
        from nmfsep.stream import separate_stream

        allowed = set(inspect.signature(separate_stream).parameters)
        what = "separate_stream"
    else:
        from nmfsep.files import separate_file
        from nmfsep.separate import separate

        allowed = set(inspect.signature(separate_file).parameters)
        allowed |= set(inspect.signature(separate).parameters)
        what = "separate_file"
    allowed -= {"path", "out_dir", "force", "callback", "y", "sr", "kwargs", "name"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        hint = " (stream=True takes block_seconds)" if not stream and "block_seconds" in unknown \
            else ""
        raise ParameterError(
            f"{what} takes no argument(s) {unknown}{hint}; it takes {sorted(allowed)}"
        )


def _local_cores() -> int:
    from nmfsep.nmf import default_n_threads

    return default_n_threads()


# ---------------------------------------------------------------------- the batch


def separate_batch(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] = "separated",
    *,
    n_jobs: int | None = None,
    scheduler: Any = None,
    force: bool = False,
    stream: bool = False,
    recursive: bool = False,
    callback: Callable[[dict[str, Any], int, int], None] | None = None,
    **separate_kwargs: Any,
) -> BatchResult:
    """Separate many files, in parallel locally or on a Dask cluster.

    Parameters
    ----------
    inputs : path, glob pattern, or a sequence of them
        Files, folders and patterns (:func:`expand_inputs`).
    out_dir : str or os.PathLike
        Output root: ``out_dir/<mixture stem>/<stem>.wav`` per file.
    n_jobs : int or None
        Files separated at a time on this machine; None: the usable cores; -1
        likewise; at most the number of files. Ignored with ``scheduler``.
    scheduler : str, distributed.Client or None
        A Dask scheduler address (``"tcp://127.0.0.1:8786"``) or a connected
        client: run the tasks on that cluster (needs ``pip install
        "dask[distributed]"``).
    force : bool
        Redo files whose stems exist (overwrite them); otherwise they are skipped.
    stream : bool
        Use :func:`nmfsep.stream.separate_stream` (bounded memory, supervised or
        semi-supervised only; ``block_seconds`` and friends go in
        ``separate_kwargs``).
    recursive : bool
        Take audio files from sub-folders of the given folders too.
    callback : callable(record, n_finished, n_total), optional
        Called in this process for every file as soon as its outcome is known
        (skipped and failed ones included); ``record["status"]`` is "done",
        "skipped" or "failed". For a progress bar.
    **separate_kwargs
        Passed to :func:`separate_file` (or :func:`separate_stream`):
        ``dictionaries``, ``n_free``, ``n_components``, ``max_iter`` ...
        Dictionaries given as paths are loaded once, here.

    Returns
    -------
    BatchResult
        Per-file summaries, skipped files and failures with reasons; ``ok`` is
        False if any failed.

    Raises
    ------
    ParameterError, DictionaryError
        For settings that are wrong for every file (a bad dictionary, an
        impossible combination of options, bad ``n_jobs``), before any file is
        touched (a malformed scheduler address included); or when the Dask
        scheduler cannot be reached.
    """
    start = time.perf_counter()
    if n_jobs is not None and not (is_int(n_jobs) and (n_jobs >= 1 or n_jobs == -1)):
        raise fail("n_jobs", "None, -1 or an int >= 1", n_jobs)
    if "callback" in separate_kwargs:  # pragma: no cover - swallowed by the signature
        raise ParameterError("callback is the batch's progress callback")
    kwargs, names = _common_settings(separate_kwargs, stream)
    if scheduler is not None:
        _check_scheduler(scheduler)

    out = Path(out_dir)
    result = BatchResult(out_dir=str(out))
    files, problems = expand_inputs(inputs, recursive=recursive, exclude=out)
    total = len(files) + len(problems)
    finished = 0

    def report(status: str, record: dict[str, Any], order: int) -> None:
        nonlocal finished
        record = dict(record)
        result._rows.append((order, status, record))
        finished += 1
        if callback is not None:
            callback({"status": status, **record}, finished, total)

    for i, problem in enumerate(problems):
        report("failed", problem, len(files) + i)
    tasks = _plan_tasks(files, out, names, kwargs, force=force, stream=stream, report=report)

    if scheduler is not None:
        client, own_client = _connect(scheduler)
        try:
            config, n, tasks = _dask_backend(result, scheduler, client, tasks)
            _run_tasks(tasks, config, n, report)
        finally:
            if own_client:
                client.close()
    else:
        config, n, tasks = _local_backend(result, n_jobs, tasks)
        _run_tasks(tasks, config, n, report)

    result._rows.sort(key=lambda row: row[0])
    for _, status, record in result._rows:
        {"done": result.done, "skipped": result.skipped, "failed": result.failed}[status].append(
            record
        )
    result.seconds = time.perf_counter() - start
    return result


def _common_settings(
    separate_kwargs: dict[str, Any], stream: bool
) -> tuple[dict[str, Any], list[str]]:
    """Check the settings that hold for every file, once; load the dictionaries.

    Returns
    -------
    kwargs : dict
        ``separate_kwargs`` with ``dictionaries`` loaded.
    names : list of str
        The stem names every file gets (each a safe file name).
    """
    from nmfsep import io
    from nmfsep.plan import AUTO_SOURCES, load_dictionaries, stem_names

    kwargs = dict(separate_kwargs)
    _check_kwargs(kwargs, stream)
    if kwargs.get("n_sources") == AUTO_SOURCES:
        raise ParameterError(
            "n_sources='auto' names each file's stems after what it finds, so a batch cannot "
            "tell which files are done; separate the files one by one (separate_file), or "
            "give n_sources=N")
    if "dictionaries" in kwargs:
        kwargs["dictionaries"] = tuple(load_dictionaries(kwargs["dictionaries"]))
    names = stem_names(
        n_components=kwargs.get("n_components"),
        n_sources=kwargs.get("n_sources"),
        dictionaries=kwargs.get("dictionaries", ()),
        n_free=kwargs.get("n_free", 0),
        percussive=kwargs.get("percussive", False),
    )
    for name in names:
        io.check_name(name)
    return kwargs, names


def _plan_tasks(
    files: list[Path],
    out: Path,
    names: Sequence[str],
    kwargs: dict[str, Any],
    *,
    force: bool,
    stream: bool,
    report: Callable[[str, dict[str, Any], int], None],
) -> list[_Task]:
    """One task per file to run (clashing names: :func:`nmfsep.io.output_names`); report the others.

    Parameters
    ----------
    files : list of Path
        The expanded inputs, in input order (their index is their order).
    out : Path
        Output root.
    names : sequence of str
        The stems every file writes.
    kwargs : dict
        The per-file function's keyword arguments.
    force, stream : bool
        As :func:`separate_batch`.
    report : callable(status, record, order)
        Records a file that is not run ("failed" or "skipped").

    Returns
    -------
    list of _Task
        With one thread each (the backend sets the threads).
    """
    from nmfsep import io

    tasks: list[_Task] = []
    unsafe = {}
    for i, f in enumerate(files):
        try:
            io.check_name(io.folder_name(f.stem), max_length=io.MAX_FOLDER_LENGTH)
        except ParameterError as exc:
            unsafe[i] = exc
            report("failed", {"input": str(f), "reason": f"{f}: unsafe file name ({exc})",
                              "error_type": "ParameterError"}, i)
    safe = [i for i in range(len(files)) if i not in unsafe]
    fmt = io.audio_format(kwargs.get("format", "wav"), kwargs.get("subtype"))
    owners: dict[str, Path] = {}
    for i, name in zip(safe, io.output_names([files[i] for i in safe]), strict=True):
        f = files[i]
        folder = out.joinpath(*name.split("/"))
        if name in owners:  # only for names made alike on purpose (a.mp3 vs a.mp3.wav)
            report("failed", {"input": str(f), "error_type": "OutputError",
                              "reason": f"{f}: its stems would go to {folder} as those of "
                                        f"{owners[name]}; rename one"}, i)
            continue
        owners[name] = f
        targets = io.output_files(folder, names, model=bool(kwargs.get("save_model")),
                                  report=bool(kwargs.get("report")), ext=fmt.ext).all()
        if not force and all(t.is_file() for t in targets):
            report("skipped", {"input": str(f), "output_dir": str(folder),
                               "reason": "stems exist; force=True (--force) redoes them"}, i)
            continue
        tasks.append(_Task(index=i, path=str(f), out_dir=str(out), force=force, stream=stream,
                           n_threads=1, kwargs={**kwargs, "name": name}))
    return tasks


def _dask_backend(
    result: BatchResult, scheduler: Any, client: Any, tasks: list[_Task]
) -> tuple[Any, int, list[_Task]]:
    """Run on a Dask cluster: joblib's dask backend, absolute paths, one thread a task.

    Sets ``result.backend``, ``result.scheduler`` and ``result.n_jobs`` (the workers'
    threads).

    Returns
    -------
    config : joblib.parallel_config
    n_jobs : int
        -1 (the cluster decides).
    tasks : list of _Task
        With absolute paths (the workers may run elsewhere).
    """
    import joblib

    result.backend = "dask"
    result.scheduler = scheduler if isinstance(scheduler, str) else client.scheduler.address
    n_workers_threads = sum(
        w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values()
    )
    result.n_jobs = max(1, n_workers_threads)
    tasks = [
        _Task(t.index, os.path.abspath(t.path), os.path.abspath(t.out_dir), t.force,
              t.stream, 1, t.kwargs)
        for t in tasks
    ]
    return joblib.parallel_config(backend="dask", client=client), -1, tasks


def _local_backend(
    result: BatchResult, n_jobs: int | None, tasks: list[_Task]
) -> tuple[Any, int, list[_Task]]:
    """Run on this machine: ``n_jobs`` loky processes (sequential for one), cores shared.

    Sets ``result.backend`` and ``result.n_jobs``.

    Returns
    -------
    config : joblib.parallel_config
    n_jobs : int
        Processes, at most one per task.
    tasks : list of _Task
        Each with ``cores // n_jobs`` threads.
    """
    import joblib

    cores = _local_cores()
    n = cores if n_jobs in (None, -1) else int(n_jobs)
    n = max(1, min(n, len(tasks))) if tasks else 1
    threads = max(1, cores // n)
    tasks = [_Task(t.index, t.path, t.out_dir, t.force, t.stream, threads, t.kwargs)
             for t in tasks]
    result.n_jobs = n
    result.backend = "loky" if n > 1 else "sequential"
    config = joblib.parallel_config(backend="loky", inner_max_num_threads=threads) \
        if n > 1 else joblib.parallel_config(backend="sequential")
    return config, n, tasks


def _run_tasks(
    tasks: list[_Task], config: Any, n: int, report: Callable[[str, dict[str, Any], int], None]
) -> None:
    """Run the tasks under ``config`` and report each outcome as it comes.

    A worker that dies takes its unfinished files with it: they are reported as
    failed, with a reason that says to rerun the batch.
    """
    import joblib

    if not tasks:
        return
    pending = {t.index: t for t in tasks}
    anchors = {t.index: _existing_ancestor(_folder(t)) for t in tasks}
    with config:
        outcomes = joblib.Parallel(n_jobs=n, return_as="generator_unordered")(
            joblib.delayed(_separate_one)(t) for t in tasks
        )
        try:
            for outcome in outcomes:
                pending.pop(outcome["index"], None)
                report(outcome["status"], outcome["record"], outcome["index"])
        except (KeyboardInterrupt, SystemExit):
            outcomes.close()  # joblib kills the workers and waits for them
            _discard_pending(pending.values(), anchors)
            raise
        except Exception as exc:  # a worker died (TerminatedWorkerError, KilledWorker)
            for t in sorted(pending.values(), key=lambda t: t.index):
                report("failed", {
                    "input": t.path, "error_type": type(exc).__name__,
                    "reason": f"{t.path}: the worker running it stopped "
                              f"({type(exc).__name__}: {exc}); rerun the batch to "
                              "retry the files that are missing",
                }, t.index)


def _folder(task: _Task) -> Path:
    """Return the folder ``task`` writes its stems to."""
    return Path(task.out_dir).joinpath(*task.kwargs["name"].split("/"))


def _existing_ancestor(path: Path) -> Path:
    """Return ``path`` itself or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _discard_pending(tasks: Iterable[_Task], anchors: dict[int, Path]) -> None:
    """After an interrupt: remove what the killed workers were writing (never a finished stem)."""
    from nmfsep import io

    for t in tasks:
        io.discard_interrupted(_folder(t), anchors[t.index])


def _check_scheduler(scheduler: Any) -> None:
    """Refuse a ``scheduler`` that is no client and no well-formed address (before any file).

    Raises
    ------
    ParameterError
        When dask.distributed is missing, or ``scheduler`` is neither a
        ``distributed.Client`` nor an address of the form tcp://HOST:PORT.
    """
    try:
        from distributed import Client
    except ImportError as exc:
        raise ParameterError(
            "a Dask scheduler was given but dask.distributed is not installed; "
            'pip install "dask[distributed]" (or nmfsep[cluster])'
        ) from exc
    if isinstance(scheduler, Client):
        return
    if not isinstance(scheduler, str):
        raise ParameterError(
            f"scheduler must be an address such as 'tcp://127.0.0.1:8786' or a "
            f"distributed.Client, got {type(scheduler).__name__}"
        )
    _check_address(scheduler)


def _connect(scheduler: Any) -> tuple[Any, bool]:
    """Return a Dask client for ``scheduler`` (an address or a client) and whether we own it."""
    _check_scheduler(scheduler)
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout="10s"), True
    except ValueError as exc:  # what the form check lets through (a foreign inproc:// address)
        raise ParameterError(
            f"cannot connect to the Dask scheduler at {scheduler!r} ({exc}); give its "
            "address as tcp://HOST:PORT, such as tcp://127.0.0.1:8786"
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise ParameterError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or check the address"
        ) from exc


def _bad_address(address: str, why: str) -> ParameterError:
    """Return the one-line error for a scheduler address not of the form tcp://HOST:PORT."""
    return ParameterError(
        f"{address!r} is not a Dask scheduler address ({why}); give it as "
        "tcp://HOST:PORT, such as tcp://127.0.0.1:8786"
    )


def _check_address(address: str) -> None:
    """Refuse a malformed scheduler address before connecting (distributed is importable).

    The form distributed itself parses: an optional known scheme (tcp:// when left
    out), then HOST:PORT with a port in 1..65535. ``inproc://`` addresses, which have
    no host and port, are left to the client.

    Raises
    ------
    ParameterError
        Naming the address and the expected form.
    """
    from distributed.comm import parse_address, registry

    scheme, location = parse_address(address)
    try:
        backend = registry.get_backend(scheme)
    except ValueError:
        raise _bad_address(address, f"unknown scheme {scheme!r}") from None
    try:
        host, port = backend.get_address_host_port(location)
    except NotImplementedError:  # inproc://: no host and port
        return
    except ValueError:
        raise _bad_address(address, "no HOST:PORT with a numeric port") from None
    if not host:
        raise _bad_address(address, "no host before the port")
    if any(c.isspace() for c in host):
        raise _bad_address(address, f"a space in the host {host!r}")
    if not 1 <= port <= 65535:
        raise _bad_address(address, f"port {port} is not in 1..65535")
