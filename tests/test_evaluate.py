import csv
import io
import json
import math
import warnings

import numpy as np
import pytest
import scipy.signal
from _audio import SR

from nmfsep.evaluate import (
    EvaluationResult,
    EvaluationWarning,
    StemScore,
    bss_eval,
    evaluate_files,
    evaluate_separation,
    oracle_masks,
    oracle_separation,
    reconcile,
    si_sdr,
    si_sdr_improvement,
)
from nmfsep.exceptions import AudioFormatError, ParameterError
from nmfsep.spectral import STFTConfig

N = 6000


def _mir_eval(refs, ests, perm):
    import mir_eval.separation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=perm)


@pytest.fixture(scope="module")
def noise3():
    g = np.random.default_rng(3)
    refs = g.standard_normal((3, N))
    ests = refs + 0.2 * g.standard_normal((3, N))
    return refs, ests


@pytest.fixture(scope="module")
def bands():
    """Two sources in disjoint bands (< 1 kHz and > 2.5 kHz at 8 kHz), stereo, float32."""
    g = np.random.default_rng(11)
    low = scipy.signal.butter(10, 1000, "lowpass", fs=SR, output="sos")
    high = scipy.signal.butter(10, 2500, "highpass", fs=SR, output="sos")
    a = scipy.signal.sosfiltfilt(low, g.standard_normal((2, N)))
    b = scipy.signal.sosfiltfilt(high, g.standard_normal((2, N)))
    return {"low": a.astype(np.float32), "high": b.astype(np.float32)}


@pytest.fixture(scope="module")
def scored(bands):
    g = np.random.default_rng(5)
    mix = bands["low"] + bands["high"]
    est = {
        "low": bands["low"] + 0.3 * bands["high"] + 0.01 * g.standard_normal((2, N)),
        "high": bands["high"] + 0.2 * bands["low"],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return evaluate_separation(bands, est, sr=SR, mixture=mix)


# --------------------------------------------------------------------------- bss_eval


def test_bss_eval_matches_mir_eval_on_mono_downmix(noise3):
    refs, ests = noise3
    # stereo versions whose channel means are the mono signals
    g = np.random.default_rng(0)
    d_r, d_e = g.standard_normal((2, 1, N)), g.standard_normal((2, 1, N))
    refs_st = np.stack([refs[:2, None] + d_r, refs[:2, None] - d_r], axis=1)[:, :, 0]
    ests_st = np.stack([ests[:2, None] + d_e, ests[:2, None] - d_e], axis=1)[:, :, 0]
    before = (refs_st.copy(), ests_st.copy())
    ours = bss_eval(refs_st, ests_st)
    sdr, sir, sar, perm = _mir_eval(refs[:2], ests[:2], False)
    np.testing.assert_allclose(ours["sdr"], sdr, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["sir"], sir, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["sar"], sar, rtol=0, atol=1e-6)
    assert ours["status"] == ["ok", "ok"] and ours["estimate"].tolist() == [0, 1]
    assert np.all(ours["sdr"] > 10)
    np.testing.assert_array_equal(refs_st, before[0])
    np.testing.assert_array_equal(ests_st, before[1])


def test_permutation_three_sources(noise3):
    refs, ests = noise3
    shuffled = ests[[2, 0, 1]]  # estimate 0 is source 2, 1 is 0, 2 is 1
    ours = bss_eval(refs, shuffled, permute=True)
    assert ours["estimate"].tolist() == [1, 2, 0]
    assert ours["pair_sdr"].shape == (3, 3)
    assert np.all(ours["sdr"] > 10) and np.all(ours["sir"] > 15)
    # SDR depends on the matched pair only: the final scores equal the matching matrix
    np.testing.assert_allclose(ours["sdr"], ours["pair_sdr"][[1, 2, 0], [0, 1, 2]], atol=1e-9)
    off_diagonal = ours["pair_sdr"][~np.eye(3, dtype=bool)[[2, 0, 1]]]
    assert np.all(off_diagonal < 0)


def test_permutation_agrees_with_mir_eval(noise3):
    refs, ests = noise3
    ours = bss_eval(refs[:2], ests[1::-1], permute=True)
    sdr, sir, sar, perm = _mir_eval(refs[:2], ests[1::-1], True)
    assert ours["estimate"].tolist() == perm.tolist() == [1, 0]
    np.testing.assert_allclose(ours["sdr"], sdr, atol=1e-6)
    np.testing.assert_allclose(ours["sar"], sar, atol=1e-6)


def test_permutation_with_surplus_estimate(noise3):
    refs, ests = noise3
    with pytest.warns(EvaluationWarning, match="estimate 1 match"):
        ours = bss_eval(refs[:2], ests[[1, 2, 0]], permute=True)
    assert ours["estimate"].tolist() == [2, 0]
    assert ours["unmatched"] == [1]
    assert np.all(np.isfinite(ours["sdr"]))


def test_silent_estimate_and_reference_reported_not_raised(noise3):
    refs, ests = noise3
    ests = ests.copy()
    ests[1] = 0.0
    with pytest.warns(EvaluationWarning, match="silent"):
        out = bss_eval(refs, ests, names=["a", "b", "c"])
    assert out["status"] == ["ok", "silent estimate", "ok"]
    assert math.isnan(out["sdr"][1]) and math.isnan(out["sir"][1])
    assert np.all(np.isfinite(out["sdr"][[0, 2]]))
    # SDR does not depend on the other references: same as mir_eval on the pair alone
    alone = _mir_eval(refs[:1], ests[:1], False)[0][0]
    assert out["sdr"][0] == pytest.approx(alone, abs=1e-6)

    refs2 = refs.copy()
    refs2[0] = 0.0
    with pytest.warns(EvaluationWarning, match="'a'|a is silent"):
        out2 = bss_eval(refs2[:2], noise3[1][:2], names=["a", "b"])
    assert out2["status"] == ["silent reference", "ok"]
    assert math.isnan(out2["sdr"][0]) and np.isfinite(out2["sdr"][1])


def test_bss_eval_bad_shapes():
    with pytest.raises(ParameterError, match="reconcile"):
        bss_eval(np.ones((2, 100)), np.ones((2, 90)))
    with pytest.raises(ParameterError, match="permute=True"):
        bss_eval(np.ones((2, 100)), np.ones((3, 100)))
    with pytest.raises(ParameterError, match="NaN"):
        bss_eval(np.full((1, 10), np.nan), np.ones((1, 10)))


# --------------------------------------------------------------------------- SI-SDR


def test_si_sdr_analytic_value_and_invariances():
    g = np.random.default_rng(1)
    r = g.standard_normal(4000)
    r -= r.mean()
    n = g.standard_normal(4000)
    n -= n.mean()
    n -= (n @ r) / (r @ r) * r  # orthogonal to r, zero-mean
    n *= 0.1
    expected = 10 * np.log10((r @ r) / (n @ n))
    est = r + n
    before = est.copy()
    assert si_sdr(r, est) == pytest.approx(expected, abs=1e-9)
    for c in (0.01, 3.0, -2.0):
        assert si_sdr(r, c * est) == pytest.approx(expected, abs=1e-9)
    assert si_sdr(r, est + 5.0) == pytest.approx(expected, abs=1e-9)  # zero-mean: offsets ignored
    assert si_sdr(r[None], est[None]) == pytest.approx(expected, abs=1e-9)
    assert si_sdr(r, 2 * r) == math.inf
    np.testing.assert_array_equal(est, before)


def test_si_sdr_improvement_and_silence():
    g = np.random.default_rng(2)
    s, other = g.standard_normal((2, 3000))
    mix = s + other
    est = s + 0.1 * other
    assert si_sdr_improvement(s, est, mix) == pytest.approx(si_sdr(s, est) - si_sdr(s, mix))
    assert si_sdr_improvement(s, est, mix) > 15
    with pytest.warns(EvaluationWarning, match="silent estimate"):
        assert math.isnan(si_sdr(s, np.zeros(3000)))
    with pytest.warns(EvaluationWarning, match="silent reference"):
        assert math.isnan(si_sdr(np.zeros(3000), s))
    with pytest.raises(ParameterError, match="samples"):
        si_sdr(s, s[:-1])


# --------------------------------------------------------------------------- reconcile


def test_reconcile_warns_for_each_mismatch():
    g = np.random.default_rng(4)
    ref = g.standard_normal((2, 8000)).astype(np.float32)
    est = g.standard_normal((1, 16010)).astype(np.float32)
    ref0, est0 = ref.copy(), est.copy()
    with pytest.warns(EvaluationWarning) as record:
        r, e, messages = reconcile(ref, est, 8000, 16000)
    assert len(messages) == 3 and len(record) == 3
    assert "resampled from 16000 Hz to 8000 Hz" in messages[0]
    assert "channel" in messages[1]
    assert "samples" in messages[2]
    assert r.shape == e.shape == (2, 8000)
    np.testing.assert_array_equal(e[0], e[1])
    np.testing.assert_array_equal(ref, ref0)
    np.testing.assert_array_equal(est, est0)

    with pytest.warns(EvaluationWarning, match="downmixed to mono"):
        _, e, msgs = reconcile(ref[:1], ref, 8000, 8000)
    assert len(msgs) == 1 and e.shape == (1, 8000)
    np.testing.assert_allclose(e[0], ref.mean(axis=0))
    with pytest.warns(EvaluationWarning, match="zero-padded"):
        _, e, _ = reconcile(ref, ref[:, :7000], 8000, 8000)
    assert np.all(e[:, 7000:] == 0)


def test_reconcile_matching_inputs_are_silent():
    ref = np.random.default_rng(0).standard_normal((2, 500))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r, e, messages = reconcile(ref, ref, 8000, 8000)
    assert messages == []
    np.testing.assert_array_equal(e, ref)
    assert e is not ref


# --------------------------------------------------------------------------- evaluate_separation


def test_evaluate_separation_by_name(scored, bands):
    result = scored
    assert [s.name for s in result.stems] == ["low", "high"]
    assert [s.reference for s in result.stems] == ["low", "high"]
    assert all(s.status == "ok" for s in result.stems)
    for s in result.stems:
        assert all(math.isfinite(getattr(s, m)) for m in ("sdr", "sir", "sar", "si_sdr"))
        assert s.si_sdri > 5  # better than the mixture
    assert result["low"].sdr > 5
    assert result.means["sdr"] == pytest.approx(np.mean([s.sdr for s in result.stems]))
    assert result.sr == SR and result.n_samples == N and result.warnings == ()


def test_evaluate_separation_name_mismatch_lists_names(bands):
    with pytest.raises(ParameterError, match=r"\['bass'\].*\['high'\].*references: low, high"):
        evaluate_separation(bands, {"low": bands["low"], "bass": bands["high"]}, sr=SR)


def test_evaluate_separation_permutation_and_adaptation(bands):
    est = {
        "component_01": bands["high"][:, : N - 10],  # too short
        "component_02": bands["low"].mean(axis=0),  # mono
        "component_03": 0.01 * np.random.default_rng(9).standard_normal((2, N)),
    }
    with pytest.warns(EvaluationWarning) as record:
        # mono downmixes: a mono estimate copied to both channels is a fair guess there
        result = evaluate_separation(bands, est, sr=SR, match="permutation", images=False)
    messages = [str(w.message) for w in record]
    assert result.downmix == "mono"
    assert any("zero-padded" in m for m in messages)
    assert any("mono copied" in m for m in messages)
    assert result.warnings == tuple(messages)
    assert result["component_01"].reference == "high"
    assert result["component_02"].reference == "low"
    assert result["component_02"].sdr > 20
    assert math.isnan(result["component_01"].si_sdri)  # no mixture given
    surplus = result["component_03"]
    assert surplus.status == "unmatched" and surplus.reference is None
    assert any("estimate 'component_03' match" in m for m in messages)


# --------------------------------------------------------------------------- oracle


def test_oracle_irm_on_disjoint_bands(bands):
    config = STFTConfig(n_fft=512, hop_length=128)
    refs = np.stack([bands["low"], bands["high"]])
    before = refs.copy()
    M = oracle_masks(refs, config, kind="irm")
    assert M.shape == (2, 1 + N // 128, 257) and M.dtype == np.float32
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-6)
    mix = refs.sum(axis=0)
    stems = oracle_separation(bands, mix, config, kind="irm")
    assert list(stems) == ["low", "high"]
    assert stems["low"].shape == (2, N) and stems["low"].dtype == np.float32
    np.testing.assert_allclose(stems["low"] + stems["high"], mix, atol=1e-4)
    out = bss_eval(refs, np.stack([stems["low"], stems["high"]]))
    assert np.all(out["sdr"] > 20), out["sdr"]
    np.testing.assert_array_equal(refs, before)
    # the Wiener oracle and a binary mask work on the same input
    w = oracle_masks(refs, config, kind="wiener")
    assert np.all((w >= 0) & (w <= 1))
    b = oracle_masks(refs, config, kind="ibm")
    assert set(np.unique(b)) <= {0.0, 1.0}
    with pytest.raises(ParameterError, match="kind"):
        oracle_masks(refs, config, kind="ideal")
    with pytest.raises(ParameterError, match="config"):
        oracle_separation(bands, mix)


def test_oracle_in_evaluation(bands):
    est = {"low": bands["low"] + 0.5 * bands["high"], "high": bands["high"] + 0.5 * bands["low"]}
    config = STFTConfig(n_fft=512, hop_length=128)
    result = evaluate_separation(bands, est, sr=SR, oracle="irm", config=config)
    assert result.oracle is not None and result.oracle_kind == "irm"
    assert result.oracle.means["sdr"] > 20 > result.means["sdr"]
    assert "Oracle ceiling (IRM" in result.format_table()
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["oracle"]["stems"][0]["sdr"] > 20


# --------------------------------------------------------------------------- result I/O


def test_to_dict_round_trip(scored):
    d = scored.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = EvaluationResult.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert d["stems"][0]["name"] == "low" and d["mean"]["sdr"] == pytest.approx(scored.means["sdr"])
    with_nan = EvaluationResult(
        stems=(StemScore("a", None, status="unmatched"),), match="permutation", sr=1, n_samples=1
    )
    d2 = json.loads(json.dumps(with_nan.to_dict(), allow_nan=False))
    assert d2["stems"][0]["sdr"] is None and d2["mean"]["sdr"] is None
    assert math.isnan(EvaluationResult.from_dict(d2).stems[0].sdr)


def test_to_csv_round_trip(scored, tmp_path):
    buf = io.StringIO()
    scored.to_csv(buf)
    path = tmp_path / "scores.csv"
    scored.to_csv(path)
    assert path.read_text() == buf.getvalue()
    assert not list(tmp_path.glob(".*.tmp"))
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["name"] for r in rows] == ["low", "high"]
    for row, stem in zip(rows, scored.stems, strict=True):
        assert row["reference"] == stem.reference and row["status"] == "ok"
        for m in ("sdr", "sir", "sar", "si_sdr", "si_sdri"):
            assert float(row[m]) == getattr(stem, m)  # full precision


def test_format_table(scored):
    text = scored.format_table()
    lines = text.splitlines()
    table = lines[1:]
    assert len({len(line) for line in table}) == 1  # fixed width
    assert "SDR" in table[0] and "SI-SDRi" in table[0]
    assert any(line.startswith("low ") for line in table)
    assert f"{scored['high'].sdr:.2f}" in text
    assert table[-1].startswith("mean") and f"{scored.means['sar']:.2f}" in table[-1]


def test_evaluate_files(tmp_path, bands):
    import soundfile as sf

    (tmp_path / "ref").mkdir()
    (tmp_path / "est").mkdir()
    refs = []
    for name, y in bands.items():
        p = tmp_path / "ref" / f"{name}.wav"
        sf.write(p, y.T, SR, subtype="FLOAT")
        refs.append(p)
    ests = []
    for name, y in bands.items():
        p = tmp_path / "est" / f"{name}.wav"
        sf.write(p, (0.5 * y).T, SR, subtype="FLOAT")
        ests.append(p)
    mix = tmp_path / "mix.wav"
    sf.write(mix, (bands["low"] + bands["high"]).T, SR, subtype="FLOAT")
    result = evaluate_files(refs, ests[::-1], mixture_path=mix, images=False)
    assert [s.name for s in result.stems] == ["high", "low"]
    typo = tmp_path / "ref" / "lwo.wav"  # a mistyped path: not found, not a name mismatch
    for args in ([[typo, refs[1]], ests], [refs, ests, mix.with_name("mx.wav")]):
        with pytest.raises(AudioFormatError, match="not found"):
            evaluate_files(args[0], args[1], mixture_path=args[2] if len(args) > 2 else None)
    assert all(s.sdr > 60 for s in result.stems)  # a scaled copy is near perfect (mono)
    images = evaluate_files(refs, ests[::-1], mixture_path=mix)  # stereo: images by default
    assert images.downmix == "images"
    # an image at half the level: 6 dB of spatial distortion, nothing else
    assert all(abs(s.sdr - 20 * np.log10(2)) < 0.1 and s.sir > 60 for s in images.stems)
    with pytest.raises(ParameterError, match="several"):
        evaluate_files(refs, [ests[0], ests[0]])


def test_evaluate_separation_silent_stem_is_reported(bands):
    est = {"low": bands["low"] + 0.1 * bands["high"], "high": np.zeros((2, N), np.float32)}
    with pytest.warns(EvaluationWarning, match="silent"):
        result = evaluate_separation(bands, est, sr=SR, mixture=bands["low"] + bands["high"])
    assert result["high"].status == "silent estimate" and math.isnan(result["high"].sdr)
    assert math.isfinite(result["low"].sdr) and math.isfinite(result["low"].si_sdri)
    assert any("silent" in m for m in result.warnings)
    assert result.means["sdr"] == result["low"].sdr
    assert "silent estimate" in result.format_table()
    assert result.to_dict()["stems"][1]["sdr"] is None
