"""HTML reports: structure, escaping, overwriting, saved models, and a real headless browser."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf

from nmfsep import io
from nmfsep.exceptions import AudioFormatError, OutputError, ParameterError
from nmfsep.files import separate_file
from nmfsep.report import REPORT_NAME, report_from_model, write_report
from nmfsep.separate import separate

SR = 22050
SECONDS = 2.5
HOSTILE = "<img src=x onerror=alert(1)>"  # a legal file name; must stay text
URLISH = "a#1 ?%&\"'"  # '#', '?' and '%' would break an unencoded relative URL


@pytest.fixture(autouse=True)
def _agg(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def sources():
    """A 440 Hz tone (0-1.2 s) and a noise burst (1.0-2.2 s), mono, 22050 Hz."""
    t = np.arange(int(SECONDS * SR)) / SR
    g = np.random.default_rng(3)
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * (t < 1.2)).astype(np.float32)[None]
    noise = (0.2 * g.standard_normal(t.size) * ((t > 1.0) & (t < 2.2))).astype(np.float32)[None]
    return {"tone": tone, "noise": noise}


@pytest.fixture(scope="module")
def mixture(sources):
    return sources["tone"] + sources["noise"]


@pytest.fixture(scope="module")
def result(mixture):
    return separate(mixture, SR, n_components=4, n_sources=2, max_iter=20, random_state=0)


def _renamed(result, names):
    """The same separation with its stems (and groups) renamed, in order."""
    old = list(result.stems)
    mapping = dict(zip(old, names, strict=True))
    return dataclasses.replace(
        result,
        stems={mapping[k]: v for k, v in result.stems.items()},
        groups={mapping[k]: v for k, v in result.groups.items()},
    )


class _Page(HTMLParser):
    """Collect the tags (with attributes) and the text of every <pre>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.pre: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_pre = tag == "pre"
        if self._in_pre:
            self.pre.append("")

    def handle_endtag(self, tag):
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data):
        if self._in_pre:
            self.pre[-1] += data

    def find(self, name):
        return [a for t, a in self.tags if t == name]


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def _assert_offline(text: str) -> None:
    low = text.lower()
    assert "http://" not in low and "https://" not in low
    assert "<script" not in low and "<link" not in low and "@import" not in low
    assert "url(" not in low


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory, result, mixture, sources):
    """A report whose stems are named like an HTML injection and like a URL."""
    out = tmp_path_factory.mktemp("hostile") / "mix"
    renamed = _renamed(result, [HOSTILE, URLISH])
    refs = {HOSTILE: sources["tone"], URLISH: sources["noise"]}
    path = write_report(renamed, out, mixture=mixture, references=refs)
    return path


# --------------------------------------------------------------------------- structure


def test_report_structure(tmp_path, result, mixture, sources):
    src = tmp_path / "input" / "song take 1.wav"
    io.save(src, mixture, SR)
    refs = {}
    for name, y in zip(result.stems, sources.values(), strict=True):
        refs[name] = io.save(tmp_path / "refs" / f"ref_{name}.wav", y, SR)
    out = tmp_path / "separated" / "song take 1"
    path = write_report(result, out, mixture=src, references=refs)

    assert path == out / REPORT_NAME
    assert sorted(os.listdir(out)) == sorted(
        [REPORT_NAME, "mixture.wav", *(f"{n}.wav" for n in result.stems)]
    )  # no temporary left behind
    text, page = _parse(path)
    _assert_offline(text)
    assert text.startswith("<!DOCTYPE html>")

    audios = page.find("audio")
    assert len(audios) == len(result.stems) + 1
    assert [unquote(a["src"]) for a in audios] == ["mixture.wav"] + [
        f"{n}.wav" for n in result.stems
    ]
    for a in audios:
        assert "controls" in a and a["preload"] == "metadata"
        assert (out / unquote(a["src"])).is_file()  # linked, relative, next to the report
    mix_back, sr_back = io.load(out / "mixture.wav")
    assert sr_back == SR and np.array_equal(mix_back, mixture)

    imgs = page.find("img")
    assert len(imgs) >= len(result.stems) + 2  # per-file spectrograms + the overview
    for img in imgs:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix) and img["alt"]
        assert base64.b64decode(img["src"][len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"

    # parameters: table and the full settings as JSON
    assert "components k" in text and "Kullback-Leibler" in text
    settings = json.loads(page.pre[0])
    assert settings["settings"]["n_components"] == 4
    assert settings["groups"] == result.groups
    assert settings["stft"]["n_fft"] == result.stft.n_fft
    # versions
    assert f"<td>{np.__version__}</td>" in text and "<th>soundfile</th>" in text
    assert "<th>libsndfile</th>" in text
    # metrics, matched by name
    tables = [a for t, a in page.tags if t == "table" and a.get("class") == "metrics"]
    assert len(tables) == 1
    for label in ("SDR", "SIR", "SAR", "SI-SDR", "SI-SDRi"):
        assert f">{label}</th>" in text
    assert "matched to references by name" in text


def test_names_are_escaped_and_links_encoded(hostile_report):
    text, page = _parse(hostile_report)
    _assert_offline(text)
    assert HOSTILE not in text and "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    srcs = [unquote(a["src"]) for a in page.find("audio")]
    assert srcs == ["mixture.wav", f"{HOSTILE}.wav", f"{URLISH}.wav"]
    for a in page.find("audio"):
        assert "#" not in a["src"] and "?" not in a["src"] and "/" not in a["src"]
        assert (hostile_report.parent / unquote(a["src"])).is_file()
    assert "matched to references by name" in text


def test_no_mixture_writes_the_sum_of_the_stems(tmp_path, result, mixture):
    path = write_report(result, tmp_path / "mix")
    y, sr = io.load(tmp_path / "mix" / "mixture.wav")
    assert sr == SR
    np.testing.assert_allclose(y, mixture, atol=1e-4)
    text = path.read_text(encoding="utf-8")
    assert "sum of the stems" in text
    assert 'class="metrics"' not in text  # no references, no metrics


def test_refuses_to_overwrite_without_force(tmp_path, result, mixture):
    out = tmp_path / "mix"
    path = write_report(result, out, mixture=mixture)
    path.write_text("old", encoding="utf-8")
    with pytest.raises(OutputError, match="pass force=True"):
        write_report(result, out, mixture=mixture)
    assert path.read_text(encoding="utf-8") == "old"
    write_report(result, out, mixture=mixture, force=True)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_stem_file_that_does_not_fit_is_not_overwritten(tmp_path, result):
    out = tmp_path / "mix"
    first = next(iter(result.stems))
    io.save(out / f"{first}.wav", np.zeros((1, 100), np.float32), SR)
    with pytest.raises(OutputError, match="pass force=True"):
        write_report(result, out)
    assert not (out / REPORT_NAME).exists()


def test_mixture_that_does_not_fit_is_refused(tmp_path, result, mixture):
    with pytest.raises(ParameterError, match="mixture that was separated"):
        write_report(result, tmp_path / "mix", mixture=mixture[:, :-1000])
    # another channel count (e.g. a saved stereo model with a mono file): one line too
    other = np.vstack([mixture, mixture[:1]]) if mixture.shape[0] < 3 else mixture[:1]
    with pytest.raises(ParameterError, match=r"channels? but the stems \d; give the mixture"):
        write_report(result, tmp_path / "mix", mixture=other)
    assert not (tmp_path / "mix" / REPORT_NAME).exists()


def test_stem_called_mixture_keeps_its_file(tmp_path, result, mixture, sources):
    renamed = _renamed(result, ["mixture", "other"])
    path = write_report(renamed, tmp_path / "mix", mixture=mixture, references=sources)
    text, page = _parse(path)
    assert "matched to references by permutation" in text  # names differ: best permutation
    assert [unquote(a["src"]) for a in page.find("audio")] == [
        "mixture_mix.wav",
        "mixture.wav",
        "other.wav",
    ]


def test_report_from_model(tmp_path, mixture):
    src = tmp_path / "duet.wav"
    io.save(src, mixture, SR)
    summary = separate_file(src, tmp_path / "out", n_components=3, max_iter=15, save_model=True)
    folder = Path(summary["output_dir"])
    path = report_from_model(folder / "model.npz")
    assert path == folder / REPORT_NAME
    text, page = _parse(path)
    _assert_offline(text)
    assert len(page.find("audio")) == 3 + 1
    assert "Separation report: duet" in text
    y, _ = io.load(folder / "mixture.wav")
    np.testing.assert_allclose(y, mixture, atol=1e-4)  # sum of the stems

    with pytest.raises(OutputError, match="pass force=True"):
        report_from_model(folder / "model.npz")
    (folder / "component_02.wav").unlink()
    with pytest.raises(AudioFormatError, match="component_02"):
        report_from_model(folder / "model.npz", force=True)


# --------------------------------------------------------------------------- browser


def _browser_paths():
    chrome = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        pytest.skip(
            "headless browser test needs Chromium and chromedriver "
            "(apt-get install -y chromium chromium-driver)"
        )
    return chrome, driver


@pytest.fixture(scope="module")
def browser():
    """Selenium and the paths of Chromium and chromedriver, or a skip saying what is missing."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="headless browser test needs selenium (pip install selenium)"
    )
    chrome, driver_path = _browser_paths()
    return webdriver, chrome, driver_path


def test_report_plays_in_headless_chromium(browser, hostile_report, tmp_path, monkeypatch):
    """Open the report in a real headless Chromium, offline, from file://."""
    from selenium.webdriver.chrome.service import Service

    webdriver, chrome, driver_path = browser
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    folder = hostile_report.parent
    expected = {p.name: sf.info(str(p)).duration for p in folder.iterdir() if p.suffix == ".wav"}
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        driver.get(hostile_report.as_uri())
        deadline = time.monotonic() + 10.0
        while True:
            audio = driver.execute_script(
                "return Array.from(document.querySelectorAll('audio')).map(a => ({"
                "src: a.currentSrc, ready: a.readyState, duration: a.duration,"
                "error: a.error ? a.error.code + ' ' + a.error.message : null}))"
            )
            done = all(a["ready"] >= 1 or a["error"] for a in audio)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(audio) == 3
        for a in audio:
            name = unquote(a["src"].rsplit("/", 1)[-1])
            assert a["error"] is None, a
            assert a["ready"] >= 1, a
            assert a["duration"] == pytest.approx(expected[name], abs=0.05), a
            assert expected[name] == pytest.approx(SECONDS, abs=1e-3)

        # really decode: play every player (muted) and see its clock advance, no error
        driver.execute_script(
            "document.querySelectorAll('audio').forEach(a => { a.muted = true; a.play(); })"
        )
        deadline = time.monotonic() + 10.0
        while True:
            clock = driver.execute_script(
                "return Array.from(document.querySelectorAll('audio')).map(a =>"
                " [a.currentTime, a.error ? a.error.code : null])"
            )
            if all(t > 0.1 or e for t, e in clock) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert all(t > 0.1 and e is None for t, e in clock), clock

        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
        )
        assert len(images) >= 4 and all(c and w > 0 for c, w in images), images
        dom = driver.execute_script(
            "return {scripts: document.scripts.length,"
            " handlers: Array.from(document.querySelectorAll('*')).filter(e =>"
            "   Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,"
            " resources: performance.getEntriesByType('resource').map(r => r.name),"
            " title: document.title}"
        )
        assert dom["scripts"] == 0 and dom["handlers"] == 0
        assert all(r.startswith(("file:", "data:")) for r in dom["resources"]), dom
        assert HOSTILE in driver.find_element("tag name", "body").text  # shown as text
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
        shot = os.environ.get("NMFSEP_REPORT_SCREENSHOT")
        if shot:  # for a human look: NMFSEP_REPORT_SCREENSHOT=/tmp/report.png pytest ...
            height = driver.execute_script("return document.body.scrollHeight")
            driver.set_window_size(1400, height + 50)
            driver.save_screenshot(shot)
    finally:
        driver.quit()
