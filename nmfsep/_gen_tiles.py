"""Write :mod:`nmfsep._tiles`, the register-tiled products of the fused MU kernel.

``python -m nmfsep._gen_tiles`` rewrites ``nmfsep/_tiles.py`` and the hash of it in
``nmfsep/_kernels.py`` (``TILES_SHA256``: numba's cache of the kernels is keyed by
their own file's text, so this is what rebuilds them). Tests check both, so edit
this script, never the output.

Why generated code: a matrix product runs at the CPU's FMA rate only when a tile
of the output (here 4 rows × 48 bins, 12 AVX-512 registers) stays in registers
while the sum over the short dimension (the atoms, or the rows of a block) runs.
numba has no vector types, but LLVM's SLP vectoriser packs straight-line scalar
code whose lanes are written out one by one into vector instructions. So every
lane of the tile is a scalar accumulator of its own, and this script spells them
out. (With the output kept in memory instead, as in a loop over bins, each FMA
also loads and stores its output: measured at 60-65 % of the tiled speed.)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

LANES = 48  # bins per tile: three 16-lane vectors
ROWS = 4  # rows (frames) per W H tile

HEADER = '''"""Register-tiled products of the fused MU kernel (written by nmfsep/_gen_tiles.py).

Do not edit: change ``nmfsep/_gen_tiles.py`` and run it (its docstring says why
the lanes are spelled out). Compiled with LLVM's SLP vectoriser on
(:func:`nmfsep._kernels.compiled`).
"""

from numba import njit

# no "reassoc": the sums over atoms / rows must stay scalar chains per lane, which the
# SLP vectoriser packs into vectors (with it, the loop vectoriser would vectorise the
# sum over atoms instead, across the wrong dimension)
# not cached on their own: they are compiled only inside the kernel (whose cache holds
# them), so no build made without the SLP vectoriser can be picked up from disk
_TILE = dict(nogil=True, fastmath={{"contract", "nsz"}}, cache=False, boundscheck=False)

LANES = {lanes}
'''


def _names(prefix: str) -> str:
    return ", ".join(f"{prefix}{lane}" for lane in range(LANES))


def _fma_and_store(n: int, weight, vector: str, target, indent: str) -> tuple[list[str], list[str]]:
    """Lines that add ``weight(t) * vector[lane]`` to ``s{t}_{lane}``, and that store them.

    ``t`` runs over the ``n`` accumulated rows (or atoms); ``target(t)`` is the slice
    the ``s{t}_*`` are stored into.
    """
    fma, store = [], []
    for t in range(n):
        fma.append(f"{indent}    w = {weight(t)}")
        fma += [f"{indent}    s{t}_{lane} += w * {vector}[{lane}]" for lane in range(LANES)]
        store.append(f"{indent}o = {target(t)}")
        store += [f"{indent}o[{lane}] = s{t}_{lane}" for lane in range(LANES)]
    return fma, store


def wh_tile() -> str:
    """``Q[r, panel p] = W[i + r] @ H[:, panel p]`` for the four rows, every panel."""
    out = [
        "@njit(**_TILE)",
        "def wh_tile(W, i, Hp, Q):  # pragma: no cover - compiled",
        f'    """``Q[r, :n_pan * {LANES}] = W[i + r] @ H`` for r = 0..{ROWS - 1}.',
        "",
        f"    ``Hp`` holds H in panels of {LANES} bins, shape (n_pan, k, {LANES}), zero-padded.",
        '    """',
        "    n_pan, k, _ = Hp.shape",
        "    zero = Hp.dtype.type(0)",
        "    for p in range(n_pan):",
    ]
    for r in range(ROWS):
        out.append(f"        {_names(f's{r}_')} = " + ", ".join(["zero"] * LANES))
    fma, store = _fma_and_store(ROWS, lambda r: f"W[i + {r}, a]", "h",
                                lambda r: f"Q[{r}, p * {LANES}:(p + 1) * {LANES}]", " " * 8)
    out += ["        for a in range(k):", "            h = Hp[p, a]", *fma, *store]
    return "\n".join(out) + "\n"


def outer_tile(n_atoms: int) -> str:
    """``A[f + c] += Σ_r Wb[r, free[f + c]] R[r]`` for ``n_atoms`` atoms, every panel."""
    gs = [f"g{c}" for c in range(n_atoms)]
    out = [
        "@njit(**_TILE)",
        f"def outer_tile{n_atoms}(Wb, n, free, f, R, A):  # pragma: no cover - compiled",
        f'    """``A[f + c] += Σ_(r < n) Wb[r, free[f + c]] R[r]`` for c = 0..{n_atoms - 1}.',
        "",
        f"    A and R have whole panels of {LANES} bins (their padding is added too).",
        '    """',
        f"    {', '.join(gs)} = "
        + ", ".join(f"free[f + {c}]" for c in range(n_atoms)),
        f"    for j in range(0, A.shape[1], {LANES}):",
    ]
    for c in range(n_atoms):
        out.append(f"        a = A[f + {c}, j:j + {LANES}]")
        loads = ", ".join(f"a[{lane}]" for lane in range(LANES))
        out.append(f"        {_names(f's{c}_')} = {loads}")
    fma, store = _fma_and_store(n_atoms, lambda c: f"Wb[r, g{c}]", "x",
                                lambda c: f"A[f + {c}, j:j + {LANES}]", " " * 8)
    out += ["        for r in range(n):", f"            x = R[r, j:j + {LANES}]", *fma, *store]
    return "\n".join(out) + "\n"


def source() -> str:
    """Return the text of ``nmfsep/_tiles.py``."""
    parts = [HEADER.format(lanes=LANES), wh_tile(), outer_tile(4), outer_tile(1)]
    return "\n\n".join(parts)


def main() -> None:
    text = source()
    here = Path(__file__)
    here.with_name("_tiles.py").write_text(text)
    # numba keys its on-disk cache of a function by the text of the function's own file,
    # so the kernels that call the tiles carry the tiles' hash: a new hash rebuilds them
    kernels = here.with_name("_kernels.py")
    digest = hashlib.sha256(text.encode()).hexdigest()
    kernels.write_text(re.sub(r'TILES_SHA256 = "[0-9a-f]*"', f'TILES_SHA256 = "{digest}"',
                              kernels.read_text()))


if __name__ == "__main__":
    main()
