"""Why hml's compiled loops compile once, under a lock (hml.kernels._numba._loops): the one-chain nearest-centroid
loop compiled with LLVM's SLP vectoriser on -- as a thread could compile it while another had Numba's process-wide
switch on for the loops that want it -- against the same loop compiled with it off, as hml compiles it. Numba's
cache keeps whichever was compiled first on a machine.

    python benchmarks/loops_slp.py

Prints ns a row (16,384 rows of scores, one thread, best of 9) for each.
"""

from __future__ import annotations

import functools
import sys
import timeit
from pathlib import Path

import numba
import numpy as np
from numba.core import config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hml.kernels import _numba, _numba_loops


def main() -> None:
    compiled = {}
    for slp in (False, True):
        config.SLP_VECTORIZE = slp
        compiled[slp] = numba.njit(_numba._NEAREST_SIGNATURES, nogil=True)(_numba_loops.nearest_in_rows)
    config.SLP_VECTORIZE = False
    rng = np.random.default_rng(0)
    for dtype, k in ((np.float64, 64), (np.float32, 64), (np.float64, 256), (np.float32, 256)):
        scores = rng.standard_normal((16_384, k)).astype(dtype)
        norms = rng.random(k).astype(dtype)
        labels, best = np.empty(16_384, np.int32), np.empty(16_384, dtype)
        times = {
            slp: min(timeit.repeat(functools.partial(loop, scores, norms, labels, best), number=20, repeat=9)) / 20
            for slp, loop in compiled.items()
        }
        print(
            f"{np.dtype(dtype).name}, K = {k}: SLP off (hml) {times[False] / 16_384 * 1e9:.1f} ns a row, "
            f"on {times[True] / 16_384 * 1e9:.1f} ({times[True] / times[False]:.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
