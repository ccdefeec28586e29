"""The ``nmfsep`` command line: parse, call one library function, report.

Commands: ``separate``, ``learn``, ``info``, ``plot``, ``eval``, ``rank``,
``report`` and ``version`` (plus the eager ``--version`` option). This module holds
no separation logic: every command calls one library function
(:func:`nmfsep.files.separate_file`, or for ``separate`` with folders, glob
patterns, ``--jobs`` or ``--scheduler`` :func:`nmfsep.batch.separate_batch`, with
``--stream`` :func:`nmfsep.stream.separate_stream`;
:func:`nmfsep.dictionary.learn_dictionary_files`,
:func:`nmfsep.plots.plot_file`, :func:`nmfsep.evaluate.evaluate_files`,
:func:`nmfsep.rank.rank_sweep_audio`, :func:`nmfsep.report.report_from_model` or a
loader) and turns the result into lines or a table on stdout (or JSON with
``--json``).

Defaults shown in ``--help`` are the library's (``tests/test_cli.py`` checks that
they agree): they are repeated here as literals so that ``--help`` does not import
the library.

Exit status: 0 on success, 2 on bad usage (unknown option, ``-k 0``, neither
``-k`` nor ``--dict``...), 1 on bad input or a failed run. Every error a user can
cause (:class:`nmfsep.NmfsepError`, :class:`OSError`) is reported as one line
``error: ...`` on stderr without a traceback; library warnings become one line
``warning: ...`` each. Set ``NMFSEP_DEBUG=1`` to get the full traceback of every
error instead.

Heavy modules (numpy, librosa, the nmfsep library, rich.progress) are imported
inside the commands so that ``nmfsep --help`` answers quickly.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from nmfsep._startup import handler_before, take_over

__all__ = ["app", "main"]

_DEBUG_ENV = "NMFSEP_DEBUG"

class _OneLineErrors(typer.core.TyperGroup):
    """The command group, with bad usage reported as one ``error:`` line (exit status 2).

    Typer prints a usage error as a box of several lines; nmfsep's rule is one line
    naming the problem and where help is (``nmfsep separate -h``). Help itself (``-h``,
    or a command given without arguments) is printed as Typer formats it.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:  # Typer vendors click from 0.2x on; earlier it uses click itself
            from typer._click import exceptions as click_errors
        except ImportError:  # pragma: no cover - older Typer
            from click import exceptions as click_errors  # type: ignore[no-redef]

        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        given = kwargs.get("args", args[0] if args else None)
        empty = _empty_argument(list(sys.argv[1:] if given is None else given), self.commands)
        if empty:
            _say(_stderr_console(), "error", empty)
            sys.exit(2)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click_errors.NoArgsIsHelpError as exc:  # the help is printed already
            sys.exit(exc.exit_code)
        except click_errors.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            where = f" (help: {ctx.command_path} -h)" if ctx is not None else ""
            _say(_stderr_console(), "error", exc.format_message() + _given(exc) + where)
            sys.exit(exc.exit_code)
        except typer.Abort:
            _say(_stderr_console(), "error", "aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _empty_argument(argv: list[str], commands: Mapping[str, Any]) -> str | None:
    """Return the error line for an empty argument (``-o ""``, ``--dict=``), else None.

    Every value of nmfsep's options and arguments is a path, a name or a number, none of
    which may be empty; without this check an empty path reads as the current folder
    (``Path("") == Path(".")``), and stems would be written there. An unset shell
    variable (``-o $OUT``) is the usual cause. ``commands``: the group's click commands,
    to name an option by all its spellings (``-o/--out-dir``).
    """
    command = next((a for a in argv if a and not a.startswith("-")), None)
    where = f" (help: nmfsep {command} -h)" if command else " (help: nmfsep -h)"
    params = getattr(commands.get(command or ""), "params", [])
    spelled = {o: "/".join(p.opts) for p in params for o in getattr(p, "opts", [])}
    for i, arg in enumerate(argv):
        if arg.startswith("--") and arg.endswith("=") and len(arg) > 3:
            name = arg[:-1]
        elif arg == "" and i > 0 and argv[i - 1].startswith("-") and "=" not in argv[i - 1]:
            name = argv[i - 1]
        elif arg == "":
            name = "an argument"
        else:
            continue
        return (f"{spelled.get(name, name)} was given an empty value; give a path, name or number "
                f"(an unset shell variable?){where}")
    return None


def _given(exc: BaseException) -> str:
    """`` (got 'nan')``: the value a range check refused, which Typer's message leaves out."""
    errors = getattr(exc.__cause__, "errors", None)  # pydantic's ValidationError
    try:
        value = errors()[0]["input"] if callable(errors) else None
    except (LookupError, TypeError, ValueError):
        return ""
    return "" if value is None else f" (got {value!r})"


app = typer.Typer(
    cls=_OneLineErrors,
    name="nmfsep",
    help=(
        "Separate audio recordings into stems with spectrogram NMF "
        "(blind, supervised with learned dictionaries, or semi-supervised)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)


# --------------------------------------------------------------------------- helpers


def _debug() -> bool:
    return os.environ.get(_DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _version() -> str:
    from nmfsep._version import __version__

    return __version__


def _stderr_console():
    """Return a rich console on stderr that never wraps a line (one message = one line)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _say(console, kind: str, message: str) -> None:
    """Print ``error: message`` or ``warning: message`` as one line on stderr."""
    from rich.text import Text

    style = "bold red" if kind == "error" else "bold yellow"
    console.print(Text.assemble((f"{kind}:", style), " ", _one_line(message)))


def _describe(exc: BaseException) -> str:
    """One line describing a user-caused error: the problem and, if known, the fix."""
    from nmfsep.exceptions import NmfsepError

    if isinstance(exc, NmfsepError):
        return _as_flags(str(exc) or type(exc).__name__)
    if isinstance(exc, MemoryError):
        what = str(exc) or "an allocation failed"
        return (
            f"out of memory ({what}); separate a shorter file, use --stream with --dict, "
            "fewer components (-k), or a machine with more memory"
        )
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else None
        what = exc.strerror or str(exc) or type(exc).__name__
        fix = "check the path, free disk space and permissions"
        if isinstance(exc, FileNotFoundError):
            fix = "check the path"
        elif isinstance(exc, PermissionError):
            fix = "fix the permissions or choose another path"
        elif isinstance(exc, IsADirectoryError):
            fix = "give the path of a file, not a folder"
        prefix = f"{where}: " if where is not None else ""
        return f"{prefix}{what}; {fix}"
    return f"{type(exc).__name__}: {exc}"


#: Python parameters named by library messages -> the flags a command-line user typed.
_FLAGS = {
    "force=True": "--force",
    "n_components": "-k",
    "n_sources='auto'": "--sources auto",
    "n_sources": "--sources",
    "n_free": "--free",
    "adapt": "--adapt",
    "dictionaries": "--dict",
    "mask_power": "--mask-power",
    "max_iter": "--max-iter",
    "random_state": "--seed",
    "block_seconds": "--block-seconds",
    "learn_passes": "--passes",
    "context_frames": "--context",
    "pitch_shifts": "--pitch-shifts",
    "harmonic": "--harmonic",
    "format": "--format",
    "subtype": "--subtype",
    "framewise": "--framewise",
    "images": "--images",
    "spatial": "--spatial",
    "percussive": "--percussive",
    "validate": "--validate",
    "online=True": "--online",
}
_FLAG_PATTERN = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(k) for k in _FLAGS) + r")(?:(=)|(?![\w=]))"
)


def _as_flags(message: str) -> str:
    """Name command-line flags where a library message names Python parameters.

    ``"pass force=True to overwrite"`` becomes ``"pass --force to overwrite"`` and
    ``"n_components=9 is more than ..."`` becomes ``"-k 9 is more than ..."``.
    """
    return _FLAG_PATTERN.sub(
        lambda m: _FLAGS[m.group(1)] + (" " if m.group(2) else ""), message
    )


def _with_path(path: Path | str, message: str) -> str:
    """Prefix ``message`` with ``path`` unless it already names it."""
    text = str(path)
    return message if text in message else f"{text}: {message}"


def _user_errors() -> tuple[type[BaseException], ...]:
    from nmfsep.exceptions import NmfsepError

    return (NmfsepError, OSError, MemoryError)


@contextmanager
def _captured_warnings() -> Iterator[list]:
    """Record every warning raised inside (library warnings are reported by the CLI)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _warning_messages(caught: list, extra: Any = ()) -> list[str]:
    """Return the unique warning messages, in order: those caught, then a summary's."""
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(_one_line(str(w.message)), None)
    if isinstance(extra, str):
        extra = [extra]
    for message in extra or ():
        seen.setdefault(_one_line(str(message)), None)
    return list(seen)


def _fail(console, message: str) -> typer.Exit:
    _say(console, "error", message)
    return typer.Exit(1)


@contextmanager
def _errors_as_exit(console, path: Path | str | None = None) -> Iterator[None]:
    """Turn a user-caused error into one ``error: ...`` line (naming ``path``) and exit 1."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        if _debug() or not isinstance(exc, _user_errors()):
            raise
        message = _describe(exc)
        raise _fail(console, message if path is None else _with_path(path, message)) from None


def _say_warnings(console, caught: list, extra: Any = ()) -> None:
    for text in _warning_messages(caught, extra):
        _say(console, "warning", text)


def _check_output(
    console, path: Path | None, *, force: bool, example: str, inputs: Any = ()
) -> None:
    """Refuse, before any work, a bad output path.

    That is a folder, one of ``inputs`` (``--force`` or not), or a file that exists
    (without ``--force``).
    """
    if path is None:
        return
    if path.is_dir():
        raise _fail(console, f"{path}: is a folder; give a file name such as {path / example}")
    from nmfsep import io

    with _errors_as_exit(console):
        io.check_not_input(path, list(inputs), hint="choose another output path")
    if (path.exists() or path.is_symlink()) and not force:
        raise _fail(console, f"{path}: exists; pass --force to overwrite")


def _progress(console, *, enabled: bool):
    """Return a rich progress display on stderr (a no-op when not ``enabled``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    )


def _show_progress(quiet: bool) -> bool:
    if quiet:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _iteration_callback(progress, task) -> Callable[[int, float | None], None]:
    def callback(iteration: int, loss: float | None = None) -> None:
        progress.update(task, completed=iteration)

    return callback


class _PhasedCallback:
    """Iterations on a progress bar; ``phase(name)`` (a new fit) restarts it, named."""

    def __init__(self, progress, task) -> None:
        self.progress, self.task, self.shown = progress, task, ""
        self.base = ""

    def __call__(self, iteration: int, loss: float | None = None) -> None:
        self.progress.update(self.task, completed=iteration)

    def phase(self, name: str) -> None:
        now = next(t.description for t in self.progress.tasks if t.id == self.task)
        if now != self.shown:  # a new file: its description is the base
            self.base = now
        self.shown = f"{self.base} ({name})" if name else self.base
        self.progress.update(self.task, completed=0, description=self.shown)


def _jsonable(value: Any) -> Any:
    """Convert a summary (paths, numpy scalars/arrays, dataclasses) to JSON types."""
    import dataclasses

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return _jsonable(value.to_dict())
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _jsonable(value.tolist())
    return str(value)


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(_jsonable(document), indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- defaults

# The library's defaults, repeated so that ``nmfsep --help`` need not import it;
# tests/test_cli.py checks that they agree (the library is authoritative).
_MASK_POWER = None  # nmfsep.separate: 1 blind, 1.5 with dictionaries (default_mask_power)
_GROUPING = None  # nmfsep.separate: "timbre", "kmeans" from 3 sources, "register" with
# --percussive (SeparationParams.grouping_for)
_COMPONENTS_PER_SOURCE = 8  # nmfsep.plan.DEFAULT_COMPONENTS_PER_SOURCE
_MANY_SOURCES = 3  # nmfsep.plan.MANY_SOURCES
_MANY_SOURCES_COMPONENTS = 12  # nmfsep.plan.MANY_SOURCES_COMPONENTS_PER_SOURCE
_RANK_KS = "2,4,6,8,12,16,24,32"  # the grid timed in nmfsep.rank.rank_sweep's docstring
_RANK_SEEDS = "0,1,2"  # nmfsep.rank.rank_sweep(seeds=)
_RANK_MAX_ITER = 300  # nmfsep.rank.rank_sweep(max_iter=)
_RANK_MIN_GAIN = 0.02  # nmfsep.rank.DEFAULT_MIN_GAIN
_RANK_MIN_STABILITY = 0.9  # nmfsep.rank.DEFAULT_MIN_STABILITY
_BLOCK_SECONDS = 30.0  # nmfsep.stream.DEFAULT_BLOCK_SECONDS
_HARMONIC_CHOICE_SECONDS = 30.0  # nmfsep.plan.HARMONIC_CHOICE_SECONDS
_RELEARN = "auto"  # nmfsep.plan.DEFAULT_RELEARN
_WIENER_ITER = 4  # nmfsep.spatial_wiener.WIENER_ITER
_MAX_WIENER_ITER = 20  # nmfsep.plan.MAX_WIENER_ITER
_ATOMS_PER_SOURCE = 48  # nmfsep.dictionary.DEFAULT_ATOMS_PER_SOURCE
_VALIDATE_FRACTION = 0.2  # learn --validate: the share of every clip held back


# --------------------------------------------------------------------------- list options


def _int_list(value: str | list[int], *, minimum: int, example: str) -> list[int]:
    """Parse ``"2,4,8"`` (commas and/or spaces) into whole numbers >= ``minimum``."""
    if isinstance(value, list):  # already parsed (typer may call a callback twice)
        return value
    parts = str(value).replace(",", " ").split()
    if not parts:
        raise typer.BadParameter(
            f"empty list; give comma-separated whole numbers such as {example}"
        )
    numbers = []
    for part in parts:
        try:
            number = int(part)
        except ValueError:
            raise typer.BadParameter(
                f"{part!r} in {value!r} is not a whole number; give a list such as {example}"
            ) from None
        if number < minimum:
            raise typer.BadParameter(f"{number} in {value!r} is below {minimum}")
        numbers.append(number)
    return numbers


def _ks_callback(value: str) -> list[int]:
    return _int_list(value, minimum=1, example="2,4,8,16")


def _seeds_callback(value: str) -> list[int]:
    seeds = _int_list(value, minimum=0, example="0,1,2")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise typer.BadParameter(f"seed {repeated[0]} is given twice; the seeds must differ")
    return seeds


def _figure_path_callback(value: Path | None) -> Path | None:
    """Refuse a figure name that is not .png or .svg before any work is done."""
    if value is None:
        return None
    from nmfsep.exceptions import ParameterError
    from nmfsep.plots import check_figure_path

    try:
        check_figure_path(value)
    except ParameterError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


# --------------------------------------------------------------------------- β option

_BETA_NAMES = {
    "kl": "kullback-leibler",
    "kullback-leibler": "kullback-leibler",
    "is": "itakura-saito",
    "itakura-saito": "itakura-saito",
    "frobenius": "frobenius",
    "euclidean": "frobenius",
}
_BETA_HELP = (
    "β-divergence of the NMF: kl (Kullback-Leibler, magnitude spectrogram), is "
    "(Itakura-Saito, power spectrogram), frobenius (Euclidean), or a number β "
    "(1 = kl, 0 = is, 2 = frobenius)."
)


_BETA_BOUND = 5


def _parse_beta(value: str | float) -> str | float:
    """Turn ``kl``/``is``/``frobenius``/full names/a number into the library's ``beta``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip().lower()
        if text in _BETA_NAMES:
            return _BETA_NAMES[text]
        try:
            number = float(text)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a β-divergence; use kl, is, frobenius or a number such as 0.5"
            ) from None
    if not math.isfinite(number):
        raise typer.BadParameter(f"β must be a finite number, got {value!r}")
    if abs(number) > _BETA_BOUND:
        raise typer.BadParameter(
            f"β must be between -{_BETA_BOUND} and {_BETA_BOUND} (spectrogram powers beyond "
            f"overflow float32), got {value!r}; kl (1), is (0) and frobenius (2) are usual"
        )
    return number


def _beta_callback(value: str | None) -> str | float | None:
    return None if value is None else _parse_beta(value)


# --------------------------------------------------------------------------- shared options

# Options that several commands declare, defined once. Where the help must say what
# the command writes or prints, a small function builds the option with that part.


def _beta_option(default_note: str = "") -> Any:
    """``--beta``; ``default_note`` replaces the shown default (e.g. when it depends)."""
    return typer.Option(
        "--beta",
        metavar="kl|is|frobenius|β",
        help=_BETA_HELP + default_note,
        callback=_beta_callback,
        show_default=not default_note,
    )


def _force_option(what: str) -> Any:
    """``--force``/``-f``: overwrite ``what`` (the command's outputs)."""
    return typer.Option("--force", "-f", help=f"Overwrite {what}.")


def _json_option(what: str) -> Any:
    """``--json``: print ``what`` as JSON on stdout."""
    return typer.Option("--json", help=f"Print {what} as JSON on stdout.")


def _quiet_option(what: str) -> Any:
    """``--quiet``/``-q``: no progress bar, and ``what``."""
    return typer.Option("--quiet", "-q", help=f"No progress bar; {what}.")


_Beta = Annotated[str, _beta_option()]
_MaxIter = Annotated[
    int, typer.Option("--max-iter", min=1, help="Maximum number of NMF iterations per run.")
]
def _finite(value: float | None) -> float | None:
    """Refuse inf/nan as usage errors (click's range check lets inf through)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


_Tol = Annotated[
    float,
    typer.Option("--tol", min=0.0, callback=_finite,
                 help="Stop when the relative loss decrease is below this."),
]
_Seed = Annotated[
    int,
    typer.Option("--seed", min=0, max=2**32 - 1,
                 help="Random seed; the same seed gives the same output."),
]


# --------------------------------------------------------------------------- app callback


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"nmfsep {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print the version (nmfsep X.Y.Z) and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Separate audio recordings into stems with spectrogram NMF.

    Blind: [bold]nmfsep separate mix.wav -k 8[/]. Supervised: learn one dictionary per
    source ([bold]nmfsep learn piano*.wav -n piano -k 16 -o piano.npz[/]), then
    [bold]nmfsep separate mix.wav --dict piano.npz --dict flute.npz[/].
    """


# --------------------------------------------------------------------------- separate


def _summary_line(mixture: Path, summary: dict[str, Any]) -> str:
    """``mix.wav: 3 stems in separated/mix (a.wav, b.wav, c.wav); 2.0 s of audio in 0.4 s``."""
    stems = summary.get("stems") or {}
    if isinstance(stems, dict):
        paths = [Path(p) for p in stems.values()]
    else:
        paths = [Path(p if not isinstance(p, dict) else p.get("path", "")) for p in stems]
    folders = sorted({str(p.parent) for p in paths})
    where = f" in {folders[0]}" if len(folders) == 1 else ""
    names = ", ".join(p.name if where else str(p) for p in paths)
    parts = [f"{mixture}: {len(paths)} stem{'s' if len(paths) != 1 else ''}{where} ({names})"]
    duration = summary.get("duration")
    seconds = summary.get("seconds", summary.get("elapsed"))
    timing = []
    if isinstance(duration, int | float):
        timing.append(f"{duration:.1f} s of audio")
    if isinstance(seconds, int | float):
        timing.append(f"in {seconds:.1f} s")
    n_iter = summary.get("n_iter")
    if isinstance(n_iter, int | float) and not isinstance(n_iter, bool):
        timing.append(f"({int(n_iter)} iterations)")
    if timing:
        parts.append(" ".join(timing))
    streamed = summary.get("streamed")
    if isinstance(streamed, dict):
        parts.append(
            f"streamed in {summary.get('n_blocks')} block(s): whole-file separation would need "
            f"about {streamed['estimate'] / 2**30:.1f} GiB, over --memory "
            f"{streamed['memory'] / 2**30:.1f} GiB"
        )
    harmonic = _harmonic_choice(summary.get("settings") or {})
    if harmonic:
        parts.append(harmonic)
    auto = _auto_choice(summary.get("settings") or {})
    if auto:
        parts.append(auto)
    relearned = _relearned(summary.get("settings") or {})
    if relearned:
        parts.append(relearned)
    wiener = (summary.get("settings") or {}).get("wiener_iter")
    if isinstance(wiener, int) and not isinstance(wiener, bool) and wiener > 0:
        parts.append(f"stems from both channels together (spatial Wiener filter, {wiener} "
                     "EM iterations; --wiener-iter 0 for a mask per channel)")
    model = summary.get("model")
    if model:
        parts.append(f"model {model}")
    report = summary.get("report")
    if report:
        parts.append(f"report {report}")
    return "; ".join(parts)


def _model_options(ctx: typer.Context, *, adapt: float | None, percussive: bool,
                   harmonic: str, relearn: str | None, stream: bool, supervised: bool,
                   n_free: int, wiener_iter: int | None = None) -> dict[str, Any]:
    """``separate``'s keywords of the model options given (the library's defaults otherwise)."""
    out: dict[str, Any] = {}
    if adapt is not None:
        out["adapt"] = adapt
    if percussive:
        out["percussive"] = True
    if harmonic != "auto":
        out["harmonic"] = harmonic
    if relearn is not None:
        if relearn == "on" and (not supervised or n_free or adapt is not None):
            ctx.fail("--relearn on needs --dict, without --free or --adapt (it learns more "
                     "atoms for every dictionary from a first pass's stems)")
        out["relearn"] = relearn
    if wiener_iter is not None:
        out["wiener_iter"] = wiener_iter
    return out


def _relearned(settings: dict[str, Any]) -> str:
    """``second pass with atoms learned from the first pass's stems (piano +140, ...)``, or ""."""
    record = settings.get("relearn")
    if not isinstance(record, dict) or record.get("passes") != 2:
        return ""
    added = record.get("added_atoms") or {}
    counts = ", ".join(f"{name} +{n}" for name, n in added.items())
    return f"second pass with atoms learned from the first pass's stems ({counts})"


def _harmonic_choice(settings: dict[str, Any]) -> str:
    """``harmonic atoms left out (fit ratio 0.83 >= 0.74; --harmonic on keeps them)``, or ""."""
    from nmfsep.plan import HARMONIC_FIT_RATIO

    ratio = settings.get("harmonic_fit_ratio")
    if not isinstance(ratio, float):
        return ""
    if ratio < HARMONIC_FIT_RATIO:
        return f"harmonic atoms used (fit ratio {ratio:.2f} < {HARMONIC_FIT_RATIO})"
    return (f"harmonic atoms left out (fit ratio {ratio:.2f} >= {HARMONIC_FIT_RATIO}; "
            "--harmonic on keeps them)")


def _auto_choice(settings: dict[str, Any]) -> str:
    """Say what ``--sources auto`` found (``sources: auto -> 3 (...)``, a guess or not), or ""."""
    record = settings.get("sources_auto")
    if not isinstance(record, dict):
        return ""
    from nmfsep.auto_sources import AUTO_CONFIDENCE, describe_auto

    text = "sources: " + describe_auto(record)
    if record.get("guess"):
        text += (f" - a guess (confidence under {AUTO_CONFIDENCE}): if you know the number, "
                 "give --sources N")
    return text


def _parse_sources(value: str | None) -> int | str | tuple[str, ...] | None:
    """Parse ``--sources``: a number of blind sources (1 to 10000), "auto", or names."""
    if value is None:
        return None
    text = value.strip()
    if text.lower() == "auto":
        return "auto"
    if text.lstrip("+-").isdigit():
        if not 1 <= int(text) <= 10_000:
            raise typer.BadParameter(f"{text} is not in the range 1<=x<=10000.")
        return int(text)
    try:
        float(text)
    except ValueError:
        pass
    else:  # a number, but not a whole one: not a source's name
        raise typer.BadParameter(f"{text} is not a whole number of sources; give a number "
                                 "(2), 'auto' or names (drums,bass,other)")
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise typer.BadParameter(f"{value!r}: give a number or names separated by commas "
                                 "(drums,bass,other)")
    return names


def _check_separate_usage(
    ctx: typer.Context,
    n_components: int | None,
    n_sources: Any,
    dict_paths: list[Path],
    n_free: int,
) -> None:
    """Refuse option combinations that make no sense, in the words of the options."""
    if n_sources == "auto":
        if dict_paths or n_free:
            ctx.fail("--sources auto is for blind separation; with --dict there is one stem "
                     "per dictionary source (drop --sources, or --dict and --free)")
        if n_components is not None and n_components < 2:
            ctx.fail(f"-k {n_components} is fewer than the 2 sources --sources auto suggests "
                     "at least; use -k 2 or more, or leave -k out")
        return
    if isinstance(n_sources, tuple):
        if dict_paths or n_components is not None:
            ctx.fail("--sources with names (drums,bass,other) picks built-in dictionaries "
                     "itself; give it without --dict and -k")
        return
    if dict_paths:
        if n_components is not None:
            ctx.fail(
                "-k is for blind separation; with --dict the dictionaries' atoms are used, "
                "add free atoms with --free K_FREE"
            )
        if n_sources is not None:
            ctx.fail(
                "--sources is for blind separation; with --dict there is one stem per "
                "dictionary source"
            )
        return
    if n_components is None and n_sources is None:
        ctx.fail(
            "nothing to separate with: pass -k K for blind separation (e.g. -k 8) "
            "or --dict D.npz (repeatable) for supervised separation"
        )
    if n_free:
        ctx.fail("--free needs --dict (semi-supervised); for blind separation use -k K")
    if n_sources is not None and n_components is not None and n_sources > n_components:
        ctx.fail(
            f"--sources {n_sources} is more than -k {n_components}; "
            "use at most as many sources as components"
        )


_GLOB_CHARS = frozenset("*?[")  # as nmfsep.batch: a MIX with one of these is a pattern


def _is_batch_input(path: Path) -> bool:
    """Tell whether a MIX names several files: a folder, or a glob pattern (not a file)."""
    text = os.fspath(path)
    return path.is_dir() or (not path.exists() and any(c in _GLOB_CHARS for c in text))


def _check_batch_usage(
    ctx: typer.Context,
    *,
    dict_paths: list[Path],
    stream: bool,
    save_model: bool,
    report: bool,
    jobs: int | None,
    scheduler: str | None,
) -> None:
    """Refuse --stream/--block-seconds/--jobs/--scheduler combinations that make no sense."""
    if stream:
        for flag, given in (("--save-model", save_model), ("--report", report)):
            if given:
                ctx.fail(
                    f"{flag} is not available with --stream (a stream keeps no whole-file "
                    f"model); drop {flag} or --stream"
                )
    else:
        # by name: typer may bundle its own click, whose ParameterSource is another enum
        source = getattr(ctx.get_parameter_source("block_seconds"), "name", "DEFAULT")
        if source not in ("DEFAULT", "DEFAULT_MAP"):
            ctx.fail("--block-seconds sets the block length of --stream; add --stream")
    if jobs is not None and scheduler is not None:
        ctx.fail(
            "--jobs is for local processes; with --scheduler the cluster's workers run the "
            "files: drop one of them"
        )
    if scheduler is not None and not scheduler.strip():
        ctx.fail("--scheduler: give a Dask scheduler address such as tcp://127.0.0.1:8786")


_SIZE_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _memory_size(value: str) -> str:
    """``--memory``: 'auto', 'off', or a size (4G, 500M, 1.5GB, bytes) as a number of bytes."""
    text = value.strip().upper()
    if text.lower() in ("auto", "off"):
        return text.lower()
    number = text.removesuffix("IB").removesuffix("B") if len(text) > 1 else text
    unit = number[-1] if number and number[-1] in _SIZE_UNITS else ""
    try:
        size = float(number[: len(number) - len(unit)]) * _SIZE_UNITS[unit]
    except ValueError:
        size = -1.0
    if not (size >= 1 and math.isfinite(size)):
        raise typer.BadParameter(
            f"must be a size such as 4G or 500M, 'auto' or 'off', got {value!r}"
        )
    return str(int(size))


def _positive_float(value: float | None) -> float | None:
    if value is None:
        return None
    if not (value > 0 and math.isfinite(value)):
        raise typer.BadParameter(f"must be a finite number > 0, got {value}")
    return value


@app.command(no_args_is_help=True)
def separate(
    ctx: typer.Context,
    mixtures: Annotated[
        list[Path],
        typer.Argument(
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="MIX",
            help="Mixture audio file(s) (WAV, FLAC, OGG, ...), folder(s) of them or quoted "
            "glob pattern(s) ('songs/*.flac'); each file is separated on its own.",
            show_default=False,
        ),
    ],
    n_components: Annotated[
        int | None,
        typer.Option(
            "-k",
            "--n-components",
            min=1,
            max=10_000,
            help=(
                "Number of NMF components. Blind separation (no --dict): one stem per "
                "component (component_01.wav ...), or grouped with --sources."
            ),
            show_default=False,
        ),
    ] = None,
    n_sources: Annotated[
        str | None,
        typer.Option(
            "--sources",
            "-s",
            metavar="S|NAMES",
            callback=_parse_sources,
            help="Group the blind components into this many stems (source_1.wav ...); "
            f"without -k, {_COMPONENTS_PER_SOURCE} components per source "
            f"({_MANY_SOURCES_COMPONENTS} from {_MANY_SOURCES} sources on). 'auto': the "
            "number the mixture suggests (nmfsep rank --sources), with --percussive when "
            "it finds drums. Names instead "
            "(drums,bass,other): built-in dictionaries for the built-in names, free atoms "
            "(--free, default 8) for the one other name.",
            show_default=False,
        ),
    ] = None,
    dictionaries: Annotated[
        list[Path] | None,
        typer.Option(
            "--dict",
            "-d",
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="D.npz",
            help=(
                "Learned dictionary (from nmfsep learn); repeat for several sources. "
                "Each writes one stem named after it (piano.wav ...)."
            ),
            show_default=False,
        ),
    ] = None,
    n_free: Annotated[
        int,
        typer.Option(
            "--free",
            min=0,
            max=10_000,
            metavar="K_FREE",
            help="With --dict: add this many free atoms, written as residual.wav.",
        ),
    ] = 0,
    adapt: Annotated[
        float | None,
        typer.Option(
            "--adapt",
            min=0.0,
            callback=_finite,
            metavar="MU",
            help="With --dict (KL): let the atoms adapt to the mixture, kept near the "
            "learned ones by a penalty of weight MU (0: free; larger: closer). "
            "[default: fixed atoms; the held-out benchmark found no gain]",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out-dir",
            metavar="OUT",
            help="Output folder; stems go to OUT/<mixture name>/.",
            file_okay=False,
        ),
    ] = Path("separated"),
    force: Annotated[bool, _force_option("existing output files")] = False,
    beta: Annotated[
        str | None, _beta_option(" Default: the dictionaries' β with --dict, else kl.")
    ] = None,
    mask: Annotated[
        Literal["soft", "binary"],
        typer.Option(
            "--mask",
            help="soft: (α-)Wiener masks that sum to 1 (stems add up to the mix); "
            "binary: each time-frequency bin goes to the loudest source.",
        ),
    ] = "soft",
    mask_power: Annotated[
        float | None,
        typer.Option(
            "--mask-power",
            callback=_positive_float,
            help="Exponent p of the soft mask (W_g H_g)^p / Σ (W_j H_j)^p; 2 is the "
            "Wiener filter. [default: 1 blind, 1.5 with --dict: what separated best in "
            "the benchmarks]",
            show_default=False,
        ),
    ] = _MASK_POWER,
    grouping: Annotated[
        Literal["timbre", "kmeans", "activations", "combined", "register"] | None,
        typer.Option(
            "--grouping",
            help="With --sources: group components by timbre (spectral envelope), by "
            "kmeans (k-means of the timbre), by activations (components that play "
            "together), combined, or by register (energy below 200 Hz: bass apart; from 3 "
            "sources, k-means of the timbre above the bass). "
            f"[default: timbre; kmeans from {_MANY_SOURCES} sources on; register for the "
            "harmonic stems of --percussive]",
            show_default=False,
        ),
    ] = _GROUPING,
    percussive: Annotated[
        bool,
        typer.Option(
            "--percussive",
            help="With --sources S >= 2: split the drums off first (median-filter "
            "harmonic-percussive separation); the stems are source_1 ... and drums.wav.",
        ),
    ] = False,
    harmonic: Annotated[
        Literal["auto", "on", "off"],
        typer.Option(
            "--harmonic",
            help="The dictionaries' harmonic atoms (learn --harmonic): 'auto' uses them "
            "when every source has them, there is no --free and they fit the mix much "
            "better than the learned atoms alone (both fits are run, on the first "
            f"{_HARMONIC_CHOICE_SECONDS:g} s of a longer mix; --stream: on the first block), "
            "'on' whenever a dictionary has them, 'off' never.",
        ),
    ] = "auto",
    relearn: Annotated[
        Literal["auto", "on", "off"] | None,
        typer.Option(
            "--relearn",
            help="With --dict: separate twice, the second time with atoms learned from "
            "each source's first-pass stem added to its dictionary (covers notes the "
            "training clips do not play; several times slower). 'auto' when the harmonic "
            "atoms are in use, 'on' always (not with --free or --adapt; --stream learns from "
            "the first pass's stems of six excerpts), 'off' never. [default: " + _RELEARN
            + "]",
            show_default=False,
        ),
    ] = None,
    wiener_iter: Annotated[
        int | None,
        typer.Option(
            "--wiener-iter",
            min=0,
            max=_MAX_WIENER_ITER,
            help="Stereo with --spatial gains: form the stems from both channels together "
            "(a multichannel Wiener filter started from the learned positions, refined by "
            "this many EM iterations); 0 keeps one mask per channel. [default: "
            + str(_WIENER_ITER) + "]",
            show_default=False,
        ),
    ] = None,
    spatial: Annotated[
        Literal["shared", "gains"] | None,
        typer.Option(
            "--spatial",
            help="Stereo/multichannel: 'gains' learns where each component sits (a gain "
            "per channel, every stem keeps its own position), 'shared' models the channels "
            "combined (the same masks for every channel). [default: gains where it applies; "
            "shared with --percussive or --adapt, over 8 channels, or when the sources sit "
            "at one place]",
            show_default=False,
        ),
    ] = None,
    max_iter: _MaxIter = 200,
    tol: _Tol = 1e-4,
    seed: _Seed = 0,
    save_model: Annotated[
        bool,
        typer.Option(
            "--save-model",
            help="Also save the fitted model (atoms, activations, groups) as model.npz next "
            "to the stems; inspect it with nmfsep info.",
        ),
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write report.html next to the stems (players, figures, settings; "
            "no network needed) and the mixture as mixture.wav for its player.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        _json_option(
            "a list of per-mixture summaries (a batch: its report, with ok, counts and the "
            "done, skipped and failed files)"
        ),
    ] = False,
    quiet: Annotated[
        bool, _quiet_option("no summary lines (errors and warnings are still shown)")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            help="Separate N files at a time in local processes (a batch; see above). "
            "Default for folders and patterns: the usable cores (at most one per file); "
            "lower it if memory is short.",
            show_default=False,
            rich_help_panel="Many files",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="tcp://HOST:8786",
            help="Run the batch on this Dask cluster (pip install 'nmfsep\\[cluster]'); its "
            "workers need nmfsep and must see the input and output paths.",
            show_default=False,
            rich_help_panel="Many files",
        ),
    ] = None,
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive",
            help="With a folder MIX: also take the audio files of its sub-folders "
            "(not those under OUT).",
            rich_help_panel="Many files",
        ),
    ] = False,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Separate block by block in bounded memory, for long files. Blind (-k, "
            "--sources): the atoms are learned online over the whole file, then grouped; "
            "free atoms of --free likewise. Supervised stems equal the whole-file ones up "
            "to the convergence tolerance (--tol) for mono or --spatial shared; stereo "
            "fits every block's positions and spatial Wiener filter.",
            rich_help_panel="Long files",
        ),
    ] = False,
    block_seconds: Annotated[
        float,
        typer.Option(
            "--block-seconds",
            metavar="S",
            callback=_positive_float,
            help="With --stream: seconds of audio per block (memory grows with it, not "
            "with the file's duration).",
            rich_help_panel="Long files",
        ),
    ] = _BLOCK_SECONDS,
    memory: Annotated[
        str,
        typer.Option(
            "--memory",
            metavar="SIZE",
            callback=_memory_size,
            help="Budget of whole-file separation (e.g. 4G, 500M): a file whose estimated "
            "peak memory is larger is streamed (as --stream), and its summary line says so. "
            "'auto': half the machine's RAM; 'off': never.",
            rich_help_panel="Long files",
        ),
    ] = "auto",
    audio_format: Annotated[
        Literal["wav", "flac"],
        typer.Option("--format", help="Stem file format (and extension); FLAC holds at "
                     "most 8 channels and 655350 Hz."),
    ] = "wav",
    subtype: Annotated[
        Literal["float", "pcm24", "pcm16"] | None,
        typer.Option(
            "--subtype",
            help="Sample type of the stems: 32-bit float (never clips) or 24/16-bit "
            "integers; integer stems that would clip are all scaled by one gain, with a "
            "warning. [default: float for wav, pcm24 for flac]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Separate mixture(s) into stems (float WAV; --format, --subtype) in OUT/<mixture name>/.

    Blind: [bold]-k 8[/] writes component_01.wav ... (with [bold]--sources 2[/]:
    source_1.wav, source_2.wav). Supervised: [bold]--dict piano.npz --dict flute.npz[/]
    writes piano.wav and flute.wav; [bold]--free 4[/] adds residual.wav. Stems keep the
    mixture's sample rate, channels and length and add up to the mixture.
    [bold]--report[/] adds report.html to listen to and inspect the result.

    [bold]Many files.[/] Files named one by one are separated one after another, each
    with its summary line (an existing stem is an error without [bold]--force[/]).
    A folder ([bold]--recursive[/] for its sub-folders), a quoted glob pattern
    ([bold]'songs/*.flac'[/]), [bold]--jobs N[/] or [bold]--scheduler ADDRESS[/] make a
    [bold]batch[/]: files run in parallel, one progress bar over files, a table at
    the end ([bold]--json[/]: the batch report); a file that fails does not stop
    the others (exit status 1); a file whose stems all exist is skipped, so a
    rerun does only what is missing ([bold]--force[/] redoes them). Mixtures of one
    name (songA/mixture.flac, songB/mixture.flac) go to OUT/<relative path>/
    (OUT/songA/mixture/).

    [bold]Long files.[/] [bold]--stream[/] separates block by block
    ([bold]--block-seconds[/]) in memory that does not grow with the duration (blind:
    atoms learned online over the whole file, then grouped). Without it, a file whose
    whole-file separation would need more than [bold]--memory[/] is streamed anyway.
    """
    dict_paths = list(dictionaries or [])
    sources = cast("int | str | tuple[str, ...] | None", n_sources)  # as _parse_sources made it
    _check_batch_usage(ctx, dict_paths=dict_paths, stream=stream, save_model=save_model,
                       report=report, jobs=jobs, scheduler=scheduler)
    _check_separate_usage(ctx, n_components, sources, dict_paths, n_free)
    if sources == "auto":
        _check_auto_usage(ctx, percussive=percussive, stream=stream, batch=jobs is not None
                          or scheduler is not None or any(map(_is_batch_input, mixtures)))
    if adapt is not None and (stream or not (dict_paths or isinstance(sources, tuple))):
        ctx.fail("--adapt needs --dict or named --sources (it adapts the dictionaries' atoms) "
                 "and no --stream")
    if percussive and (stream or dict_paths or not isinstance(sources, int) or sources < 2):
        ctx.fail("--percussive needs blind --sources S, a number S >= 2 (the drums and the "
                 "rest), without --dict, named sources or --stream")
    _check_model_usage(ctx, spatial=spatial, percussive=percussive, adapt=adapt, beta=beta)
    _check_format_usage(ctx, audio_format, subtype)
    console = _stderr_console()
    loaded_dicts, origins = _load_dictionaries(
        ctx, console, dict_paths, n_components=n_components, n_sources=sources, n_free=n_free
    )
    kwargs = _separate_kwargs(
        stream=stream, n_components=n_components, n_sources=sources,
        dictionaries=loaded_dicts, n_free=n_free, beta=beta, mask=mask, mask_power=mask_power,
        grouping=grouping, max_iter=max_iter, tol=tol, seed=seed, save_model=save_model,
        report=report, block_seconds=block_seconds, other_inputs=_dictionary_files(dict_paths),
    )
    kwargs.update(format=audio_format, subtype=subtype, spatial=spatial)
    kwargs.update(_model_options(ctx, adapt=adapt, percussive=percussive, harmonic=harmonic,
                                 relearn=relearn, stream=stream, supervised=bool(dict_paths),
                                 n_free=n_free, wiener_iter=wiener_iter))
    if not stream and memory != "off":
        kwargs["memory"] = memory if memory == "auto" else int(memory)
    if jobs is not None or scheduler is not None or any(map(_is_batch_input, mixtures)):
        _separate_batch(
            console,
            mixtures,
            out_dir,
            jobs=jobs,
            scheduler=scheduler,
            recursive=recursive,
            force=force,
            stream=stream,
            as_json=as_json,
            quiet=quiet,
            kwargs=kwargs,
            note=origins,
        )
    else:
        _separate_files(
            console,
            mixtures,
            out_dir,
            force=force,
            stream=stream,
            max_iter=max_iter,
            as_json=as_json,
            quiet=quiet,
            kwargs=kwargs,
            note=origins,
        )


def _check_auto_usage(ctx: typer.Context, *, percussive: bool, stream: bool, batch: bool
                      ) -> None:
    """Refuse what ``--sources auto`` does not go with (usage error)."""
    if percussive:
        ctx.fail("--sources auto decides --percussive itself (it splits the drums off when "
                 "it finds them); drop --percussive, or give --sources S")
    if stream:
        ctx.fail("--sources auto needs the whole mixture (it may split the drums off, "
                 "which a stream cannot); drop --stream, or give --sources S")
    if batch:
        ctx.fail("--sources auto names each file's stems after what it finds, so a batch "
                 "(folder, pattern, --jobs, --scheduler) cannot tell which files are done; "
                 "name the files one by one, or give --sources S")


def _check_model_usage(
    ctx: typer.Context,
    *,
    spatial: str | None,
    percussive: bool,
    adapt: float | None,
    beta: str | float | None,
) -> None:
    """Refuse the settings the library never runs together, whatever MIX is (usage error).

    ``SeparationParams.spatial_for`` refuses ``spatial="gains"`` with ``percussive`` or
    ``adapt`` (on multichannel input), ``adaptation.check_adaptation`` ``adapt`` with a
    β other than 1; tests/test_cli.py checks that the library still refuses each pair.
    """
    if spatial == "gains":
        for flag, given in (("--percussive", percussive), ("--adapt", adapt is not None)):
            if given:
                ctx.fail(f"{flag} is not available with --spatial gains; use --spatial "
                         f"shared or leave {flag} out")
    if adapt is not None and beta is not None and beta not in ("kullback-leibler", 1.0):
        ctx.fail(f"--adapt adapts Kullback-Leibler atoms (--beta kl), not --beta "
                 f"{_beta_text(beta)}; leave --beta out or drop --adapt")


def _check_format_usage(ctx: typer.Context, audio_format: str, subtype: str | None) -> None:
    """Refuse a stem format and sample type that do not go together (usage error)."""
    from nmfsep.exceptions import ParameterError
    from nmfsep.io import audio_format as check

    try:
        check(audio_format, subtype)
    except ParameterError as exc:
        ctx.fail(_describe(exc))


def _separate_kwargs(
    *,
    stream: bool,
    n_components: int | None,
    n_sources: int | str | tuple[str, ...] | None,
    dictionaries: tuple[Any, ...],
    n_free: int,
    beta: str | float | None,
    mask: str,
    mask_power: float | None,
    grouping: str | None,
    max_iter: int,
    tol: float,
    seed: int,
    save_model: bool,
    report: bool,
    block_seconds: float,
    other_inputs: list[Path],
) -> dict[str, Any]:
    """Return the library's keyword arguments for the options of ``separate``.

    Those of :func:`nmfsep.files.separate_file`, or with ``stream`` those of
    :func:`nmfsep.stream.separate_stream` (supervised or semi-supervised only).
    ``other_inputs``: the files of the dictionaries loaded here, which no output may be.
    """
    if stream:  # separate_stream's arguments
        kwargs: dict[str, Any] = {
            "n_components": n_components,
            "n_sources": n_sources,
            "grouping": grouping,
            "dictionaries": dictionaries,
            "n_free": n_free,
            "block_seconds": block_seconds,
            "beta": beta,
            "mask": mask,
            "max_iter": max_iter,
            "tol": tol,
            "random_state": seed,
        }
        if mask_power is not None:
            kwargs["mask_power"] = mask_power
    else:
        kwargs = {
            "n_components": n_components,
            "n_sources": n_sources,
            "dictionaries": dictionaries,
            "n_free": n_free,
            "beta": beta,
            "mask": mask,
            "mask_power": mask_power,
            "grouping": grouping,
            "max_iter": max_iter,
            "tol": tol,
            "random_state": seed,
            "save_model": save_model,
            "report": report,
        }
    kwargs["other_inputs"] = other_inputs
    return kwargs


def _dictionary_files(dict_paths: list[Path]) -> list[Path]:
    """Return the files ``--dict`` arguments name (:func:`~nmfsep.builtins.dictionary_files`)."""
    from nmfsep.builtins import dictionary_files

    return dictionary_files(dict_paths)


def _load_dictionaries(
    ctx: typer.Context,
    console,
    dict_paths: list[Path],
    *,
    n_components: int | None,
    n_sources: Any,
    n_free: int,
) -> tuple[tuple[Any, ...], str]:
    """Load the dictionaries once and check the combination of options before any mixture.

    A bad dictionary is one error, not one per file; an impossible combination of
    options (:func:`nmfsep.plan.stem_names`) is a usage error. Also returns what the
    summary lines add when a built-in name was involved: which dictionary was used
    (``dictionaries: built-in drums, file bass (not the built-in bass)``), or "".
    """
    try:
        from nmfsep.builtins import is_builtin, resolve_dictionary
        from nmfsep.exceptions import ParameterError
        from nmfsep.plan import stem_names
    except ImportError as exc:  # pragma: no cover - broken installation
        if _debug():
            raise
        raise _fail(
            console, f"cannot import the separation code ({exc}); reinstall nmfsep"
        ) from None
    try:
        resolved = [resolve_dictionary(path) for path in dict_paths]
        loaded_dicts = tuple(d for d, _ in resolved)
        if n_sources == "auto":  # checked by _check_separate_usage; names come from the mix
            return loaded_dicts, ""
        stem_names(
            n_components=n_components,
            n_sources=n_sources,
            dictionaries=loaded_dicts,
            n_free=n_free,
        )
    except ParameterError as exc:
        if _debug():
            raise
        ctx.fail(_describe(exc))
    except _user_errors() as exc:
        if _debug():
            raise
        raise _fail(console, _describe(exc)) from None
    note = ""
    if any(is_builtin(str(p)) for p in dict_paths):
        note = "dictionaries: " + ", ".join(origin for _, origin in resolved)
    elif isinstance(n_sources, tuple):
        note = "built-in dictionaries: " + ", ".join(n for n in n_sources if is_builtin(n))
    return loaded_dicts, note


def _separate_files(
    console,
    mixtures: list[Path],
    out_dir: Path,
    *,
    force: bool,
    stream: bool,
    max_iter: int,
    as_json: bool,
    quiet: bool,
    kwargs: dict[str, Any],
    note: str = "",
) -> None:
    """``separate`` for files named one by one: in turn, a summary line each, exit 1 on failures.

    Output folders as :func:`nmfsep.io.output_names` names them (mixtures of the same
    name go to OUT/<relative path>/); the same file named twice fails the second time.
    """
    from nmfsep.io import output_names

    if stream:
        from nmfsep.stream import separate_stream

        separate_one: Callable[..., dict[str, Any]] = separate_stream
    else:
        from nmfsep.files import separate_file

        separate_one = separate_file
    summaries: list[dict[str, Any]] = []
    n_failed = 0
    seen_names: dict[str, Path] = {}
    with _progress(console, enabled=_show_progress(quiet)) as progress:
        files_task = progress.add_task("files", total=len(mixtures), visible=len(mixtures) > 1)
        iter_task = progress.add_task("NMF", total=max_iter)
        callback = _file_progress_callback(progress, iter_task, stream=stream)
        for mixture, name in zip(mixtures, output_names(mixtures), strict=True):
            what = "blocks" if stream else "NMF"
            progress.reset(iter_task, total=max_iter, description=f"{what} {mixture.name}")
            if name in seen_names:
                message = (
                    f"{mixture}: named twice ({seen_names[name]}), its stems would go to the "
                    f"same folder {out_dir / name}; name it once"
                )
                _say(progress.console, "error", message)
                summary, ok = {"input": str(mixture), "error": message}, False
            else:
                seen_names[name] = mixture
                summary, ok = _separate_listed(
                    progress.console, separate_one, mixture, out_dir, force=force,
                    callback=callback, kwargs={**kwargs, "name": name},
                )
                if ok and not as_json and not quiet:
                    progress.console.file.flush()
                    typer.echo(_summary_line(mixture, summary) + (f"; {note}" if note else ""))
            n_failed += not ok
            summaries.append(summary)
            progress.advance(files_task)
    if as_json:
        _print_json(summaries)
    if n_failed:
        raise typer.Exit(1)


def _file_progress_callback(progress, task, *, stream: bool) -> Callable[..., None] | None:
    """Return the per-file progress callback: NMF iterations, or with ``stream`` blocks."""
    if progress.disable:
        return None
    if not stream:
        return _PhasedCallback(progress, task)  # the harmonic choice's fits are shown too

    def callback(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return callback


def _separate_listed(
    console,
    separate_one: Callable[..., dict[str, Any]],
    mixture: Path,
    out_dir: Path,
    *,
    force: bool,
    callback: Callable[..., None] | None,
    kwargs: dict[str, Any],
) -> tuple[dict[str, Any], bool]:
    """Separate one mixture; report its warnings, or its error, on ``console``.

    Returns
    -------
    summary : dict
        The library's summary with ``input``, ``seconds`` and ``warnings``; for a
        failure ``{"input", "error"}``.
    ok : bool
        False for a failure.
    """
    start = time.perf_counter()
    try:
        with _captured_warnings() as caught:
            summary = separate_one(mixture, out_dir, force=force, callback=callback, **kwargs)
    except _user_errors() as exc:
        if _debug():
            raise
        message = _with_path(mixture, _describe(exc))
        for text in _warning_messages(caught):
            _say(console, "warning", _with_path(mixture, text))
        _say(console, "error", message)
        return {"input": str(mixture), "error": message}, False
    summary = dict(summary or {})
    summary.setdefault("input", str(mixture))
    summary.setdefault("seconds", round(time.perf_counter() - start, 3))
    messages = _warning_messages(caught, summary.get("warnings"))
    summary["warnings"] = messages
    for text in messages:
        _say(console, "warning", _with_path(mixture, text))
    return summary, True


def _separate_batch(
    console,
    mixtures: list[Path],
    out_dir: Path,
    *,
    jobs: int | None,
    scheduler: str | None,
    recursive: bool,
    force: bool,
    stream: bool,
    as_json: bool,
    quiet: bool,
    kwargs: dict[str, Any],
    note: str = "",
) -> None:
    """``separate`` for a batch: :func:`nmfsep.batch.separate_batch`, a table, exit 1 on failures.

    Errors and warnings are printed on stderr as each file finishes; stdout gets the
    table (when some file was done or skipped; otherwise the error lines say it all),
    the batch report with ``--json``, or nothing with ``--quiet``. ``note`` (which
    dictionaries built-in names resolved to, the same for every file) ends the table's
    closing line as it ends each summary line of files separated one by one.
    """
    with _errors_as_exit(console):
        from nmfsep.batch import expand_inputs, separate_batch

        reported: set[str] = set()
        with _progress(console, enabled=_show_progress(quiet)) as progress:
            total = None
            if not progress.disable:  # the bar's length from the start (a cheap listing)
                files, problems = expand_inputs(mixtures, recursive=recursive, exclude=out_dir)
                total = len(files) + len(problems)
            files_task = progress.add_task("files", total=total)

            def callback(record: dict[str, Any], done: int, total: int) -> None:
                progress.update(files_task, completed=done, total=total)
                status = record.get("status")
                where = record.get("input", "")
                if status == "failed":
                    reason = record.get("reason") or record.get("error_type") or "failed"
                    _say(progress.console, "error", _with_path(where, reason))
                    if _debug() and record.get("traceback"):  # an internal error, in a task
                        progress.console.print(record["traceback"], markup=False, highlight=False)
                elif status == "done":
                    for text in _warning_messages([], record.get("warnings")):
                        reported.add(text)
                        _say(progress.console, "warning", _with_path(where, text))

            with _captured_warnings() as caught:
                result = separate_batch(
                    [os.fspath(m) for m in mixtures],
                    out_dir,
                    n_jobs=jobs,
                    scheduler=scheduler,
                    force=force,
                    stream=stream,
                    recursive=recursive,
                    callback=callback,
                    **kwargs,
                )
            for text in _warning_messages(caught):
                if text not in reported:
                    _say(progress.console, "warning", text)
    if as_json:
        _print_json(result.to_dict())
    elif not quiet and (result.done or result.skipped):
        typer.echo(result.format_table() + (f"; {note}" if note else ""))
    if not result.ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- learn


@app.command(no_args_is_help=True)
def learn(
    clips: Annotated[
        list[Path],
        typer.Argument(
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="CLIP",
            help="Training clip(s) of ONE source (e.g. solo piano recordings).",
            show_default=False,
        ),
    ],
    name: Annotated[
        str,
        typer.Option(
            "-n",
            "--name",
            help="Source name; the stem of this source is written as <NAME>.wav.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="D.npz",
            help="Dictionary file to write (.npz, no pickle).",
            show_default=False,
            dir_okay=False,
        ),
    ],
    beta: _Beta = "kl",
    max_iter: _MaxIter = 200,
    tol: _Tol = 1e-4,
    seed: _Seed = 0,
    force: Annotated[bool, _force_option("the dictionary file if it exists")] = False,
    as_json: Annotated[bool, _json_option("what was learned")] = False,
    quiet: Annotated[bool, _quiet_option("no summary line")] = False,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Stream the clips in blocks (online NMF): memory does not grow with their "
            "duration, for hours of training audio. --max-iter/--tol do not apply.",
        ),
    ] = False,
    block_seconds: Annotated[
        float,
        typer.Option(
            "--block-seconds", min=0.01, callback=_finite,
            help="With --online: seconds of audio per block.",
        ),
    ] = 30.0,
    passes: Annotated[
        int,
        typer.Option("--passes", min=1, help="With --online: passes over the clips."),
    ] = 1,
    context: Annotated[
        int | None,
        typer.Option(
            "--context",
            min=1,
            max=64,
            help="Consecutive STFT frames each atom spans (temporal context) [default: 3; "
            "1 with --online, which learns single frames only]. 1 learns plain spectra.",
            show_default=False,
        ),
    ] = None,
    n_components: Annotated[
        int,
        typer.Option(
            "-k",
            "--n-components",
            min=1,
            max=10_000,
            help="Number of spectral atoms to learn (48 separated best in the benchmarks).",
        ),
    ] = _ATOMS_PER_SOURCE,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Also say how well the atoms generalise: learn once more from the first 80 "
            "% of every clip and report the fit (dB) on the held-back 20 % (takes twice "
            "as long; recorded in the file, shown by nmfsep info).",
        ),
    ] = False,
    pitch_shifts: Annotated[
        str | None,
        typer.Option(
            "--pitch-shifts",
            metavar="S1,S2,...",
            help="Augmentation: also learn from the clips shifted by these semitones (e.g. "
            "-2,-1,1,2), so the atoms cover notes around those the clips play; 'none' "
            "turns it off (better when the clips already play every note of the register, "
            "e.g. a sweep); 'auto' tries -2,-1,1,2 and keeps it if it fits held-back audio "
            "of the clips better [default: -2,-1,1,2].",
            show_default=False,
        ),
    ] = None,
    harmonic: Annotated[
        str | None,
        typer.Option(
            "--harmonic",
            metavar="auto|off|LOW-HIGH",
            help="Harmonic atoms: one per third of a semitone, with the partial amplitudes "
            "the clips teach, so notes the clips do not play are covered too. 'auto' adds "
            "them when the clips are pitched, over the notes they play ± 12 semitones; "
            "LOW-HIGH (e.g. C4-C7 or 60-96) over that range (the register of the song "
            "you will separate); 'off' learns plain atoms only (smaller, faster files). "
            "Separation uses them when every source has them. [default: auto; off with "
            "--online]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Learn a dictionary of spectral atoms for one source from training clips.

    Example: [bold]nmfsep learn piano1.wav piano2.wav -n piano -k 16 -o piano.npz[/].
    The file is then used with [bold]nmfsep separate MIX --dict piano.npz[/].
    """
    console = _stderr_console()
    from nmfsep import io

    try:
        io.check_name(name)
    except _user_errors() as exc:
        raise typer.BadParameter(_describe(exc), param_hint="'-n' / '--name'") from None
    _check_output(console, output, force=force, example=name + ".npz", inputs=clips)
    if online and context not in (None, 1):
        raise _fail(
            console,
            f"--context {context} does not apply with --online (online learning learns "
            "single frames); drop --context or --online",
        )
    with _errors_as_exit(console):
        dictionary = _learn_with_progress(
            console,
            clips,
            name,
            n_components,
            quiet=quiet,
            online=online,
            beta=beta,
            max_iter=max_iter,
            tol=tol,
            random_state=seed,
            context_frames=context,
            pitch_shifts=_parse_shifts(pitch_shifts),
            harmonic=_parse_harmonic(harmonic),
            **({"validate": _VALIDATE_FRACTION} if validate else {}),
            block_seconds=block_seconds,
            passes=passes,
        )
        written = dictionary.save(output, force=force)
    info = _dictionary_info(dictionary, written)
    if as_json:
        _print_json(info)
    elif not quiet:
        typer.echo(_learned_line(info, name, online=online))


def _parse_shifts(text: str | None) -> str | list[float] | None:
    """Parse ``--pitch-shifts`` ("-2,-1,1,2", "none"); None keeps the library's default."""
    if text is None:
        return None
    if text.strip().lower() == "auto":
        return "auto"
    if text.strip().lower() in ("", "none", "0"):
        return []
    from nmfsep.dictionary import check_pitch_shifts
    from nmfsep.exceptions import ParameterError

    try:
        shifts = [float(part) for part in text.split(",")]
        check_pitch_shifts(shifts)
    except (ValueError, ParameterError):  # not numbers; NaN, beyond ±12 or repeated
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of distinct non-zero semitones from "
            "-12 to 12, e.g. -2,-1,1,2 or none",
            param_hint="'--pitch-shifts'",
        ) from None
    return shifts


def _parse_harmonic(text: str | None) -> str | tuple[float, float] | None:
    """Parse ``--harmonic`` (auto, off, LOW-HIGH); None keeps the library's default."""
    if text is None or text.strip().lower() in ("auto", "off"):
        return None if text is None else text.strip().lower()
    from nmfsep.harmonic import parse_pitch_range

    try:
        return parse_pitch_range(text)
    except _user_errors() as exc:
        raise typer.BadParameter(_describe(exc), param_hint="'--harmonic'") from None


def _learn_with_progress(
    console, clips: list[Path], name: str, n_components: int, *, quiet: bool, online: bool,
    **kwargs: Any,
) -> Any:
    """Run :func:`nmfsep.dictionary.learn_dictionary_files` under a progress display.

    Its warnings are reported as ``warning: ...`` lines; ``kwargs`` are passed on.
    """
    from nmfsep.dictionary import learn_dictionary_files

    with _progress(console, enabled=_show_progress(quiet)) as progress:
        if online:
            task = progress.add_task(f"learning {name} (audio s)", total=None)

            def seconds_callback(done: float, total: float) -> None:
                progress.update(task, completed=round(done, 1), total=round(total, 1))

            callbacks: dict[str, Any] = {"callback": seconds_callback}
        else:
            load_task = progress.add_task("loading clips", total=len(clips))
            iter_task = progress.add_task(f"learning {name}", total=kwargs["max_iter"])

            def load_callback(done: int, total: int) -> None:
                progress.update(load_task, completed=done)

            callbacks = {
                "callback": _iteration_callback(progress, iter_task),
                "load_callback": load_callback,
            }
        with _captured_warnings() as caught:
            dictionary = learn_dictionary_files(
                clips,
                name,
                n_components,
                online=online,
                **kwargs,
                **({} if progress.disable else callbacks),
            )
        for text in _warning_messages(caught):
            _say(progress.console, "warning", text)
    return dictionary


def _learned_line(info: dict[str, Any], name: str, *, online: bool) -> str:
    """``piano.npz: 216 atoms (168 harmonic) for 'piano' learned from 2 clips (3.0 s) at ...``."""
    clips = info["clips"]
    total = sum(float(c["duration"]) for c in clips)
    how = "learned online" if online else "learned"
    fit = (info.get("training") or {}).get("validation") or {}
    check = f"; held-out fit {fit['fit_db']:.1f} dB" if "fit_db" in fit else ""
    harmonic = ((info.get("training") or {}).get("harmonic") or {}).get("atoms", 0)
    of = f" ({harmonic} harmonic)" if harmonic else ""
    return (
        f"{info['path']}: {info.get('k')} atoms{of} for {name!r} {how} from {len(clips)} "
        f"clip{'s' if len(clips) != 1 else ''} ({total:.1f} s) at {info.get('sr')} Hz{check}"
    )


# --------------------------------------------------------------------------- info


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if not isinstance(obj, dict) and hasattr(obj, name):
            return getattr(obj, name)
    return default


def _label_counts(labels: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in list(labels if labels is not None else []):
        counts[str(label)] = counts.get(str(label), 0) + 1
    return counts


_BETA_LABELS = {0.0: "itakura-saito", 1.0: "kullback-leibler", 2.0: "frobenius"}


def _beta_text(beta: Any) -> str:
    """``1 (kullback-leibler)`` for the named β, the number otherwise."""
    if isinstance(beta, str):
        return beta
    try:
        value = float(beta)
    except (TypeError, ValueError):
        return str(beta)
    name = _BETA_LABELS.get(value)
    return f"{value:g} ({name})" if name else f"{value:g}"


def _dictionary_info(dictionary: Any, path: Path) -> dict[str, Any]:
    """Describe what a :class:`nmfsep.dictionary.Dictionary` holds, as JSON values."""
    return {
        "kind": "dictionary",
        "path": str(path),
        "k": dictionary.n_atoms,
        "n_bins": dictionary.n_bins,
        "context_frames": dictionary.context_frames,
        "sources": {name: len(idx) for name, idx in dictionary.groups.items()},
        "sr": dictionary.sr,
        "stft": dictionary.stft.to_dict(),
        "power": dictionary.power,
        "beta": dictionary.beta,
        "normalization": dictionary.normalization,
        "clips": [dict(c) for c in dictionary.clips],
        "provenance": dict(dictionary.provenance),
        "nmfsep_version": dictionary.nmfsep_version,
        "training": dict(dictionary.training),
    }


def _model_info(model: Any, path: Path) -> dict[str, Any]:
    """Describe what a :class:`nmfsep.model.Factorization` holds, as JSON values."""
    settings = dict(model.settings)
    info: dict[str, Any] = {
        "kind": "model",
        "path": str(path),
        "mode": settings.get("mode"),
        "k": int(model.H.shape[0]),
        "n_bins": int(model.H.shape[1]),
        "n_frames": int(model.W.shape[0]),
        "sources": {name: len(idx) for name, idx in model.groups.items()},
        "sr": model.sr,
        "stft": model.stft.to_dict(),
        "power": settings.get("power"),
        "beta": settings.get("beta"),
        "mask": settings.get("mask"),
        "mask_power": settings.get("mask_power"),
        "n_iter": model.n_iter,
        "converged": model.converged,
        "warnings": list(model.warnings),
        "clips": [c for d in settings.get("dictionaries") or [] for c in d.get("clips", [])],
        "nmfsep_version": model.nmfsep_version,
        "settings": settings,
    }
    if model.analysis_sr != model.sr or model.analysis_stft != model.stft:
        info["analysis_sr"] = model.analysis_sr
        info["analysis_stft"] = model.analysis_stft.to_dict()
    if model.Q is not None:  # spatial="gains": where each stem sits
        from nmfsep.ntf import group_positions

        found = group_positions(model.W, model.H, model.Q, model.groups,
                                float(settings.get("power") or 1.0))
        info["positions"] = {name: {"gains": [round(float(g), 4) for g in gains],
                                    "pan": None if pan is None else round(pan, 4)}
                             for name, (gains, pan) in found.items()}
    return info


def _format_stft(stft: Any) -> str:
    d = _jsonable(stft)
    if isinstance(d, dict):
        parts = [f"n_fft={d.get('n_fft')}", f"hop={d.get('hop_length')}"]
        if d.get("win_length") is not None:
            parts.append(f"win={d.get('win_length')}")
        parts.append(f"window={d.get('window')}")
        if "center" in d:
            parts.append(f"center={d.get('center')}")
        return ", ".join(parts)
    return str(d)


def _format_info(info: dict[str, Any]) -> list[str]:
    lines = [f"{info['path']}: {'dictionary' if info['kind'] == 'dictionary' else 'saved model'}"]
    if info.get("k") is not None:
        extra = f" × {info['n_bins']} frequency bins" if info.get("n_bins") else ""
        context = info.get("context_frames") or 1
        if context > 1:
            extra += f", each spanning {context} frames (temporal context)"
        lines.append(f"  atoms:         {info['k']}{extra}")
    sources = info.get("sources") or {}
    if sources:
        text = ", ".join(f"{name} ({n} atom{'s' if n != 1 else ''})" for name, n in sources.items())
        lines.append(f"  sources:       {text}")
    if info.get("n_frames") is not None:
        lines.append(f"  frames:        {info['n_frames']}")
    if info.get("mode"):
        lines.append(f"  mode:          {info['mode']}")
    if info.get("sr") is not None:
        lines.append(f"  sample rate:   {info['sr']} Hz")
    if info.get("stft") is not None:
        lines.append(f"  STFT:          {_format_stft(info['stft'])}")
    if info.get("analysis_sr") is not None:
        lines.append(
            f"  analysis:      {info['analysis_sr']} Hz, {_format_stft(info['analysis_stft'])}"
        )
    if info.get("power") is not None:
        power = info["power"]
        kind = {1.0: " (magnitude)", 2.0: " (power)"}.get(float(power), "")
        lines.append(f"  spectrogram:   |X|^{float(power):g}{kind}")
    if info.get("beta") is not None:
        lines.append(f"  β-divergence:  {_beta_text(info['beta'])}")
    if info.get("mask") is not None:
        mask_power = info.get("mask_power")
        extra = f", power {mask_power:g}" if isinstance(mask_power, int | float) else ""
        lines.append(f"  mask:          {info['mask']}{extra}")
    if info.get("n_iter") is not None:
        max_iter = (info.get("settings") or {}).get("max_iter")
        state = ("converged" if info.get("converged") else "stopped at --max-iter"
                 if not isinstance(max_iter, int) or info["n_iter"] >= max_iter else
                 "stopped at the end of its schedule, before --tol")
        lines.append(f"  iterations:    {info['n_iter']} ({state})")
    for text in info.get("warnings") or []:
        lines.append(f"  warning:       {text}")
    if info.get("normalization") is not None:
        lines.append(f"  normalization: {info['normalization']}")
    clips = _jsonable(info.get("clips")) or []
    if clips:
        lines.append(f"  clips:         {len(clips)}")
        for clip in clips:
            if isinstance(clip, dict):
                label = clip.get("name", clip.get("path", "?"))
                duration = clip.get("duration")
                dur = f" ({duration:.1f} s)" if isinstance(duration, int | float) else ""
                lines.append(f"    {label}{dur}")
            else:
                lines.append(f"    {clip}")
    prov = info.get("provenance") or {}
    if isinstance(prov, dict) and prov.get("licence"):
        lines.append(f"  provenance:    {prov.get('description', '')} ({prov['licence']}), "
                     f"{prov.get('script', '?')} v{prov.get('script_version', '?')}")
    return lines + _training_lines(info.get("training") or {})


def _harmonic_lines(record: dict[str, Any]) -> list[str]:
    """``info`` line for a dictionary's harmonic atoms, if any were asked for."""
    if not record:
        return []
    if not record.get("atoms"):
        return [f"  harmonic:      none (the clips do not sound pitched: mean voiced "
                f"probability {record.get('voiced_probability', 0):.2f})"]
    low, high = record.get("range", ["?", "?"])
    how = f"the pitch of the clips ± {record['margin']:g}" if "margin" in record else "given"
    return [f"  harmonic:      {record['atoms']} atoms (incl. {record.get('noise_atoms', 0)} "
            f"noise), MIDI {low:g}-{high:g} ({how})"]


def _training_lines(training: dict[str, Any]) -> list[str]:
    """``info`` lines for a dictionary's augmentation and validation, if recorded."""
    lines = []
    shifts = (training.get("augmentation") or {}).get("pitch_shifts")
    if shifts:
        text = ", ".join(f"{s:+g}" for s in shifts if isinstance(s, int | float))
        lines.append(f"  augmentation:  pitch shifts {text} semitones")
    lines += _harmonic_lines(training.get("harmonic") or {})
    fit = training.get("validation") or {}
    if isinstance(fit.get("fit_db"), int | float):
        share = fit.get("fraction")
        held = f"held-back {share:.0%} of every clip" if isinstance(share, float) else "audio"
        lines.append(f"  validation:    fit {fit['fit_db']:.1f} dB on {held} "
                     f"({fit.get('seconds', 0):.1f} s)")
    return lines


@app.command(no_args_is_help=True)
def info(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="FILE.npz",
            help="A dictionary (from nmfsep learn, or a built-in's name) or a saved model "
            "(separate --save-model).",
            show_default=False,
        ),
    ] = None,
    builtin: Annotated[
        bool, typer.Option("--builtin", help="List the built-in dictionaries instead.")
    ] = False,
    as_json: Annotated[bool, _json_option("the information")] = False,
) -> None:
    """Show what a dictionary or saved model holds, or list the built-in dictionaries.

    Atoms, labels (or sources), sample rate, STFT settings, spectrogram power, β and
    training clips; [bold]--builtin[/]: name, atoms, sample rate, size and provenance of
    every built-in; [bold]--json[/] for scripts.
    """
    if builtin or file is None:
        if file is not None or not builtin:
            ctx.fail("give FILE.npz or --builtin, not both" if file else "give FILE.npz")
        _print_builtins(as_json)
        return
    console = _stderr_console()
    try:
        details = _load_info(file)
    except _user_errors() as exc:
        if _debug():
            raise
        raise _fail(console, _with_path(file, _describe(exc))) from None
    if as_json:
        _print_json(details)
    else:
        for line in _format_info(details):
            typer.echo(line)


def _print_builtins(as_json: bool) -> None:
    """``info --builtin``: one line per built-in dictionary, or the JSON list."""
    from nmfsep.builtins import BUILTIN_DIR, builtin_info

    table = builtin_info()
    if as_json:
        _print_json(table)
        return
    total = sum(d["bytes"] for d in table)
    typer.echo(f"{len(table)} built-in dictionaries in {BUILTIN_DIR} ({total / 1e6:.1f} MB):")
    for d in table:
        typer.echo(f"  {d['name']:8s} {d['atoms']} atoms x {d['context_frames']} frames, "
                   f"{d['sr']} Hz, {d['bytes'] / 1e6:.2f} MB: {d['description']}; from "
                   f"{', '.join(d['sources'])} ({d['licence']}); {d['script']}")


def _load_info(file: Path) -> dict[str, Any]:
    """Load a dictionary or a saved model (told apart by the ``kind`` in its metadata)."""
    from nmfsep._npz import parse_meta, read_npz
    from nmfsep.builtins import existing_path
    from nmfsep.dictionary import Dictionary
    from nmfsep.exceptions import DictionaryError

    file = existing_path(file)

    kind = None
    try:
        raw = read_npz(file, ("meta",), what="dictionary")["meta"]
        kind = parse_meta(file, raw, what="dictionary").get("kind")
    except DictionaryError:
        pass  # Dictionary.load below says what is wrong
    if kind == "model":
        from nmfsep.model import load_model

        return _model_info(load_model(file), file)
    return _dictionary_info(Dictionary.load(file), file)


# --------------------------------------------------------------------------- plot


@app.command("plot", no_args_is_help=True)
def plot_command(
    source: Annotated[
        Path,
        typer.Argument(
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="SOURCE.npz",
            help="A dictionary (from nmfsep learn, or a built-in's name) or a saved model "
            "(separate --save-model).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="OUT.png|svg",
            help="Figure to write; the format follows the suffix (.png or .svg).",
            callback=_figure_path_callback,
            show_default=False,
        ),
    ],
    linear: Annotated[
        bool,
        typer.Option(
            "--linear", help="Linear frequency axis (default: logarithmic, with note names)."
        ),
    ] = False,
    force: Annotated[bool, _force_option("the figure if it exists")] = False,
) -> None:
    """Draw the atoms of a dictionary, or a separation (atoms, activations, masks).

    Example: [bold]nmfsep plot piano.npz -o piano.png[/]; a model saved by
    [bold]nmfsep separate MIX -k 8 --save-model[/] gives the overview of the separation.
    """
    from nmfsep.builtins import existing_path

    console = _stderr_console()
    with _errors_as_exit(console):
        source = existing_path(source)  # as info and --dict: a built-in's NAME
    _check_output(console, output, force=force, example="figure.png", inputs=[source])
    with _errors_as_exit(console):
        from nmfsep.plots import plot_file

        with _captured_warnings() as caught:
            written = plot_file(
                source, output, force=force, freq_scale="linear" if linear else "log"
            )
        _say_warnings(console, caught)
    typer.echo(f"{written}: figure of {source}")


# --------------------------------------------------------------------------- eval


@app.command("eval", no_args_is_help=True)
def eval_command(
    ctx: typer.Context,
    references: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            "-r",
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="REF",
            help="True source (audio file); repeat for each source. Its name is the file "
            "name without extension.",
            show_default=False,
        ),
    ] = None,
    estimates: Annotated[
        list[Path] | None,
        typer.Option(
            "--estimate",
            "-e",
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="EST",
            help="Separated stem (audio file); repeat for each stem.",
            show_default=False,
        ),
    ] = None,
    mixture: Annotated[
        Path | None,
        typer.Option(
            "--mixture",
            "-m",
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="MIX",
            help="The mixture that was separated, for SI-SDRi (improvement over the mixture).",
            show_default=False,
        ),
    ] = None,
    match: Annotated[
        Literal["name", "permutation"],
        typer.Option(
            "--match",
            help="Pair estimates with references by file name, or by the permutation with "
            "the best SDR (blind stems such as source_1.wav).",
        ),
    ] = "name",
    oracle: Annotated[
        Literal["irm", "wiener", "ibm"] | None,
        typer.Option(
            "--oracle",
            help="Also score an oracle-mask separation computed from the references "
            "(ideal ratio, Wiener or binary mask): the ceiling of masking.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, _json_option("the scores (instead of a table)")] = False,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            metavar="PATH",
            help="Also write one row per stem as CSV (full precision).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, _force_option("the --csv file if it exists")] = False,
    framewise: Annotated[
        float | None,
        typer.Option(
            "--framewise",
            metavar="S",
            callback=lambda v: None if v is None else _positive_float(v),
            help="SDR/SIR/SAR as medians over windows of S seconds (museval/SiSEC style, "
            "e.g. 1), skipping silent windows; SI-SDR stays whole-signal.",
            show_default=False,
        ),
    ] = None,
    images: Annotated[
        bool | None,
        typer.Option(
            "--images/--downmix",
            help="Score stereo (multichannel) stems as source images: SDR, ISR (how well "
            "the stereo image is kept), SIR, SAR; or as mono downmixes. [default: images "
            "for stereo references without --framewise]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score separated stems against the true sources: SDR, SIR, SAR, SI-SDR, SI-SDRi.

    Example: [bold]nmfsep eval -r piano.wav -r flute.wav -e separated/mix/piano.wav
    -e separated/mix/flute.wav -m mix.wav[/]. Signals are compared as mono at the first
    reference's rate (BSS Eval v3, as mir_eval's bss_eval_sources).
    """
    if not references or not estimates:
        missing = " and ".join(
            name
            for name, given in (("--reference", references), ("--estimate", estimates))
            if not given
        )
        ctx.fail(
            f"missing {missing}: give each true source with --reference REF and each "
            "separated stem with --estimate EST (repeat the option per file)"
        )
    console = _stderr_console()
    _check_output(console, csv_path, force=force, example="scores.csv",
                  inputs=[*references, *estimates, *([mixture] if mixture else [])])
    with _errors_as_exit(console):
        from nmfsep.evaluate import evaluate_files

        with _progress(console, enabled=_show_progress(False)) as progress:
            progress.add_task("evaluating", total=None)
            with _captured_warnings() as caught:
                result = evaluate_files(
                    references, estimates, mixture_path=mixture, match=match, oracle=oracle,
                    framewise=framewise, images=images,
                )
        _say_warnings(console, caught, result.warnings)
        if csv_path is not None:
            result.to_csv(csv_path)
    if as_json:
        _print_json(result.to_dict())
    else:
        typer.echo(result.format_table())


# --------------------------------------------------------------------------- rank


def _load_clips(progress, clips: list[Path]) -> tuple[list[Any], int]:
    """Read every clip at the first one's sample rate (one error line for a bad one)."""
    from nmfsep import io

    load_task = progress.add_task("loading clips", total=len(clips))
    loaded = []
    sr: int | None = None
    for clip in clips:
        with _errors_as_exit(progress.console, clip):
            y, clip_sr = io.load(clip, sr=sr)
        sr = clip_sr if sr is None else sr
        loaded.append(y)
        progress.advance(load_task)
    assert sr is not None  # CLIP is a required argument: one clip or more
    return loaded, sr


def _ks_that_fit(console, ks: list[int], clips: list, sr: int,
                 seconds: float | None) -> list[int]:
    """Cut the default k grid to what short clips allow (at most their STFT frames).

    A grid the user gave is not cut: :func:`nmfsep.rank.rank_sweep` refuses a k too large.
    The default analysis pads a clip to at least 5 frames, so k=2 always stays.
    """
    from nmfsep.spectral import FrameGrid, STFTConfig

    config = STFTConfig.for_sample_rate(sr)
    keep = None if seconds is None else max(1, round(float(seconds) * float(sr)))
    grid = FrameGrid.of(config)
    frames = sum(grid.n_frames(y.shape[-1] if keep is None else min(y.shape[-1], keep))
                 for y in clips)
    most = min(frames, config.n_fft // 2 + 1)
    fitting = [k for k in ks if k <= most]
    if len(fitting) < len(ks):
        tried = ",".join(map(str, fitting))
        _say(console, "warning", f"the audio gives only {frames} STFT frames "
             f"({sum(y.shape[-1] for y in clips) / sr:.3g} s), so k can be at most {most}: "
             f"trying k={tried} of the default {','.join(map(str, ks))}; longer clips allow "
             "more components")
    return fitting


@app.command("rank", no_args_is_help=True)
def rank_command(
    ctx: typer.Context,
    clips: Annotated[
        list[Path],
        typer.Argument(
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="CLIP",
            help="Audio to model: a mixture, or training clips of one source (their "
            "frames are pooled; all are read at the first clip's sample rate).",
            show_default=False,
        ),
    ],
    ks: Annotated[
        str,
        typer.Option(
            "-k",
            "--ks",
            metavar="K,K,...",
            help="Numbers of components to try (comma-separated).",
            callback=_ks_callback,
        ),
    ] = _RANK_KS,
    seeds: Annotated[
        str,
        typer.Option(
            "--seeds",
            metavar="S,S,...",
            help="Random initialisations per k (comma-separated); two or more measure how "
            "stable the atoms are.",
            callback=_seeds_callback,
        ),
    ] = _RANK_SEEDS,
    beta: _Beta = "kl",
    max_iter: _MaxIter = _RANK_MAX_ITER,
    tol: _Tol = 1e-4,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            metavar="S",
            help="Analyse at most S seconds of each clip (its middle), to bound the time.",
            callback=lambda v: None if v is None else _positive_float(v),
            show_default=False,
        ),
    ] = None,
    min_gain: Annotated[
        float,
        typer.Option(
            "--min-gain",
            min=0.0,
            max=1.0,
            help="The error curve is flat where one more component lowers the divergence "
            "by less than this fraction.",
        ),
    ] = _RANK_MIN_GAIN,
    min_stability: Annotated[
        float,
        typer.Option(
            "--min-stability",
            min=-1.0,
            max=1.0,
            help="Smallest acceptable stability (mean matched cosine similarity of the atoms "
            "across seeds).",
        ),
    ] = _RANK_MIN_STABILITY,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="OUT.png|svg",
            help="Also draw error and stability against k.",
            callback=_figure_path_callback,
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, _force_option("the --plot figure if it exists")] = False,
    as_json: Annotated[bool, _json_option("every run and the suggestion")] = False,
    quiet: Annotated[bool, _quiet_option("print only the suggested k (for scripts)")] = False,
    sources: Annotated[
        bool,
        typer.Option(
            "--sources",
            help="Instead of k: suggest the number of sources of a mixture (for separate "
            "--sources), whether one is drums (--percussive), and how sure it is.",
        ),
    ] = False,
) -> None:
    """Suggest a number of components k: NMF error and atom stability for several k.

    Example: [bold]nmfsep rank mix.wav -k 2,4,8,16 --plot rank.png[/]. The table ends
    with the suggested k and why; use it as [bold]-k[/] of separate or learn.
    [bold]nmfsep rank mix.wav --sources[/] suggests the number of sources instead.
    """
    console = _stderr_console()
    if sources:
        _suggest_sources(console, clips, seconds=seconds, as_json=as_json, quiet=quiet)
        return
    k_list = cast("list[int]", ks)  # as _ks_callback made it
    _check_output(console, plot, force=force, example="rank.png", inputs=clips)
    with _errors_as_exit(console):
        from nmfsep.rank import rank_sweep_audio

        with _progress(console, enabled=_show_progress(quiet)) as progress:
            loaded, sr = _load_clips(progress, clips)
            # by name: typer may bundle its own click, whose ParameterSource is another enum
            if getattr(ctx.get_parameter_source("ks"), "name", "DEFAULT") in (
                    "DEFAULT", "DEFAULT_MAP"):
                k_list = _ks_that_fit(progress.console, k_list, loaded, sr, seconds)
            sweep_task = progress.add_task("NMF runs", total=len(k_list) * len(seeds))

            def callback(done: int, total: int) -> None:
                progress.update(sweep_task, completed=done, total=total)

            with _captured_warnings() as caught:
                result = rank_sweep_audio(
                    loaded,
                    sr,
                    k_list,
                    seconds=seconds,
                    seeds=seeds,
                    beta=beta,
                    max_iter=max_iter,
                    tol=tol,
                    min_gain=min_gain,
                    min_stability=min_stability,
                    callback=None if progress.disable else callback,
                )
            _say_warnings(progress.console, caught)
    # Print first: a figure that cannot be written must not cost the sweep's results.
    if as_json:
        document = result.to_dict()
        document["clips"] = [str(clip) for clip in clips]
        document["plot"] = None if plot is None else str(plot)
        _print_json(document)
    elif quiet:
        typer.echo(str(result.suggested_k))
    else:
        typer.echo(result.format_table())
    if plot is not None:
        with _errors_as_exit(console):
            if "matplotlib" not in sys.modules:
                os.environ.setdefault("MPLBACKEND", "Agg")  # files only, never a window
            from nmfsep.plots import rank_figure, save_figure

            save_figure(rank_figure(result), plot, force=force)


def _suggest_sources(console, clips: list[Path], *, seconds: float | None, as_json: bool,
                     quiet: bool) -> None:
    """``rank --sources``: :func:`nmfsep.sources.suggest_sources` of each mixture."""
    with _errors_as_exit(console):
        from nmfsep import io
        from nmfsep.auto_sources import MIN_AUTO_SECONDS
        from nmfsep.exceptions import AudioFormatError
        from nmfsep.separate import check_mixture
        from nmfsep.sources import suggest_sources
        from nmfsep.spectral import STFTConfig

        found = []
        for clip in clips:
            with _errors_as_exit(console, clip):
                y, sr = check_mixture(*io.load(clip))
                need = max(math.ceil(MIN_AUTO_SECONDS * sr), STFTConfig.for_sample_rate(sr).n_fft)
                if y.shape[1] < need:
                    raise AudioFormatError(
                        f"is {y.shape[1]} samples long ({y.shape[1] / sr:.3g} s); suggesting "
                        f"a number of sources needs at least {need} samples at {sr} Hz "
                        f"({MIN_AUTO_SECONDS:g} s, and one STFT frame)")
            found.append(suggest_sources(y, sr, seconds=30.0 if seconds is None else seconds))
    if as_json:
        _print_json([{"mixture": str(c), **s.to_dict()} for c, s in zip(clips, found,
                                                                      strict=True)])
        return
    for clip, s in zip(clips, found, strict=True):
        if quiet:
            typer.echo(str(s.n_sources))
            continue
        drums = "one of them drums (use --percussive)" if s.drums else "no drums"
        typer.echo(f"{clip}: {s.n_sources} sources, {drums}; confidence {s.confidence:.2f} "
                   f"(percussive share {s.share:.2f}, harmonic votes {s.votes})")


# --------------------------------------------------------------------------- report


def _parse_references(ctx: typer.Context, values: list[str] | None) -> dict[str, Path] | None:
    """``NAME=PATH`` or a bare ``PATH`` (named after its file stem) -> {name: path}."""
    if not values:
        return None
    references: dict[str, Path] = {}
    for value in values:
        if "=" in value and not Path(value).exists():
            name, _, path = value.partition("=")
            name = name.strip()
            if not name or not path:
                ctx.fail(f"--reference {value!r}: give NAME=PATH (e.g. piano=piano.wav) or PATH")
        else:
            name, path = Path(value).stem, value
        if name in references:
            ctx.fail(
                f"--reference: two references are named {name!r} ({references[name]} and "
                f"{path}); name them with NAME=PATH"
            )
        references[name] = Path(path)
    return references


@app.command("report", no_args_is_help=True)
def report_command(
    ctx: typer.Context,
    model: Annotated[
        Path,
        typer.Argument(
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="MODEL.npz",
            help="A model saved by nmfsep separate --save-model; its stems must be in the "
            "same folder. report.html is written there.",
            show_default=False,
        ),
    ],
    mixture: Annotated[
        Path | None,
        typer.Option(
            "--mixture",
            "-m",
            readable=False,  # an unreadable input is a bad input (exit 1), not usage
            metavar="MIX",
            help="The separated mixture (copied next to the stems as mixture.wav); default: "
            "mixture.wav of that folder, else the sum of the stems.",
            show_default=False,
        ),
    ] = None,
    references: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            "-r",
            metavar="NAME=PATH",
            help="True source, to add SDR/SIR/SAR/SI-SDR scores; repeat per source. A bare "
            "PATH is named after its file name without extension.",
            show_default=False,
        ),
    ] = None,
    match: Annotated[
        Literal["auto", "name", "permutation"],
        typer.Option(
            "--match",
            help="Pair stems with references by name, by the best permutation, or auto "
            "(by name when the names agree).",
        ),
    ] = "auto",
    force: Annotated[
        bool, _force_option("report.html (and a mixture.wav that does not fit)")
    ] = False,
) -> None:
    """Write an HTML report of a saved separation: players, figures, settings, scores.

    Example: [bold]nmfsep separate mix.wav -k 8 --save-model[/], then [bold]nmfsep report
    separated/mix/model.npz -m mix.wav[/]. The page works offline (no script, no network).
    """
    refs = _parse_references(ctx, references)
    console = _stderr_console()
    with _errors_as_exit(console):
        from nmfsep.report import report_from_model

        with _progress(console, enabled=_show_progress(False)) as progress:
            progress.add_task("writing the report", total=None)
            with _captured_warnings() as caught:
                written = report_from_model(
                    model, mixture=mixture, references=refs, match=match, force=force
                )
        _say_warnings(console, caught)
    typer.echo(f"{written}: report of {model}")


# --------------------------------------------------------------------------- version


_VERSION_PACKAGES = (
    "numpy",
    "scipy",
    "librosa",
    "soundfile",
    "soxr",
    "typer",
    "rich",
    "joblib",
    "distributed",
)


@app.command("version")
def version_command(
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Also print Python, platform and dependency versions (for bug reports)."
        ),
    ] = False,
) -> None:
    """Print the version of nmfsep (with --full: of its dependencies too)."""
    typer.echo(f"nmfsep {_version()}")
    if not full:
        return
    import platform
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    typer.echo(f"python {platform.python_version()} ({platform.python_implementation()})")
    typer.echo(f"platform {platform.platform()}")
    for package in _VERSION_PACKAGES:
        try:
            typer.echo(f"{package} {dist_version(package)}")
        except PackageNotFoundError:
            typer.echo(f"{package} not installed")
    from nmfsep.io import libsndfile_version

    typer.echo(f"libsndfile {libsndfile_version() or 'not found'}")


# --------------------------------------------------------------------------- entry point


#: The termination signals handled as Ctrl-C is (SIGINT): outputs cleaned up, then exit.
_TERMINATION_SIGNALS = ("SIGTERM", "SIGHUP")
_received: list[int] = []


def _on_signal(signum: int, frame: Any) -> None:
    """Stop the run as Ctrl-C does, so that every temporary output is removed."""
    first = not _received
    _received.append(signum)
    if first:  # later signals must not interrupt the clean-up
        raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM and SIGHUP like SIGINT inside (main thread only)."""
    import signal

    previous = {}
    for name in _TERMINATION_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = handler_before(sig, signal.signal(sig, _on_signal))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> None:
    """Console-script entry point (``nmfsep``); ``python -m nmfsep`` calls it too.

    SIGTERM and SIGHUP stop a run as Ctrl-C does (no temporary or partial output is
    left) and exit with status 128 + the signal's number, also while the package is
    still being imported (:mod:`nmfsep._startup`); Ctrl-C exits with status 130. With
    ``NMFSEP_DEBUG=1`` every error is re-raised with a plain, full traceback.
    """
    import signal

    if _debug():
        app.pretty_exceptions_enable = False
    try:
        with _signals_as_interrupt():
            early = take_over()  # a signal that came while nmfsep was being imported
            if early is not None:
                if early != signal.SIGINT:
                    _received.append(early)
                raise KeyboardInterrupt(f"signal {early}")
            app(prog_name="nmfsep")
    except (SystemExit, KeyboardInterrupt) as exc:
        if not _received:
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C outside the command: as inside
                raise SystemExit(130) from None
            raise
        name = signal.Signals(_received[0]).name
        _say(_stderr_console(), "error", f"stopped by {name}; no partial output was left")
        raise SystemExit(128 + _received[0]) from None


if __name__ == "__main__":  # pragma: no cover
    main()
