import matplotlib

matplotlib.use("Agg")

import subprocess  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _audio import CFG, SR  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402

from nmfsep import plots  # noqa: E402
from nmfsep.exceptions import OutputError, ParameterError  # noqa: E402
from nmfsep.spectral import STFTConfig  # noqa: E402

NB = CFG.n_bins  # 129
N_SAMPLES = 8000 + 37  # ~1 s, not a multiple of the hop
N_FRAMES = 1 + N_SAMPLES // CFG.hop_length
DURATION = N_SAMPLES / SR


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _meshes(ax):
    return [c for c in ax.collections if isinstance(c, QuadMesh)]


def _atoms(k, rng):
    """Atom i peaks at bin 5 + 4 i (distinct, identifiable peaks)."""
    H = 0.01 * rng.random((k, NB))
    for i in range(k):
        H[i, 5 + 4 * i] = 1.0
    return H


def _readonly(*arrays):
    for a in arrays:
        a.flags.writeable = False


@pytest.fixture
def model(rng):
    k = 6
    H = _atoms(k, rng)
    W = rng.gamma(1.0, 1.0, (N_FRAMES, k))
    groups = {"piano": [0, 2, 4], "flute": [1, 3], "residual": [5]}
    parts = np.stack([W[:, g] @ H[g] for g in groups.values()])
    masks = parts / parts.sum(axis=0, keepdims=True)
    stems = {n: np.zeros((2, N_SAMPLES), np.float32) for n in groups}
    return types.SimpleNamespace(
        W=W, H=H, groups=groups, masks=masks, sr=SR, stft=CFG,
        loss_history=np.geomspace(100.0, 10.0, 8), loss_iterations=np.arange(8) * 10,
        stems=stems, settings={"mode": "supervised", "beta": 1.0, "mask": "soft"},
    )


# ---------------------------------------------------------------------- module


def test_import_does_not_import_matplotlib():
    code = "import sys, nmfsep.plots; assert 'matplotlib' not in sys.modules, 'eager'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- atoms


def test_plot_atoms_image_grouped_by_label_order(rng):
    H = _atoms(5, rng)
    labels = ["flute", "piano", "flute", "piano", "bass"]
    ax = plots.plot_atoms(H, SR, CFG.n_fft, labels=labels)
    meshes = _meshes(ax)
    assert len(meshes) == 3  # one per source
    # sources in order of first appearance, atoms ordered source by source
    assert [t.get_text() for t in ax.get_yticklabels()] == ["flute", "piano", "bass"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["flute", "piano", "bass"]
    peaks = [np.asarray(m.get_array()).reshape(-1, NB).argmax(axis=1) for m in meshes]
    assert [p.tolist() for p in peaks] == [[5, 13], [9, 17], [21]]  # atoms [0, 2], [1, 3], [4]
    # separators between sources; first atom on top
    assert len(ax.lines) == 2
    assert ax.get_ylim() == (4.5, -0.5)
    assert "Hz" in ax.get_xlabel()
    assert ax.get_xscale() == "symlog"
    assert ax.get_xlim() == pytest.approx((0.0, SR / 2))
    assert len(ax.figure.axes) == 1


def test_plot_atoms_db_range_and_linear_scale(rng):
    H = _atoms(3, rng)
    ax = plots.plot_atoms(H, SR, freq_scale="linear", db=True, top_db=50)
    (mesh,) = _meshes(ax)
    assert mesh.get_clim() == (-50, 0)
    assert ax.get_xscale() == "linear"
    assert ax.get_legend() is None  # no labels, no legend
    ax = plots.plot_atoms(H, SR, db=False)
    assert _meshes(ax)[0].get_clim() == (0, 1)


def test_plot_atoms_lines_and_groups(rng):
    H = _atoms(4, rng)
    ax = plots.plot_atoms(H, SR, groups={"a": [3, 1], "b": [0, 2]}, style="lines")
    # one line per atom + one separator; the legend has one entry per source
    assert len(ax.lines) == 4 + 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    first = ax.lines[0]
    assert np.argmax(-first.get_ydata()) == 5 + 4 * 3  # atom 3 comes first, peak drawn upward


def test_plot_atoms_note_names_and_max_atoms(rng):
    H = _atoms(6, rng)
    ax = plots.plot_atoms(H, SR, labels=["a"] * 4 + ["b"] * 2, note_names=True, max_atoms=3)
    fig = ax.figure
    assert len(fig.axes) == 2
    top = fig.axes[1]
    notes = [t.get_text() for t in top.get_xticklabels()]
    assert notes and all(n.startswith("C") for n in notes)
    assert top.get_xlim() == pytest.approx(ax.get_xlim())
    # round-robin over the sources: a, b, a
    assert ax.get_ylim() == (2.5, -0.5)
    assert [m.get_array().shape[0] for m in _meshes(ax)] == [2, 1]


def test_plot_atoms_on_given_axes(rng):
    fig, ax = plt.subplots()
    assert plots.plot_atoms(_atoms(2, rng), SR, ax=ax) is ax
    assert len(plt.get_fignums()) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": ["a"]}, "labels"),
        ({"n_fft": 512}, "n_fft"),
        ({"freq_scale": "mel"}, "freq_scale"),
        ({"style": "bars"}, "style"),
        ({"groups": {"a": [0, 0]}}, "distinct"),
    ],
)
def test_plot_atoms_rejects_bad_arguments(rng, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        plots.plot_atoms(_atoms(2, rng), SR, **kwargs)


def test_nan_is_refused(rng):
    H = _atoms(2, rng)
    H[0, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        plots.plot_atoms(H, SR)


# ---------------------------------------------------------------------- activations


def test_plot_activations_time_axis_is_the_clip(rng):
    W = rng.random((N_FRAMES, 4))
    ax = plots.plot_activations(W, SR, CFG.hop_length, duration=DURATION)
    assert ax.get_xlim() == pytest.approx((0.0, DURATION))
    assert ax.get_xlabel() == "Time (s)"
    assert len(_meshes(ax)) == 1
    # without the duration: within half a hop of the clip length
    ax = plots.plot_activations(W, SR, CFG.hop_length)
    assert ax.get_xlim()[0] == 0.0
    assert abs(ax.get_xlim()[1] - DURATION) <= 0.5 * CFG.hop_length / SR + 1e-12


def test_plot_activations_grouped(rng):
    W = np.zeros((N_FRAMES, 3))
    for j in range(3):
        W[10 * (j + 1), j] = 1.0  # component j fires at frame 10 (j + 1)
    ax = plots.plot_activations(W, SR, CFG.hop_length, labels=["x", "y", "x"], legend=True)
    meshes = _meshes(ax)
    assert len(meshes) == 2
    first = np.asarray(meshes[0].get_array()).reshape(2, -1)
    assert first.argmax(axis=1).tolist() == [10, 30]  # components 0 and 2
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y"]
    assert len(ax.get_legend().get_texts()) == 2


def test_long_signals_are_pooled(rng):
    W = rng.random((10_000, 2))
    ax = plots.plot_activations(W, SR, CFG.hop_length, max_frames=500)
    assert np.asarray(_meshes(ax)[0].get_array()).reshape(2, -1).shape[1] <= 500
    assert ax.get_xlim()[1] == pytest.approx((10_000 - 0.5) * CFG.hop_length / SR)


# ---------------------------------------------------------------------- spectrogram, masks


def test_plot_spectrogram_from_v_and_from_x(rng):
    X = rng.standard_normal((2, NB, N_FRAMES)) + 1j * rng.standard_normal((2, NB, N_FRAMES))
    V = np.sqrt((np.abs(X) ** 2).mean(axis=0)).T
    ax_x = plots.plot_spectrogram(X, SR, CFG.hop_length, title="mix")
    ax_v = plots.plot_spectrogram(V, SR, CFG.hop_length)
    for ax in (ax_x, ax_v):
        assert len(ax.figure.axes) == 2  # + colorbar
        assert ax.get_xlabel() == "Time (s)" and "Hz" in ax.get_ylabel()
        assert ax.get_yscale() == "symlog"
        assert ax.get_ylim() == pytest.approx((0.0, SR / 2))
        assert _meshes(ax)[0].get_clim() == (-80, 0)
    assert ax_x.get_title() == "mix"
    np.testing.assert_allclose(_meshes(ax_x)[0].get_array(), _meshes(ax_v)[0].get_array(),
                               atol=1e-4)
    ax = plots.plot_spectrogram(V, SR, CFG.hop_length, freq_scale="linear", colorbar=False)
    assert ax.get_yscale() == "linear" and len(ax.figure.axes) == 1


def test_plot_spectrogram_silence_is_finite():
    ax = plots.plot_spectrogram(np.zeros((20, NB)), SR, CFG.hop_length)
    assert np.isfinite(_meshes(ax)[0].get_array()).all()


def test_plot_spectrogram_refuses_real_3d(rng):
    with pytest.raises(ParameterError, match="complex STFT"):
        plots.plot_spectrogram(rng.random((2, NB, 10)), SR, CFG.hop_length)


def test_plot_masks(model):
    axes = plots.plot_masks(model.masks, SR, CFG.hop_length, names=list(model.groups),
                            duration=DURATION)
    assert len(axes) == 3
    assert len(axes[0].figure.axes) == 3 + 1  # + one shared colorbar
    assert [ax.get_title() for ax in axes] == ["Mask: piano", "Mask: flute", "Mask: residual"]
    for ax in axes:
        assert _meshes(ax)[0].get_clim() == (0, 1)
        assert ax.get_xlim() == pytest.approx((0.0, DURATION))
    with pytest.raises(ParameterError, match="names"):
        plots.plot_masks(model.masks, SR, CFG.hop_length, names=["a"])


# ---------------------------------------------------------------------- loss


def test_plot_loss():
    ax = plots.plot_loss([10.0, 5.0, 4.0], [0, 10, 20])
    (line,) = ax.lines
    assert line.get_xdata().tolist() == [0, 10, 20]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "iteration"
    ax = plots.plot_loss([1.0, 0.0])  # a zero: no log axis
    assert ax.get_yscale() == "linear" and ax.get_xlabel() == "loss check"
    assert len(plots.plot_loss([]).lines) == 0
    with pytest.raises(ParameterError, match="iterations"):
        plots.plot_loss([1.0, 2.0], [0])


# ---------------------------------------------------------------------- figures


def test_dictionary_figure(rng):
    d = types.SimpleNamespace(atoms=_atoms(5, rng).astype(np.float32),
                              labels=("piano", "piano", "flute", "flute", "flute"), sr=SR,
                              stft=CFG, power=1.0, beta=1.0)
    fig = plots.dictionary_figure(d)
    ax_atoms, ax_mean, ax_notes = fig.axes
    assert len(_meshes(ax_atoms)) == 2
    assert [t.get_text() for t in ax_atoms.get_legend().get_texts()] == ["piano", "flute"]
    assert [line.get_label() for line in ax_mean.lines] == ["piano", "flute"]
    assert "Hz" in ax_mean.get_xlabel()
    assert "5 atoms" in fig._suptitle.get_text()


def test_separation_figure(model):
    fig = plots.separation_figure(model)
    by_label = {ax.get_label(): ax for ax in fig.axes if ax.get_label()}
    expected = {"spectrogram", "loss", "atoms", "activations",
                "mask:piano", "mask:flute", "mask:residual"}
    assert expected <= set(by_label)
    act = by_label["activations"]
    assert act.get_xlim() == pytest.approx((0.0, DURATION))
    assert len(_meshes(act)) == 3
    assert [t.get_text() for t in by_label["atoms"].get_yticklabels()] == [
        "piano", "flute", "residual"]
    assert len(act.get_legend().get_texts()) == 3
    assert by_label["loss"].lines[0].get_xdata().tolist() == list(range(0, 80, 10))
    assert by_label["spectrogram"].get_title().startswith("NMF model")


def test_separation_figure_saved_model_many_groups(rng):
    """A saved model: masks() on the analysis grid, no stems; more groups than panels."""
    k = 8
    W = rng.random((N_FRAMES, k))
    H = _atoms(k, rng)
    groups = {f"component_{i + 1:02d}": [i] for i in range(k)}
    masks = np.stack([np.outer(W[:, i], H[i]) for i in range(k)])
    masks /= masks.sum(axis=0, keepdims=True)
    m = types.SimpleNamespace(W=W, H=H, groups=groups, masks=lambda: masks, sr=2 * SR,
                              stft=STFTConfig(n_fft=512, hop_length=128), analysis_sr=SR,
                              analysis_stft=CFG, loss_history=np.array([3.0, 2.0]))
    fig = plots.separation_figure(m, max_mask_panels=4)
    labels = [ax.get_label() for ax in fig.axes]
    assert "mask:dominant" in labels and not any(x.startswith("mask:comp") for x in labels)
    mix = rng.standard_normal((1, 257, 2 * N_FRAMES)).astype(np.complex64)
    fig = plots.separation_figure(m, mixture=mix)
    spec = next(ax for ax in fig.axes if ax.get_label() == "spectrogram")
    assert spec.get_title() == "Mixture"


def test_rank_figure(rng):
    r = types.SimpleNamespace(ks=[2, 4, 6, 8], errors=rng.random((4, 3)) + 1,
                              stability=[0.9, 0.95, 0.7, 0.6], suggested_k=4)
    fig = plots.rank_figure(r)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        marks = [ln for ln in ax.lines if list(ln.get_xdata()) == [4, 4]]
        assert len(marks) == 1
        assert any("suggested k = 4" in t.get_text() for t in ax.get_legend().get_texts())
    assert fig.axes[1].get_xlabel() == "number of components k"


# ---------------------------------------------------------------------- inputs untouched


def test_inputs_not_modified(model):
    arrays = (model.W, model.H, model.masks, model.loss_history)
    copies = [a.copy() for a in arrays]
    _readonly(*arrays)
    groups = {k: list(v) for k, v in model.groups.items()}
    plots.separation_figure(model)
    plots.plot_atoms(model.H, SR, groups=model.groups, style="lines")
    plots.plot_spectrogram(model.W @ model.H, SR, CFG.hop_length)
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)
    assert model.groups == groups


# ---------------------------------------------------------------------- files


def _small_figure(rng):
    return plots.plot_atoms(_atoms(2, rng), SR).figure


def test_save_png_and_svg(tmp_path, rng):
    plt.close("all")
    png = plots.save_figure(_small_figure(rng), tmp_path / "out" / "atoms.png")
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[0] > 100
    svg = plots.save_figure(_small_figure(rng), tmp_path / "atoms.SVG")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert plt.get_fignums() == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["atoms.SVG", "atoms.png", "out"]


def test_save_refuses_bad_suffix_and_existing(tmp_path, rng):
    with pytest.raises(ParameterError, match=r"\.jpg"):
        plots.save_figure(_small_figure(rng), tmp_path / "atoms.jpg")
    assert plt.get_fignums() == []  # closed anyway
    with pytest.raises(ParameterError, match="no suffix"):
        plots.check_figure_path(tmp_path / "atoms")
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="pass force=True"):
        plots.save_figure(_small_figure(rng), target)
    assert target.read_bytes() == b"old"
    plots.save_figure(_small_figure(rng), target, force=True)
    assert mpimg.imread(target).ndim == 3
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary left
    assert plt.get_fignums() == []


def test_plot_file_dictionary(tmp_path, rng):
    from nmfsep.dictionary import Dictionary

    H = _atoms(4, rng).astype(np.float32)
    H /= np.linalg.norm(H, axis=1, keepdims=True)
    d = Dictionary(atoms=H, labels=("a", "a", "b", "b"), sr=SR, stft=CFG)
    d.save(tmp_path / "d.npz")
    out = plots.plot_file(tmp_path / "d.npz", tmp_path / "d.svg")
    assert ET.parse(out).getroot().tag.endswith("svg")
    assert plt.get_fignums() == []
    with pytest.raises(ParameterError, match=r"\.pdf"):
        plots.plot_file(tmp_path / "d.npz", tmp_path / "d.pdf")


def test_plot_file_model(tmp_path, rng):
    from nmfsep.separate import separate

    y = (0.1 * rng.standard_normal((1, SR // 2))).astype(np.float32)
    result = separate(y, SR, n_components=3, n_sources=2, stft=CFG, max_iter=5)
    result.save_model(tmp_path / "m.npz")
    out = plots.plot_file(tmp_path / "m.npz", tmp_path / "m.png")
    assert mpimg.imread(out).ndim == 3
    assert plt.get_fignums() == []
    with pytest.raises(OutputError, match="pass force=True"):
        plots.plot_file(tmp_path / "m.npz", tmp_path / "m.png")


def test_rank_figure_draws_a_real_rank_result(tmp_path):
    import numpy as np

    from nmfsep.plots import rank_figure, save_figure
    from nmfsep.rank import rank_sweep

    g = np.random.default_rng(0)
    V = g.gamma(1.0, 1.0, (80, 3)) @ g.gamma(1.0, 1.0, (3, 30)) + 0.01
    result = rank_sweep(V, [2, 3, 4], seeds=(0, 1), max_iter=40)
    assert result.errors.shape == (3, 2)
    fig = rank_figure(result)
    assert len(fig.axes) == 2
    assert save_figure(fig, tmp_path / "rank.png").stat().st_size > 0
