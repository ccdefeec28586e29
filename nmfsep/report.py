"""HTML reports of a separation: players, figures, parameters, versions and metrics.

:func:`write_report` writes one self-contained ``report.html`` per mixture, next to
the stems (``OUT/<mix stem>/<name>.wav``):

* an ``<audio controls preload="metadata">`` player for the mixture and for every
  stem, **linked** by relative URL to the WAV files of the same folder (the audio is
  not embedded: a few minutes of float WAV would make the page tens of MB). The
  mixture is written there as ``mixture.wav`` (float WAV, like the stems) when it is
  not there yet;
* the figures of :mod:`nmfsep.plots` embedded as base64 PNG: the separation overview
  (mixture spectrogram, loss curve, atoms, activations, masks) and one spectrogram
  per stem;
* the parameters of the run (a table and the full settings as JSON), the versions of
  nmfsep and of the libraries, and, when references are given, the BSS Eval / SI-SDR
  table of :func:`nmfsep.evaluate.evaluate_separation`.

The page needs no network and no script: CSS is inline, images are ``data:`` URIs,
and a Content-Security-Policy forbids every script and every remote resource. Every
string that comes from a user or a file (source names, paths, settings) is escaped
with :func:`html.escape`, and file names in links are percent-encoded, so a source
named ``a#1?.wav`` or ``<img onerror=...>`` is shown as text and still plays.

Browsers: Chromium (headless too) reads the 32-bit float WAV files nmfsep writes
(WAVE_FORMAT_IEEE_FLOAT) and reports their exact duration; this is checked by
``tests/test_report.py`` in a real headless Chromium.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np

from nmfsep import io
from nmfsep._checks import check_choice
from nmfsep._npz import jsonable
from nmfsep._version import __version__
from nmfsep.auto_sources import describe_auto
from nmfsep.evaluate import METRIC_LABELS, METRICS, EvaluationWarning, evaluate_separation
from nmfsep.exceptions import AudioFormatError, OutputError, ParameterError
from nmfsep.io import MIXTURE_NAME, REPORT_NAME, output_files
from nmfsep.model import load_model
from nmfsep.ntf import group_positions
from nmfsep.plots import png_base64, separation_figure, spectrogram_strip, use_headless_backend
from nmfsep.spectral import stft as compute_stft

__all__ = ["REPORT_NAME", "MIXTURE_NAME", "write_report", "report_from_model"]

_MAX_STEM_SPECTROGRAMS = 32  # more stems than this: no per-stem spectrogram
_OVERVIEW_DPI = 100
_THUMB_DPI = 100
_LENGTH_TOLERANCE = 0  # samples; the stems and the mixture have the same length

_CSP = (
    "default-src 'none'; img-src data:; media-src 'self' file:; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

_CSS = """
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #d9dee7;
  --bg: #ffffff; --panel: #f5f7fa; --accent: #2f5fa7; --warn-bg: #fff6db; --warn: #8a6100; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1280px; margin: 0 auto; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
p.sub { margin: 0 0 8px; color: var(--muted); }
.note { color: var(--muted); font-size: 0.9rem; margin: 6px 0; }
.warnings { background: var(--warn-bg); color: var(--warn); border: 1px solid #f0d58a;
  border-radius: 6px; padding: 8px 14px; margin: 14px 0; }
.warnings ul { margin: 4px 0; padding-left: 20px; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: middle; padding: 6px 10px;
  border-bottom: 1px solid var(--line); }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
table.stems { width: 100%; }
table.stems td.name { min-width: 170px; max-width: 260px; overflow-wrap: anywhere; }
table.stems td.name .n { font-weight: 600; font-size: 1.02rem; }
table.stems td.name .m { color: var(--muted); font-size: 0.85rem; }
table.stems td.player { width: 330px; }
table.stems tr.mix td { background: #eef3fb; }
audio { width: 310px; display: block; }
a.dl { font-size: 0.85rem; color: var(--accent); }
td.spec img { display: block; width: 100%; max-width: 760px; height: auto; }
table.kv th { width: 220px; }
table.kv td, table.metrics td { font-variant-numeric: tabular-nums; }
table.metrics td.num, table.metrics th.num { text-align: right; }
table.metrics tr.mean td { font-weight: 600; border-top: 2px solid var(--line); }
figure { margin: 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 4px; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--accent); }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 12px; overflow-x: auto; font-size: 0.85rem; line-height: 1.35; }
code { font-size: 0.9em; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85rem; }
"""


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _href(file_name: str) -> str:
    """Relative URL of a file in the report's folder, percent-encoded and escaped.

    ``quote(..., safe="")`` encodes ``#``, ``?``, ``%``, ``:`` and spaces, so every name
    is a plain relative path (never a fragment, a query or a scheme such as
    ``javascript:``).
    """
    return _e(quote(file_name, safe=""))


# ---------------------------------------------------------------------- audio


@dataclass
class _Audio:
    """One audio file of the report (the mixture or a stem)."""

    name: str
    file_name: str
    y: np.ndarray  # (n_channels, n_samples) float32
    sr: int
    write: bool  # write it (staged) before the report
    note: str = ""
    components: list[int] | None = None


def _as_audio(y: object, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 1:
        arr = arr[np.newaxis]
    if arr.ndim != 2 or arr.shape[0] < 1 or not np.issubdtype(arr.dtype, np.floating):
        raise ParameterError(
            f"{what} must be a float array (n_channels, n_samples), got {arr.dtype} {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ParameterError(f"{what} contains NaN or Inf samples")
    return np.asarray(arr, dtype=np.float32)


def _header_matches(path: Path, y: np.ndarray, sr: int) -> bool:
    from nmfsep.io import audio_info

    try:
        info = audio_info(path)
    except AudioFormatError:
        return False
    return (
        info["samplerate"] == sr and info["channels"] == y.shape[0] and info["frames"] == y.shape[1]
    )


def _check_fits(y: np.ndarray, sr: int, ref_sr: int, n_samples: int, what: str,
                n_channels: int | None = None) -> None:
    if sr != ref_sr or abs(y.shape[1] - n_samples) > _LENGTH_TOLERANCE:
        raise ParameterError(
            f"{what} has {y.shape[1]} samples at {sr} Hz but the stems {n_samples} at "
            f"{ref_sr} Hz; give the mixture that was separated"
        )
    if n_channels is not None and y.shape[0] != n_channels:
        raise ParameterError(
            f"{what} has {y.shape[0]} channel{'s' if y.shape[0] != 1 else ''} but the "
            f"stems {n_channels}; give the mixture that was separated"
        )


def _levels(y: np.ndarray) -> list[str]:
    """RMS and peak level in dBFS (over all channels), or ``["silent"]``."""
    peak = float(np.abs(y).max()) if y.size else 0.0
    if peak == 0.0:
        return ["silent"]
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    over = " (over full scale)" if peak > 1.0 else ""
    return [f"RMS {20 * math.log10(rms):.1f} dBFS", f"peak {20 * math.log10(peak):+.1f} dBFS{over}"]


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0–2, 5"``."""
    out: list[str] = []
    idx = sorted(indices)
    i = 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        out.append(str(idx[i]) if i == j else f"{idx[i]}–{idx[j]}")
        i = j + 1
    return ", ".join(out)


# ---------------------------------------------------------------------- figures


def _img(b64: str, alt: str, css_class: str = "") -> str:
    cls = f' class="{_e(css_class)}"' if css_class else ""
    return f'<img{cls} src="data:image/png;base64,{b64}" alt="{_e(alt)}">'


def _overview_png(model: Any, X_mix: np.ndarray | None) -> str:
    """Draw the separation overview (:func:`nmfsep.plots.separation_figure`), as base64 PNG."""
    use_headless_backend()
    return png_base64(separation_figure(model, mixture=X_mix), dpi=_OVERVIEW_DPI)


def _spectrogram_png(X: np.ndarray, sr: int, stft: Any, duration: float) -> str:
    """Draw one spectrogram thumbnail (:func:`nmfsep.plots.spectrogram_strip`), as base64 PNG."""
    use_headless_backend()
    return png_base64(spectrogram_strip(X, sr, stft, duration), dpi=_THUMB_DPI)


# ---------------------------------------------------------------------- metrics


def _load_references(
    references: Mapping[str, Any], sr: int
) -> tuple[dict[str, np.ndarray], int, list[str]]:
    """Load the references (paths or arrays at ``sr``) at one common rate."""
    from nmfsep.io import load, resample

    if not isinstance(references, Mapping) or not references:
        raise ParameterError("references must be a non-empty mapping of name -> audio file")
    refs: dict[str, np.ndarray] = {}
    notes: list[str] = []
    ref_sr: int | None = None
    for name, value in references.items():
        if not isinstance(name, str) or not name:
            raise ParameterError(f"reference names must be non-empty strings, got {name!r}")
        if isinstance(value, np.ndarray):
            y, y_sr = _as_audio(value, f"reference {name!r}"), sr
        else:
            y, y_sr = load(value)
        if ref_sr is None:
            ref_sr = y_sr
        elif y_sr != ref_sr:
            notes.append(f"reference {name!r}: resampled from {y_sr} Hz to {ref_sr} Hz")
            y = resample(y, y_sr, ref_sr)
        refs[name] = y
    assert ref_sr is not None
    return refs, ref_sr, notes


def _evaluate(
    references: Mapping[str, Any],
    stems: dict[str, np.ndarray],
    mixture: np.ndarray,
    sr: int,
    match: str,
) -> tuple[Any, list[str]]:
    refs, ref_sr, notes = _load_references(references, sr)
    if match == "auto":
        match = "name" if set(refs) == set(stems) else "permutation"
    with warnings.catch_warnings():
        # every EvaluationWarning is also in result.warnings, shown in the report
        warnings.simplefilter("ignore", EvaluationWarning)
        result = evaluate_separation(
            refs,
            stems,
            sr=ref_sr,
            mixture=mixture,
            match=match,  # type: ignore[arg-type]
            sr_estimates=sr,
            sr_mixture=sr,
        )
    return result, notes + list(result.warnings)


def _metrics_html(result: Any, notes: list[str]) -> str:
    d = result.to_dict()

    def num(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    head = "".join(f'<th class="num">{_e(METRIC_LABELS.get(m, m))}</th>' for m in METRICS)
    rows = []
    for s in d["stems"]:
        cells = "".join(f'<td class="num">{num(s[m])}</td>' for m in METRICS)
        status = "" if s["status"] == "ok" else s["status"]
        rows.append(
            f"<tr><td>{_e(s['name'] or '–')}</td><td>{_e(s['reference'] or '–')}</td>"
            f"{cells}<td>{_e(status)}</td></tr>"
        )
    mean = "".join(f'<td class="num">{num(d["mean"][m])}</td>' for m in METRICS)
    rows.append(f'<tr class="mean"><td>mean</td><td></td>{mean}<td></td></tr>')
    seconds = d["n_samples"] / d["sr"]
    parts = [
        '<table class="metrics">',
        f"<thead><tr><th>estimate</th><th>reference</th>{head}<th>note</th></tr></thead>",
        "<tbody>" + "".join(rows) + "</tbody></table>",
        f'<p class="note">dB; BSS Eval v3 (bss_eval_sources) and SI-SDR '
        f"on mono downmixes, {d['sr']} Hz, {seconds:.2f} s, estimates matched to references "
        f"by {_e(d['match'])}. SI-SDRi is the improvement over the unprocessed mixture.</p>",
    ]
    if notes:
        parts.append(
            '<div class="warnings"><strong>Evaluation notes</strong><ul>'
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul></div>"
        )
    return "\n".join(parts)


# ---------------------------------------------------------------------- parameters


def _versions(with_metrics: bool) -> list[tuple[str, str]]:
    """Versions of nmfsep, of the libraries it uses, of Python and of the platform."""
    rows = [("nmfsep", __version__)]
    # the metrics are nmfsep's own (nmfsep.bsseval): with_metrics adds no package
    packages = ["numpy", "scipy", "librosa", "soundfile", "soxr", "matplotlib"]
    for package in packages:
        try:
            rows.append((package, dist_version(package)))
        except PackageNotFoundError:
            rows.append((package, "not installed"))
    rows.append(("libsndfile", io.libsndfile_version() or "not found"))
    rows.append(("python", f"{platform.python_version()} ({platform.python_implementation()})"))
    rows.append(("platform", platform.platform()))
    return rows


def _beta_name(beta: Any) -> str:
    names = {0.0: "Itakura-Saito", 1.0: "Kullback-Leibler", 2.0: "Frobenius (Euclidean)"}
    try:
        b = float(beta)
    except (TypeError, ValueError):
        return str(beta)
    return f"{b:g}" + (f" ({names[b]})" if b in names else "")


def _stft_text(d: Mapping[str, Any] | None) -> str:
    if not isinstance(d, Mapping):
        return "–"
    win = d.get("win_length") or d.get("n_fft")
    return (
        f"n_fft={d.get('n_fft')}, hop={d.get('hop_length')}, win={win}, "
        f"window={d.get('window')}, center={d.get('center')}"
    )


def _dictionaries_text(dicts: list[Any]) -> str:
    """Describe the dictionaries: ``"piano (16 atoms, 22050 Hz); flute (8 atoms, 22050 Hz)"``."""
    return "; ".join(
        f"{', '.join(map(str, d.get('names', [])))} ({d.get('n_atoms')} atoms, "
        f"{d.get('sr')} Hz)"
        for d in dicts
        if isinstance(d, Mapping)
    )


def _positions_text(model: Any, settings: Mapping[str, Any]) -> str | None:
    """Say where every stem sits (``spatial="gains"``), or None for a shared model."""
    Q = getattr(model, "Q", None)
    if Q is None or not model.groups:
        return None
    found = group_positions(model.W, model.H, Q, model.groups,
                            float(settings.get("power") or 1.0))
    return "; ".join(
        f"{name}: " + ("" if pan is None else f"pan {pan:+.2f} (")
        + " / ".join(f"{g:.2f}" for g in gains) + ("" if pan is None else ")")
        for name, (gains, pan) in found.items()
    )


def _parameter_rows(model: Any) -> list[tuple[str, str]]:
    """Return the rows of the parameters table: ``(label, text)``."""
    s = dict(getattr(model, "settings", None) or {})
    stft = model.stft.to_dict() if hasattr(model.stft, "to_dict") else s.get("stft")
    k = int(np.shape(model.H)[0])
    rows: list[tuple[str, str]] = [
        ("mode", str(s.get("mode", "–"))),
        ("components k", str(k)),
    ]
    if s.get("n_sources") is not None:
        rows.append(("sources", f"{s['n_sources']} (grouping: {s.get('grouping')})"))
    if isinstance(s.get("sources_auto"), dict):
        guess = "; a guess" if s["sources_auto"].get("guess") else ""
        rows.append(("number of sources", describe_auto(s["sources_auto"]) + guess))
    if s.get("n_free"):
        rows.append(("free atoms", str(s["n_free"])))
    dicts = s.get("dictionaries") or []
    if dicts:
        rows.append(("dictionaries", _dictionaries_text(dicts)))
    rows += [
        ("β (divergence)", _beta_name(s.get("beta"))),
        ("spectrogram power", str(s.get("power", "–"))),
        ("sample rate", f"{model.sr} Hz"),
        ("STFT", _stft_text(stft)),
    ]
    a_sr = s.get("analysis_sr")
    if a_sr is not None and a_sr != model.sr:
        rows += [
            ("analysis rate", f"{a_sr} Hz"),
            ("analysis STFT", _stft_text(s.get("analysis_stft"))),
        ]
    positions = _positions_text(model, s)
    if positions:
        rows.append(("positions (gains per channel)", positions))
    rows += [
        ("mask", f"{s.get('mask', '–')}, power {s.get('mask_power', '–')}"),
        (
            "groups",
            "; ".join(
                f"{name}: {_ranges(list(idx))}" for name, idx in (model.groups or {}).items()
            ),
        ),
        ("solver", str(s.get("solver", "–"))),
        (
            "iterations",
            f"{model.n_iter} of max {s.get('max_iter', '–')} (tol {s.get('tol', '–')}); "
            f"{'converged' if model.converged else 'stopped at max_iter'}",
        ),
    ]
    loss = np.asarray(getattr(model, "loss_history", ()), dtype=np.float64)
    if loss.size:
        rows.append(("final loss", f"{loss[-1]:.6g}"))
    if s.get("alpha_W"):
        rows.append(("regularisation", f"alpha_W={s['alpha_W']}, l1_ratio={s.get('l1_ratio')}"))
    if s.get("adapt") is not None:
        rows.append(("dictionary atoms", f"adapted to the mixture, penalty mu={s['adapt']}"))
    rows.append(("seed (random_state)", str(s.get("random_state"))))
    made_with = getattr(model, "nmfsep_version", None) or s.get("nmfsep_version")
    if made_with:
        rows.append(("separated with", f"nmfsep {made_with}"))
    return rows


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _settings_json(model: Any) -> str:

    doc = {
        "settings": jsonable(dict(getattr(model, "settings", None) or {})),
        "groups": {k: [int(i) for i in v] for k, v in (model.groups or {}).items()},
        "sr": int(model.sr),
        "stft": model.stft.to_dict() if hasattr(model.stft, "to_dict") else None,
        "n_iter": int(model.n_iter),
        "converged": bool(model.converged),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------- the page


def _audio_row(a: _Audio, spec_b64: str | None, css: str = "") -> str:
    ch = a.y.shape[0]
    seconds = a.y.shape[1] / a.sr
    meta = [f"{seconds:.2f} s · {a.sr} Hz · {ch} ch", *_levels(a.y)]
    if a.components is not None:
        meta.append(f"atoms (rows of H): {_ranges(a.components)}")
    if a.note:
        meta.append(a.note)
    href = _href(a.file_name)
    name_cell = (
        f'<td class="name"><div class="n">{_e(a.name)}</div>'
        + "".join(f'<div class="m">{_e(m)}</div>' for m in meta)
        + "</td>"
    )
    player = (
        f'<td class="player"><audio controls preload="metadata" src="{href}" '
        f'title="{_e(a.name)}" data-samples="{a.y.shape[1]}" data-sr="{a.sr}">'
        f'<a href="{href}">{_e(a.file_name)}</a></audio>'
        f'<a class="dl" href="{href}" download>{_e(a.file_name)}</a></td>'
    )
    spec = (
        f'<td class="spec">{_img(spec_b64, f"spectrogram of {a.name}")}</td>'
        if spec_b64 is not None
        else '<td class="spec"></td>'
    )
    cls = f' class="{css}"' if css else ""
    return f"<tr{cls}>{name_cell}{player}{spec}</tr>"


def _head(title: str, subtitle: str) -> list[str]:
    """Return the lines of the page up to its subtitle: doctype, head (CSP, CSS), title."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="nmfsep {_e(__version__)}">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(subtitle)}</p>',
    ]


def _page(
    *,
    title: str,
    subtitle: str,
    warnings_list: list[str],
    mixture: _Audio,
    stems: list[_Audio],
    spectrograms: dict[str, str],
    overview: str,
    metrics_html: str | None,
    parameters: list[tuple[str, str]],
    settings_json: str,
    versions: list[tuple[str, str]],
    masks_caption: str = "the masks applied to the mixture.",
) -> str:

    out = _head(title, subtitle)
    if warnings_list:
        out.append(
            '<div class="warnings"><strong>Warnings</strong><ul>'
            + "".join(f"<li>{_e(w)}</li>" for w in warnings_list)
            + "</ul></div>"
        )
    out.append('<h2 id="listen">Listen</h2>')
    out.append(
        '<p class="note">The players link to the WAV files in this folder (keep the folder '
        "together). Spectrograms are in dB relative to each file's own peak; compare "
        "loudness with the RMS and peak levels.</p>"
    )
    out.append(
        '<table class="stems"><thead><tr><th>audio</th><th>player</th>'
        "<th>spectrogram</th></tr></thead><tbody>"
    )
    out.append(_audio_row(mixture, spectrograms.get("\0mixture"), "mix"))
    for a in stems:
        out.append(_audio_row(a, spectrograms.get(a.name)))
    out.append("</tbody></table>")
    if len(stems) > _MAX_STEM_SPECTROGRAMS:
        out.append(
            f'<p class="note">More than {_MAX_STEM_SPECTROGRAMS} stems: per-stem '
            "spectrograms are left out.</p>"
        )
    if metrics_html is not None:
        out.append('<h2 id="metrics">Metrics</h2>')
        out.append(metrics_html)
    out.append('<h2 id="factorization">Factorization</h2>')
    out.append(
        "<figure>"
        + _img(overview, "separation overview: spectrogram, loss, atoms, activations and masks")
        + "<figcaption>Mixture spectrogram and convergence; spectral atoms H and their "
        f"activations W grouped by stem; {_e(masks_caption)}</figcaption>"
        "</figure>"
    )
    out.append('<h2 id="parameters">Parameters</h2>')
    out.append(_kv_table(parameters))
    out.append(
        "<details><summary>All settings (JSON)</summary>"
        f'<pre id="settings-json">{_e(settings_json)}</pre></details>'
    )
    out.append('<h2 id="versions">Versions</h2>')
    out.append(_kv_table(versions))
    out.append(
        f"<footer>Written by nmfsep {_e(__version__)}. This page works offline: it "
        "loads nothing from the network and runs no script.</footer>"
    )
    out.append("</main></body></html>\n")
    return "\n".join(out)


# ---------------------------------------------------------------------- writing


def _check_model(model: Any) -> None:
    missing = [a for a in ("W", "H", "groups", "sr", "stft") if getattr(model, a, None) is None]
    if missing:
        raise ParameterError(
            f"a report needs a separation result or a saved model; {type(model).__name__} "
            f"lacks {missing}"
        )
    if not isinstance(model.groups, Mapping) or not model.groups:
        raise ParameterError("the separation has no groups (stems) to report")


def _check_target(folder: Path, target: Path, force: bool) -> None:
    """Refuse, before any work, a report that is a folder or exists without ``force``."""
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; remove it or choose another output folder")
    if target.exists() and not force:
        raise OutputError(f"{target}: exists; pass force=True to overwrite")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a folder; choose another output folder")


def _stem_from_array(
    y_in: object, path: Path, name: str, sr: int, comps: list[int], force: bool
) -> _Audio:
    """Take a stem given as audio: written unless its file exists and fits (same header)."""
    y = _as_audio(y_in, f"stem {name!r}")
    write = not path.exists()
    if not write and not _header_matches(path, y, sr):
        if not force:
            raise OutputError(
                f"{path}: exists and does not fit this separation (rate, channels or "
                "length differ); pass force=True to overwrite"
            )
        write = True
    return _Audio(name, path.name, y, sr, write, components=comps)


def _stem_from_file(path: Path, name: str, sr: int, comps: list[int]) -> _Audio:
    """Read a stem of a model without audio from its file, which must exist at ``sr``."""
    if not path.is_file():
        raise AudioFormatError(
            f"{path}: stem {name!r} of the separation is missing; give the folder "
            "that holds the stems (OUT/<mix stem>/) or run nmfsep separate again"
        )
    y, y_sr = io.load(path)
    if y_sr != sr:
        raise AudioFormatError(
            f"{path}: is at {y_sr} Hz but the separation at {sr} Hz; run nmfsep "
            "separate again"
        )
    return _Audio(name, path.name, y, sr, False, components=comps)


def _stems(model: Any, folder: Path, names: list[str], sr: int, force: bool) -> list[_Audio]:
    """Gather the stems of the report, from ``model.stems`` or ``folder/<name>.wav|flac``.

    Returns
    -------
    list of _Audio
        One per group, in the order of ``names``, all of the same length.
    """
    arrays = getattr(model, "stems", None)
    stems: list[_Audio] = []
    for name in names:
        found = [folder / f"{name}.{ext}" for ext in io.FORMATS]
        path = next((p for p in found if p.is_file()), found[0])  # a WAV or FLAC stem
        comps = [int(i) for i in model.groups[name]]
        if isinstance(arrays, Mapping) and name in arrays:
            stems.append(_stem_from_array(arrays[name], path, name, sr, comps, force))
        else:
            stems.append(_stem_from_file(path, name, sr, comps))
    n_samples = stems[0].y.shape[1]
    for a in stems[1:]:
        if a.y.shape[1] != n_samples:
            raise AudioFormatError(
                f"{folder / a.file_name}: has {a.y.shape[1]} samples but "
                f"{stems[0].file_name} {n_samples}; the stems are from different runs"
            )
    return stems


def _found_mixture(mix_path: Path, stems: list[_Audio], sr: int, force: bool) -> _Audio:
    """Use ``mix_path`` if it fits the stems, else the sum of the stems (no mixture given)."""
    n_samples = stems[0].y.shape[1]
    existing = None
    if mix_path.is_file():
        y_mix, mix_sr = io.load(mix_path)
        if mix_sr == sr and y_mix.shape[1] == n_samples:
            existing = y_mix
        elif not force:
            raise OutputError(
                f"{mix_path}: exists and does not fit the stems ({y_mix.shape[1]} samples "
                f"at {mix_sr} Hz, the stems {n_samples} at {sr} Hz); give the mixture or "
                "pass force=True to replace it with the sum of the stems"
            )
    if existing is not None:
        return _Audio("mixture", mix_path.name, existing, sr, False)
    total = np.sum([a.y.astype(np.float64) for a in stems], axis=0).astype(np.float32)
    return _Audio(
        "mixture", mix_path.name, total, sr, True,
        note="sum of the stems (= the mixture up to rounding)",
    )


def _given_mixture(
    mixture: str | os.PathLike[str] | np.ndarray, mix_path: Path, sr: int, n_samples: int,
    force: bool, n_channels: int | None = None,
) -> _Audio:
    """Take the mixture given (a file or audio at ``sr``); copied to ``mix_path`` unless there."""
    if isinstance(mixture, np.ndarray):
        y_mix, mix_sr = _as_audio(mixture, "mixture"), sr
        src_path = None
        note = ""
    else:
        src_path = Path(mixture)
        y_mix, mix_sr = io.load(src_path)
        note = f"input: {src_path.name}"
    _check_fits(y_mix, mix_sr, sr, n_samples, "the mixture" if src_path is None else str(src_path),
                n_channels)
    same = False
    if src_path is not None and mix_path.exists():
        try:
            same = os.path.samefile(src_path, mix_path)
        except OSError:
            same = False
    write = not same and not (
        mix_path.exists() and not force and _header_matches(mix_path, y_mix, sr)
    )
    if write and mix_path.exists() and not force:
        raise OutputError(
            f"{mix_path}: exists and does not fit this mixture; pass force=True to overwrite"
        )
    return _Audio("mixture", mix_path.name, y_mix, sr, write, note=note)


def _spectrograms(
    model: Any, mix: _Audio, stems: list[_Audio], duration: float
) -> tuple[dict[str, str], np.ndarray]:
    """Draw the spectrograms of the mixture (key NUL + "mixture") and of the stems.

    Returns
    -------
    spectrograms : dict[str, str]
        Base64 PNGs by stem name; no stem is drawn when there are more than
        ``_MAX_STEM_SPECTROGRAMS``.
    X_mix : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        The mixture's STFT.
    """
    sr = mix.sr
    X_mix = compute_stft(mix.y, model.stft)
    spectrograms: dict[str, str] = {"\0mixture": _spectrogram_png(X_mix, sr, model.stft, duration)}
    if len(stems) <= _MAX_STEM_SPECTROGRAMS:
        for a in stems:
            spectrograms[a.name] = _spectrogram_png(
                compute_stft(a.y, model.stft), sr, model.stft, duration
            )
    return spectrograms, X_mix


def _subtitle(model: Any, mix: _Audio, n_stems: int, duration: float) -> str:
    """``"<mode> · k=… components · n stems · … s · … Hz · n channels"``."""
    settings = dict(getattr(model, "settings", None) or {})
    return (
        f"{settings.get('mode', 'separation')} · k={np.shape(model.H)[0]} components · "
        f"{n_stems} stem{'s' if n_stems != 1 else ''} · {duration:.2f} s · {mix.sr} Hz · "
        f"{mix.y.shape[0]} channel{'s' if mix.y.shape[0] != 1 else ''}"
    )


def _render(
    model: Any,
    mix: _Audio,
    stems: list[_Audio],
    references: Mapping[str, Any] | None,
    match: str,
    title: str,
) -> str:
    """Draw the figures, evaluate against ``references`` and return the page's HTML."""
    duration = mix.y.shape[1] / mix.sr
    spectrograms, X_mix = _spectrograms(model, mix, stems, duration)
    overview = _overview_png(model, X_mix)
    metrics_html = None
    if references is not None:
        result, notes = _evaluate(references, {a.name: a.y for a in stems}, mix.y, mix.sr, match)
        metrics_html = _metrics_html(result, notes)
    return _page(
        title=title,
        subtitle=_subtitle(model, mix, len(stems), duration),
        warnings_list=[str(w) for w in (getattr(model, "warnings", None) or [])],
        mixture=mix,
        stems=stems,
        spectrograms=spectrograms,
        overview=overview,
        metrics_html=metrics_html,
        parameters=_parameter_rows(model),
        settings_json=_settings_json(model),
        versions=_versions(references is not None),
        masks_caption=_masks_caption(model),
    )


def _masks_caption(model: Any) -> str:
    """Say what the overview's masks are: those applied, or the model's before the filter."""
    wiener = (getattr(model, "settings", None) or {}).get("wiener_iter")
    if callable(getattr(model, "masks", None)) and isinstance(wiener, int) and wiener > 0:
        # a saved model: its masks are recomputed without the mixture, so without the
        # spatial Wiener filter that formed the stems from both channels together
        return ("the masks of the model (the channels' mean); the stems themselves come "
                f"from the spatial Wiener filter of both channels ({wiener} EM "
                "iterations), which refines them.")
    return "the masks applied to the mixture."


def _write(folder: Path, target: Path, text: str, audio: list[_Audio], force: bool) -> None:
    """Write the audio files to write, then the report, all or nothing."""
    files = [a for a in audio if a.write]
    targets = [folder / a.file_name for a in files] + [target]
    with io.OutputTransaction(folder, targets, force=force) as transaction:
        for a in files:
            io.save(transaction.temporary(folder / a.file_name), a.y, a.sr, force=True)
        transaction.temporary(target).write_text(text, encoding="utf-8")
        transaction.commit()


def write_report(
    model_or_result: Any,
    out_dir: str | os.PathLike[str],
    *,
    mixture: str | os.PathLike[str] | np.ndarray | None = None,
    references: Mapping[str, str | os.PathLike[str] | np.ndarray] | None = None,
    match: Literal["auto", "name", "permutation"] = "auto",
    force: bool = False,
    title: str | None = None,
) -> Path:
    """Write ``out_dir/report.html``: players, figures, parameters, versions, metrics.

    The stems are ``out_dir/<name>.wav`` (one per group). For a
    :class:`~nmfsep.separate.SeparationResult` missing stem files are written from
    ``result.stems``; existing ones are used when they fit (same rate, channels and
    length). For a :class:`~nmfsep.model.Factorization` (no audio in it) the stem
    files must exist. The mixture is linked as ``out_dir/mixture.wav``
    (``mixture_mix.wav`` if a stem is called ``mixture``), written there as float WAV
    when it is not there yet. Everything is rendered first, then the audio files and
    the report are written to temporary names and renamed into place.

    Parameters
    ----------
    model_or_result : SeparationResult, SeparationModel or alike
        Needs ``W``, ``H``, ``groups``, ``sr``, ``stft``, ``settings``, ``n_iter``,
        ``converged``, ``loss_history``; optionally ``stems`` (name -> (n_channels,
        n_samples)) and ``warnings``.
    out_dir : str or os.PathLike
        The folder of the stems (``OUT/<mix stem>/``); created if missing.
    mixture : path, np.ndarray [shape=(n_channels, n_samples)] or None
        The separated mixture: a file (any format :func:`nmfsep.io.load` reads; it is
        written next to the stems as float WAV) or audio at ``sr``. It must have the
        stems' rate and length. None: ``out_dir/mixture.wav`` if it exists, else the
        sum of the stems (equal to the mixture up to float rounding, as the masks sum
        to one), which is then written as ``mixture.wav``.
    references : Mapping[str, path or np.ndarray] or None
        True sources by name (files, or arrays at ``sr``); adds the table of
        :func:`nmfsep.evaluate.evaluate_separation` (SDR, SIR, SAR, SI-SDR, SI-SDRi).
    match : {"auto", "name", "permutation"}
        How stems are matched to references; ``"auto"``: by name when the two sets of
        names are equal, else by the permutation with the best SDR.
    force : bool
        Overwrite an existing ``report.html`` (and mixture or stem files that do not
        fit the separation).
    title : str or None
        Page title; default ``"Separation report: <mixture name>"``.

    Returns
    -------
    pathlib.Path
        The report written, ``out_dir/report.html``.

    Raises
    ------
    OutputError
        If ``report.html`` exists and ``force`` is False (the message says to pass
        ``force=True``), a file to write exists and does not fit, or the folder is not
        writable.
    ParameterError
        For a mixture that does not fit the stems (rate, length, channels), unsafe stem
        names, bad references or ``match``.
    AudioFormatError
        If a stem file (model without audio), the mixture or a reference cannot be read.
    """
    model = model_or_result
    _check_model(model)
    check_choice(match, "match", ("auto", "name", "permutation"))
    folder = Path(out_dir)
    target = folder / REPORT_NAME
    _check_target(folder, target, force)
    sr = int(model.sr)
    names = [io.check_name(str(n)) for n in model.groups]
    stems = _stems(model, folder, names, sr, force)
    mix_target = output_files(folder, names, report=True).mixture
    assert mix_target is not None  # report=True names it
    mix_path = folder / mix_target.name
    if mixture is None:
        mix = _found_mixture(mix_path, stems, sr, force)
    else:
        mix = _given_mixture(mixture, mix_path, sr, stems[0].y.shape[1], force,
                             stems[0].y.shape[0])
    mix_title = (
        Path(mixture).stem
        if mixture is not None and not isinstance(mixture, np.ndarray)
        else folder.resolve().name
    )
    page_title = title if title is not None else f"Separation report: {mix_title}"
    text = _render(model, mix, stems, references, match, page_title)
    _write(folder, target, text, [*stems, mix], force)
    return target


def report_from_model(
    model_path: str | os.PathLike[str],
    *,
    mixture: str | os.PathLike[str] | np.ndarray | None = None,
    references: Mapping[str, str | os.PathLike[str] | np.ndarray] | None = None,
    match: Literal["auto", "name", "permutation"] = "auto",
    force: bool = False,
) -> Path:
    """Write ``report.html`` next to a saved model and its stems (``nmfsep report MODEL.npz``).

    ``nmfsep separate --save-model`` writes ``OUT/<mix stem>/model.npz`` next to the
    stems; this reads the model (:func:`nmfsep.model.load_model`), the stems
    ``<name>.wav`` of the same folder, and calls :func:`write_report` on that folder.

    Parameters
    ----------
    model_path : str or os.PathLike
        The ``model.npz``.
    mixture, references, match, force
        As in :func:`write_report`.

    Returns
    -------
    pathlib.Path
        ``<model folder>/report.html``.

    Raises
    ------
    DictionaryError
        If ``model_path`` is not a readable nmfsep model.
    AudioFormatError
        If a stem file is missing or unreadable.
    OutputError, ParameterError
        As in :func:`write_report`.
    """
    p = Path(model_path)
    folder = p.parent
    target = folder / REPORT_NAME
    if target.exists() and not force and not target.is_dir():
        raise OutputError(f"{target}: exists; pass force=True to overwrite")
    model = load_model(p)
    return write_report(
        model, folder, mixture=mixture, references=references, match=match, force=force
    )
