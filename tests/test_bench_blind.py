"""Helpers of the blind benchmark (benchmarks/bench_blind.py): the grouping by the
references of its --ceilings figures, and the candidate that is the product."""

from __future__ import annotations

import numpy as np
import pytest
from _bench import import_benchmark


@pytest.fixture(scope="module")
def bench():
    return import_benchmark("bench_blind")


def _two_sources(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components 0-2 build source 0 (low bins), 3-5 source 1 (high bins)."""
    H = np.zeros((6, 40))
    H[:3, :20] = rng.random((3, 20)) + 0.1
    H[3:, 20:] = rng.random((3, 20)) + 0.1
    W = rng.random((50, 6)) + 0.01
    powers = np.stack([(W[:, :3] @ H[:3]) ** 2, (W[:, 3:] @ H[3:]) ** 2])
    return W, H, powers


def test_oracle_groups_follow_the_references(bench):
    W, H, powers = _two_sources(np.random.default_rng(0))
    W0, H0 = W.copy(), H.copy()
    labels = bench.oracle_groups(W, H, powers)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(bench.oracle_groups(W, H, powers[::-1]), [1, 1, 1, 0, 0, 0])
    assert np.array_equal(W, W0) and np.array_equal(H, H0)


def test_oracle_groups_leave_no_source_empty(bench):
    W, H, powers = _two_sources(np.random.default_rng(1))
    # a third reference that no component serves best: a faint copy of source 1's
    # fifth component gets it, and the other sources keep theirs
    third = 1e-3 * np.outer(W[:, 4], H[4]) ** 2
    labels = bench.oracle_groups(W, H, np.concatenate([powers, third[None]]))
    assert sorted(set(labels.tolist())) == [0, 1, 2]
    assert labels.tolist().count(2) == 1
    assert (labels[:3] == 0).all()


def test_the_product_candidate_is_what_separate_runs(bench):
    from nmfsep import percussive

    c = bench.parse_candidate(bench.PRODUCT)
    assert (c["margin"], c["kernel"], c["grouping"]) == (
        percussive.DEFAULT_MARGIN, percussive.DEFAULT_KERNEL, percussive.DEFAULT_GROUPING)
    assert (c["flatness"], c["refine"], c["tonal"]) == (
        percussive.DEFAULT_FLATNESS, percussive.DEFAULT_REFINE_ITER, percussive.DEFAULT_TONAL)
    assert not c["extra"] and c["power"] == 1.0
    assert bench.parse_candidate("p:1:17x17:8:timbre:plain")["tonal"] is None


def test_the_blind_candidates_of_the_defaults_are_what_separate_runs(bench):
    """``b:8:ward:mag`` is two sources' default, ``b:12:kmeans:pow`` three sources'."""
    from nmfsep import plan

    assert bench.parse_blind("b:8:ward:mag") == (
        plan.DEFAULT_COMPONENTS_PER_SOURCE, "ward", "mag", plan.DEFAULT_MASK_POWER)
    assert plan.DEFAULT_GROUPING == "timbre"  # Ward of the magnitude atoms' MFCCs
    assert bench.parse_blind("b:12:kmeans:pow:m1.5") == (
        plan.MANY_SOURCES_COMPONENTS_PER_SOURCE, "kmeans", "pow", 1.5)
    assert plan.MANY_SOURCES_GROUPING == "kmeans" and plan.MANY_SOURCES == 3
    assert bench.parse_blind("b:12:register:mag")[1] == "register"
    with pytest.raises(ValueError, match="b:<per source>"):
        bench.parse_blind("b:8:single:mag")
    with pytest.raises(ValueError, match="b:<per source>"):
        bench.parse_blind("b:8:ward:mag:x2")


def test_a_blind_candidate_regroups_separates_factorization(bench):
    """``b:12:kmeans:pow`` on a three-source mixture gives separate's stems."""
    from nmfsep.separate import separate

    rng = np.random.default_rng(2)
    sr, n = 8000, 8000
    t = np.arange(n) / sr
    refs = np.stack([np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * r * t))
                     for f, r in ((110, 1.3), (440, 2.1), (1320, 3.7))])
    refs += 0.01 * rng.standard_normal(refs.shape)
    item = {"mix": refs.sum(axis=0, keepdims=True).astype(np.float32), "sr": sr,
            "refs": refs, "names": ["a", "b", "c"]}
    ests = bench.run_blind(item, "b:12:kmeans:pow")
    res = separate(item["mix"], sr, n_sources=3, random_state=0)
    got = sorted(ests.tolist())
    want = sorted(np.stack([s[0] for s in res.stems.values()]).tolist())
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_quartets_are_a_trio_plus_the_drums_of_the_same_seed(bench, tmp_path):
    import json

    import soundfile as sf

    rng = np.random.default_rng(0)
    clips = []
    for task, names in (("trio", ["piano", "flute", "bass"]), ("drums_bass", ["drums", "bass"])):
        stems = {}
        for n in names:
            path = f"{task}_{n}.wav"
            sf.write(tmp_path / path, rng.uniform(-0.1, 0.1, 800), 8000, subtype="FLOAT")
            stems[n] = path
        clips.append({"family": "f", "task": task, "seed": 0, "kind": "mixture",
                      "instruments": names, "stems": stems})
    (tmp_path / "manifest.json").write_text(json.dumps({"clips": clips}))
    (item,) = bench.load_items(tmp_path, ["f"], 1, ["quartet"])
    assert item["task"] == "quartet"
    assert item["names"] == ["piano", "flute", "bass", "drums"]
    drums, _ = sf.read(tmp_path / "drums_bass_drums.wav", dtype="float32")
    np.testing.assert_allclose(item["refs"][3], drums)
    np.testing.assert_allclose(item["mix"][0], item["refs"].sum(axis=0), atol=1e-6)
    assert "quartet" in bench.DRUM_TASKS
