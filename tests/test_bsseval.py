"""nmfsep.bsseval against mir_eval's bss_eval_sources, the oracle (tests only)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from nmfsep.bsseval import BSSEval, bss_eval_framewise, bss_eval_images, bss_eval_sources
from nmfsep.exceptions import ParameterError

separation = pytest.importorskip("mir_eval.separation")


def _oracle(refs, ests):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array(separation.bss_eval_sources(refs, ests, compute_permutation=False)[:3])


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(3)
    t = np.arange(6000) / 8000
    refs = np.stack([
        rng.standard_normal(6000),
        np.sin(2 * np.pi * 440 * t) * (1 + rng.standard_normal(6000) * 0.3),
        np.convolve(rng.standard_normal(6000), np.ones(8) / 8, mode="same"),
    ])
    A = np.array([[1.0, 0.3, 0.2], [0.2, 1.0, 0.4], [0.1, 0.2, 1.0]])
    ests = A @ refs + 0.05 * rng.standard_normal((3, 6000))
    ests[2] = np.convolve(ests[2], [0.5, 0.3, 0.2], mode="same")  # filtered: SAR vs SDR
    return refs, ests


def test_matches_mir_eval(mixed):
    refs, ests = mixed
    ours = np.array(bss_eval_sources(refs, ests))
    np.testing.assert_allclose(ours, _oracle(refs, ests), rtol=0, atol=1e-9)


def test_each_estimate_alone_matches_mir_eval(mixed):
    """One estimate against the whole reference set (a reference without an estimate)."""
    refs, ests = mixed
    oracle = _oracle(refs, ests)
    bss = BSSEval(refs)
    for j in (2, 0):
        np.testing.assert_allclose(bss.scores(ests[j], j), oracle[:, j], rtol=0, atol=1e-9)


def test_single_reference_matches_mir_eval(mixed):
    refs, ests = mixed
    sdr = bss_eval_sources(refs[1:2], ests[1:2])[0]
    np.testing.assert_allclose(sdr, _oracle(refs[1:2], ests[1:2])[0], rtol=0, atol=1e-9)


def test_perfect_estimate_and_dependent_references(mixed):
    refs, _ = mixed
    sdr, sir, _ = bss_eval_sources(refs, refs.copy())
    assert np.all(sdr > 100) and np.all(sir > 100)
    with pytest.raises(ParameterError, match="linearly dependent"):
        BSSEval(np.stack([refs[0], refs[0]]))


def test_framewise_matches_mir_eval(mixed):
    refs, ests = mixed
    refs, ests = refs.copy(), ests.copy()
    refs[1, 2000:4000] = 0  # a silent reference window: NaN there
    ours = np.array(bss_eval_framewise(refs, ests, 2000, 1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = np.array(separation.bss_eval_sources_framewise(refs, ests, 2000, 1000, False)[:3])
    assert ours.shape == (3, 3, 5) and np.isnan(ours[:, :, 2]).all()
    np.testing.assert_allclose(ours, oracle, rtol=0, atol=1e-9)
    whole = np.array(bss_eval_framewise(refs, ests, 6000))
    np.testing.assert_allclose(whole[..., 0], np.array(bss_eval_sources(refs, ests)), atol=1e-12)


def test_evaluate_framewise_is_the_median_of_windows(mixed):
    from nmfsep.evaluate import EvaluationResult, evaluate_separation

    refs, ests = mixed
    names = ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_separation(dict(zip(names, refs, strict=True)),
                                  dict(zip(names, ests, strict=True)), sr=8000, framewise=0.25)
    frames = np.array(bss_eval_framewise(refs, ests, 2000))
    for j, n in enumerate(names):
        s = res[n]
        np.testing.assert_allclose([s.sdr, s.sir, s.sar], np.median(frames[:, j], axis=1),
                                   atol=1e-9)
    assert res.framewise == 0.25 and "medians over 0.25 s windows" in res.format_table()
    assert EvaluationResult.from_dict(res.to_dict()) == res
    whole = evaluate_separation(dict(zip(names, refs, strict=True)),
                                dict(zip(names, ests, strict=True)), sr=8000)
    assert whole.framewise is None and whole["a"].sdr != res["a"].sdr
    with pytest.raises(ParameterError, match="^framewise must be at least"):
        evaluate_separation({"a": refs[0]}, {"a": ests[0]}, sr=8000, framewise=0.1)


def test_cli_eval_framewise(mixed, tmp_path):
    import json

    import soundfile as sf
    from typer.testing import CliRunner

    from nmfsep.cli import app

    refs, ests = mixed
    args = []
    for n, r, e in zip("abc", refs, ests, strict=True):
        sf.write(tmp_path / f"{n}.wav", r.astype(np.float32) * 0.2, 8000, subtype="FLOAT")
        (tmp_path / "est").mkdir(exist_ok=True)
        sf.write(tmp_path / "est" / f"{n}.wav", e.astype(np.float32) * 0.2, 8000,
                 subtype="FLOAT")
        args += ["-r", str(tmp_path / f"{n}.wav"), "-e", str(tmp_path / "est" / f"{n}.wav")]
    r = CliRunner().invoke(app, ["eval", *args, "--framewise", "0.25", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["framewise"] == 0.25
    r = CliRunner().invoke(app, ["eval", *args, "--framewise", "0.01"])
    assert r.exit_code != 0 and "--framewise must be at least" in r.output


def test_images_match_mir_eval(mixed):
    from nmfsep.bsseval import bss_eval_images

    refs, ests = mixed
    rng = np.random.default_rng(1)
    n = 3000
    imgs = np.stack([np.stack([r[:n], 0.5 * np.convolve(r, [0.6, 0.3], "same")[:n]
                               + 0.5 * rng.standard_normal(n)]) for r in refs[:2]])
    est = imgs[::-1] * 0.2 + imgs + 0.05 * rng.standard_normal(imgs.shape)
    ours = np.array(bss_eval_images(imgs, est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = np.array(separation.bss_eval_images(imgs.transpose(0, 2, 1),
                                                     est.transpose(0, 2, 1), False)[:4])
    np.testing.assert_allclose(ours, oracle, rtol=0, atol=1e-8)
    with pytest.raises(ParameterError, match="bss_eval_images wants"):
        bss_eval_images(refs, ests)


def test_images_of_panned_sources_match_mir_eval(mixed):
    """Panned mono sources: each image's channels are copies (a singular Gram matrix)."""
    from nmfsep.bsseval import bss_eval_images

    refs, _ = mixed
    rng = np.random.default_rng(2)
    n = 2500
    gains = [(0.9, 0.2), (0.3, 0.8)]
    imgs = np.stack([np.outer(g, r[:n]) for g, r in zip(gains, refs[:2], strict=True)])
    est = imgs + 0.2 * imgs[::-1] + 0.05 * rng.standard_normal(imgs.shape)
    ours = np.array(bss_eval_images(imgs, est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = np.array(separation.bss_eval_images(imgs.transpose(0, 2, 1),
                                                     est.transpose(0, 2, 1), False)[:4])
    np.testing.assert_allclose(ours, oracle, rtol=0, atol=1e-6)
    assert np.isfinite(ours).all()


def test_evaluate_images_scores_stereo_stems(mixed):
    from nmfsep.bsseval import bss_eval_images
    from nmfsep.evaluate import EvaluationResult, evaluate_separation

    refs, _ = mixed
    rng = np.random.default_rng(4)
    n = 3000
    imgs = np.stack([np.stack([r[:n], 0.5 * np.roll(r[:n], 1) + 0.5 * rng.standard_normal(n)])
                     for r in refs[:2]])
    est = imgs + 0.2 * imgs[::-1] + 0.05 * rng.standard_normal(imgs.shape)
    R, E = dict(zip("ab", imgs, strict=True)), dict(zip("ab", est, strict=True))
    res = evaluate_separation(R, E, sr=8000, images=True)
    sdr, isr, sir, sar = bss_eval_images(imgs, est)
    for j, n in enumerate("ab"):
        np.testing.assert_allclose([res[n].sdr, res[n].isr, res[n].sir, res[n].sar],
                                   [sdr[j], isr[j], sir[j], sar[j]], atol=1e-9)
    assert res.downmix == "images" and "ISR" in res.format_table()
    assert "source images" in res.format_table()
    assert EvaluationResult.from_dict(res.to_dict()) == res
    assert evaluate_separation(R, E, sr=8000).downmix == "images"  # stereo: the default
    mono = evaluate_separation(R, E, sr=8000, images=False)
    assert math.isnan(mono["a"].isr) and "isr" not in mono.to_dict()["stems"][0]
    with pytest.raises(ParameterError, match="^images must be used with no framewise"):
        evaluate_separation(R, E, sr=8000, images=True, framewise=0.2)
    with pytest.raises(ParameterError, match="^images must be used with references with one"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate_separation({"a": imgs[0], "b": imgs[1, 0]}, E, sr=8000, images=True)


def test_cli_eval_images(tmp_path):
    import json

    import soundfile as sf
    from typer.testing import CliRunner

    from nmfsep.cli import app

    rng = np.random.default_rng(5)
    refs = 0.1 * rng.standard_normal((2, 2, 4000))
    args = []
    for n, r in zip("ab", refs, strict=True):
        sf.write(tmp_path / f"{n}.wav", r.T.astype(np.float32), 8000, subtype="FLOAT")
        (tmp_path / "est").mkdir(exist_ok=True)
        est = r + 0.1 * refs[1 - "ab".index(n)]
        sf.write(tmp_path / "est" / f"{n}.wav", est.T.astype(np.float32), 8000, subtype="FLOAT")
        args += ["-r", str(tmp_path / f"{n}.wav"), "-e", str(tmp_path / "est" / f"{n}.wav")]
    r = CliRunner().invoke(app, ["eval", *args, "--images", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["downmix"] == "images" and all(s["isr"] > 20 for s in doc["stems"])


def test_images_in_mir_evals_layout_are_refused_before_allocating() -> None:
    x = np.zeros((2, 44100, 2))  # (n_sources, n_samples, n_channels)
    with pytest.raises(ParameterError, match=r"more channels than samples.*transpose\(0, 2, 1\)"):
        bss_eval_images(x, x)
