"""Running the command line in tests: one runner, plain text, and the one-error-line check."""

from __future__ import annotations

from typer.testing import CliRunner

from nmfsep.cli import app

# Plain text whatever the CI sets (rich honours FORCE_COLOR even when not on a terminal).
NO_COLOR_ENV = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "NO_COLOR": "1", "NMFSEP_DEBUG": None}
runner = CliRunner(env=NO_COLOR_ENV)


def run(*args, env=None):
    """Invoke ``nmfsep ARGS`` in-process; every argument is passed as a string."""
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_error_line(result, *needles: str) -> str:
    """stderr is exactly one ``error: ...`` line (no traceback) mentioning every needle."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
