"""Stereo separation with a gain per channel and component (spatial="gains")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _audio import SR, low_high_dicts, notes, sdr

from nmfsep import io
from nmfsep.exceptions import DictionaryError, ParameterError
from nmfsep.model import load_model
from nmfsep.separate import SeparationResult, separate


@pytest.fixture(scope="module")
def sources() -> dict[str, np.ndarray]:
    low = 0.3 * notes([200, 250, 300, 225], 1.0, decay=2.0, seed=1)
    high = 0.2 * notes([1300, 1000, 1500, 1100], 1.0, decay=0.5, seed=2)
    return {"low": low.astype(np.float32), "high": high.astype(np.float32)}


def pan(x: np.ndarray, theta: float) -> np.ndarray:
    """Constant-power panning: (cos θ, sin θ) x, shape (2, n)."""
    return np.stack([np.cos(theta) * x, np.sin(theta) * x]).astype(np.float32)


@pytest.fixture(scope="module")
def images(sources) -> dict[str, np.ndarray]:
    return {"low": pan(sources["low"], 0.2), "high": pan(sources["high"], 1.35)}


@pytest.fixture(scope="module")
def dicts():
    return low_high_dicts(6, 80)


def check_channels(res: SeparationResult, y: np.ndarray) -> None:
    total = np.sum([s.astype(np.float64) for s in res.stems.values()], axis=0)
    assert np.abs(total - y).max() <= 1e-4
    M = res.masks
    assert M.shape[:2] == (len(res.stems), y.shape[0]) and M.dtype == np.float32
    assert (M >= 0).all() and (M <= 1).all()
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-5)
    assert res.Q is not None and res.Q.shape == (y.shape[0], res.H.shape[0])
    np.testing.assert_allclose(res.Q.sum(axis=0), 1.0, atol=1e-5)
    assert res.settings["spatial"] == "gains"
    json.dumps(res.summary())


def test_mono_is_the_shared_model_bit_for_bit(sources, dicts) -> None:
    y = (sources["low"] + sources["high"])[None]
    for kwargs in ({"n_sources": 2}, {"dictionaries": dicts}):
        a = separate(y, SR, max_iter=30, spatial="gains", **kwargs)
        b = separate(y, SR, max_iter=30, spatial="shared", **kwargs)
        c = separate(y, SR, max_iter=30, **kwargs)
        assert a.Q is None and a.settings["spatial"] == "shared"
        for name in a.stems:
            assert np.array_equal(a.stems[name], b.stems[name])
            assert np.array_equal(a.stems[name], c.stems[name])


def test_stereo_default_is_gains(images) -> None:
    y = images["low"] + images["high"]
    assert separate(y, SR, n_sources=2, max_iter=5).settings["spatial"] == "gains"
    many = np.tile(y[:1], (9, 1))  # beyond MAX_GAIN_CHANNELS the default is shared
    assert separate(many, SR, n_sources=2, max_iter=5).settings["spatial"] == "shared"


def test_sources_at_one_place_use_the_shared_model(sources, dicts) -> None:
    y = pan(sources["low"] + sources["high"], 0.6)
    for kwargs in ({"n_sources": 2}, {"dictionaries": dicts}):
        a = separate(y, SR, max_iter=20, spatial="gains", **kwargs)
        b = separate(y, SR, max_iter=20, spatial="shared", **kwargs)
        assert a.settings["spatial"] == "shared" and a.Q is None
        for name in a.stems:
            assert np.array_equal(a.stems[name], b.stems[name])


def test_supervised_stems_keep_their_own_position(images, dicts) -> None:
    y = images["low"] + images["high"]
    gains = separate(y, SR, dictionaries=dicts, max_iter=60, spatial="gains")
    shared = separate(y, SR, dictionaries=dicts, max_iter=60, spatial="shared")
    check_channels(gains, y)
    assert shared.Q is None and shared.masks.ndim == 3
    for name, ref in images.items():
        g = np.mean([sdr(ref[c], gains.stems[name][c]) for c in range(2)])
        s = np.mean([sdr(ref[c], shared.stems[name][c]) for c in range(2)])
        assert g > s + 2.0, (name, g, s)
    # the gains found where each source sits: low mostly left, high mostly right
    low, high = gains.groups["low"], gains.groups["high"]
    assert gains.Q[0, low].mean() > 0.8 and gains.Q[1, high].mean() > 0.8


def test_blind_sources_by_position(sources) -> None:
    # the same instrument twice, hard left and hard right: timbre cannot tell them apart
    a = 0.3 * notes([300, 400, 350, 450], 1.0, decay=1.0, seed=3)
    b = 0.3 * notes([420, 310, 380, 330], 1.0, decay=1.0, seed=4)
    ia, ib = pan(a.astype(np.float32), 0.1), pan(b.astype(np.float32), 1.47)
    y = ia + ib
    gains = separate(y, SR, n_sources=2, max_iter=80, spatial="gains")
    shared = separate(y, SR, n_sources=2, max_iter=80, spatial="shared")
    check_channels(gains, y)

    def best(res: SeparationResult) -> float:
        s1, s2 = res.stems.values()
        return max(sdr(ia, s1) + sdr(ib, s2), sdr(ia, s2) + sdr(ib, s1)) / 2

    assert best(gains) > 10.0 and best(gains) > best(shared) + 5.0


def test_semi_supervised_context_and_another_rate(images, dicts) -> None:
    y = images["low"] + images["high"]
    res = separate(y, SR, dictionaries=dicts, n_free=2, max_iter=20, spatial="gains")
    check_channels(res, y)
    assert list(res.stems) == ["low", "high", "residual"]
    y16 = io.resample(y, SR, 16000)
    res16 = separate(y16, 16000, dictionaries=dicts, max_iter=20, spatial="gains")
    check_channels(res16, y16)
    assert res16.masks.shape[2:] == (res16.masks.shape[2], res16.stft.n_bins)


def test_silent_stereo(dicts) -> None:
    y = np.zeros((2, SR // 2), dtype=np.float32)
    res = separate(y, SR, dictionaries=dicts, spatial="gains")
    assert all(not s.any() for s in res.stems.values()) and res.Q is not None


def test_errors_are_one_line(images, dicts) -> None:
    y = images["low"] + images["high"]
    with pytest.raises(ParameterError, match="spatial must be one of"):
        separate(y, SR, n_sources=2, spatial="pan")
    many = np.tile(y[:1], (9, 1))
    with pytest.raises(ParameterError, match="at most 8 channels, the mixture has 9"):
        separate(many, SR, n_sources=2, spatial="gains")
    with pytest.raises(ParameterError, match="alpha_W"):
        separate(y, SR, n_sources=2, spatial="gains", alpha_W=0.1)


def test_figure_shows_positions(images, dicts) -> None:
    from nmfsep.ntf import group_positions
    from nmfsep.plots import separation_figure

    y = images["low"] + images["high"]
    res = separate(y, SR, dictionaries=dicts, max_iter=30, spatial="gains")
    found = group_positions(res.W, res.H, res.Q, res.groups)
    assert found["low"][1] < -0.5 and found["high"][1] > 0.5  # panned at -0.75 and +0.72
    fig = separation_figure(res)
    titles = [ax.get_title() for ax in fig.axes if ax.get_label().startswith("mask:")]
    assert titles == [f"Mask: {n} (pan {found[n][1]:+.2f})" for n in ("low", "high")]


def test_saved_model_keeps_the_gains(images, dicts, tmp_path: Path) -> None:
    y = images["low"] + images["high"]
    res = separate(y, SR, dictionaries=dicts, max_iter=20, spatial="gains")
    model = load_model(res.save_model(tmp_path / "model.npz"))
    np.testing.assert_array_equal(model.Q, res.Q)
    assert model.settings["spatial"] == "gains"
    shared = separate(y, SR, dictionaries=dicts, max_iter=20, spatial="shared")
    assert load_model(shared.save_model(tmp_path / "shared.npz")).Q is None
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["Q"] = arrays["Q"][:, :3]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DictionaryError, match="Q must be a float32 array of shape"):
        load_model(tmp_path / "bad.npz")


def test_command_line_spatial_and_stream(images, dicts, tmp_path: Path) -> None:
    from _cli import one_error_line, run

    y = images["low"] + images["high"]
    mix = tmp_path / "mix.wav"
    io.save(mix, y, SR)
    paths = [d.save(tmp_path / f"{d.names[0]}.npz") for d in dicts]
    dict_args = [a for p in paths for a in ("--dict", p)]
    done = run("separate", mix, *dict_args, "--spatial", "gains", "--max-iter", "20",
               "--save-model", "--report", "-o", tmp_path / "out", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)[0]
    assert summary["settings"]["spatial"] == "gains"
    model_path = tmp_path / "out" / "mix" / "model.npz"
    assert load_model(model_path).Q.shape[0] == 2
    html = (tmp_path / "out" / "mix" / "report.html").read_text()
    assert "positions (gains per channel)" in html and "low: pan -" in html
    # its masks are the model's: the stems came from the spatial Wiener filter
    assert "spatial Wiener filter of both channels (4 EM iterations)" in html
    assert "high: pan +" in html
    plotted = run("plot", model_path, "-o", tmp_path / "model.png")
    assert plotted.exit_code == 0, plotted.output
    info = run("info", model_path, "--json")
    assert info.exit_code == 0, info.output
    positions = json.loads(info.stdout)["positions"]
    assert positions["low"]["pan"] < -0.5 < 0.5 < positions["high"]["pan"]
    streamed = run("separate", mix, *dict_args, "--spatial", "gains", "--stream",
                   "--wiener-iter", "2", "--max-iter", "20", "-o", tmp_path / "stream",
                   "--json")
    assert streamed.exit_code == 0, streamed.output
    summary = json.loads(streamed.stdout)[0]
    assert summary["settings"]["spatial"] == "gains" and not summary["warnings"]
    assert summary["settings"]["wiener_iter"] == 2
    blind = run("separate", mix, "--sources", "2", "--stream", "--max-iter", "20", "-o",
                tmp_path / "blind", "--json")
    assert blind.exit_code == 0, blind.output
    assert json.loads(blind.stdout)[0]["settings"]["spatial"] == "gains"
    bad = run("separate", mix, "--sources", "2", "--spatial", "pan", "-o", tmp_path / "x")
    assert bad.exit_code == 2
    assert "--spatial" in bad.output
    many = tmp_path / "many.wav"
    io.save(many, np.tile(y[:1], (9, 1)), SR)
    one_error_line(run("separate", many, "--sources", "2", "--spatial", "gains", "-o",
                       tmp_path / "y"), "at most 8 channels")


@pytest.mark.parametrize("kwargs", [{"n_sources": 2, "percussive": True},
                                    {"adapt": 10.0}, {"free_per_source": 1}],
                         ids=["percussive", "adapt", "free_per_source"])
def test_settings_of_the_shared_model_only(images, dicts, kwargs) -> None:
    """By default they use the shared model; asked for with spatial='gains', one line."""
    y = images["low"] + images["high"]
    if "n_sources" not in kwargs:
        kwargs = {**kwargs, "dictionaries": dicts}
    res = separate(y, SR, max_iter=5, **kwargs)
    assert res.settings["spatial"] == "shared" and res.Q is None
    name = next(k for k in kwargs if k not in ("n_sources", "dictionaries"))
    with pytest.raises(ParameterError, match=rf"^{name} is not available with spatial='gains'"):
        separate(y, SR, max_iter=5, spatial="gains", **kwargs)


def test_info_of_a_blind_stereo_model_says_how_it_stopped(images, tmp_path: Path) -> None:
    """Blind gains run a fixed coarse-to-fine schedule: info must not blame --max-iter."""
    from _cli import run

    mix = tmp_path / "mix.wav"
    io.save(mix, images["low"] + images["high"], SR)
    done = run("separate", mix, "--sources", "2", "--save-model", "-o", tmp_path / "out",
               "--tol", "0")
    assert done.exit_code == 0, done.output
    model = load_model(tmp_path / "out" / "mix" / "model.npz")
    assert model.n_iter < 200 and not model.converged
    text = run("info", tmp_path / "out" / "mix" / "model.npz").stdout
    assert f"iterations:    {model.n_iter} (stopped at the end of its schedule" in text
    capped = run("separate", mix, "--sources", "2", "--save-model", "-o", tmp_path / "cap",
                 "--tol", "0", "--max-iter", "20")
    assert capped.exit_code == 0, capped.output
    assert "(stopped at --max-iter)" in run("info", tmp_path / "cap" / "mix" / "model.npz").stdout


def test_supervised_gains_updated_with_the_activations(images, dicts, monkeypatch) -> None:
    """SUPERVISED_JOINT_GAINS: one pass per iteration on the stacked path (these small
    sources take it), a monotone fit as close to the two-pass one as the data allow."""
    import importlib

    sep = importlib.import_module("nmfsep.separate")
    y = images["low"] + images["high"]
    joint = separate(y, SR, dictionaries=dicts, max_iter=60, tol=0, spatial="gains")
    monkeypatch.setattr(sep, "SUPERVISED_JOINT_GAINS", False)
    two = separate(y, SR, dictionaries=dicts, max_iter=60, tol=0, spatial="gains")
    check_channels(joint, y)
    assert not np.array_equal(joint.W, two.W)
    assert np.all(np.diff(joint.loss_history) <= 1e-9 * joint.loss_history[0])
    assert joint.loss_history[-1] <= 1.01 * two.loss_history[-1]
    for name, ref in images.items():
        g = np.mean([sdr(ref[c], joint.stems[name][c]) for c in range(2)])
        t = np.mean([sdr(ref[c], two.stems[name][c]) for c in range(2)])
        assert abs(g - t) < 0.5, (name, g, t)
