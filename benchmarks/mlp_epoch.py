"""The mini-batch perceptron's epoch (issue 24, item 4): hml with the code of a git ref and of the working
tree, scikit-learn and PyTorch, timed alternately in one process on the data and network of the asv
benchmark ``MLPMiniBatchEpochVsPeers`` ([784, 256, 10] relu/softmax, batch-128 SGD with momentum 0.9).

    python benchmarks/mlp_epoch.py --before HEAD~1 --rounds 5

Per dtype: each side's fit of one epoch (what the asv benchmark times; hml's includes J(θ₀) on all rows),
hml's epoch alone (a three-epoch fit less a one-epoch fit, halved), the ratios, and the largest difference
between the two hml versions' weights after three epochs (0: bit for bit).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench_classifiers  # the module, not the class: asv would find the class here too
from benchmarks.before_after import load_before
from benchmarks.common import alternated_medians


def hml_fit(module, X, codes, epochs):
    return bench_classifiers.mini_batch_network(module, epochs).fit(X, codes)


def compare(old, new, dtype: str, rounds: int) -> None:
    """One dtype: the fits timed alternately, the medians and ratios printed."""
    peers = bench_classifiers.MLPMiniBatchEpochVsPeers()
    peers.setup("60000x784", dtype)
    X, codes = peers.X, peers.codes
    fits = {
        "before 1": lambda: hml_fit(old, X, codes, 1),
        "after 1": lambda: hml_fit(new, X, codes, 1),
        "before 3": lambda: hml_fit(old, X, codes, 3),
        "after 3": lambda: hml_fit(new, X, codes, 3),
        "scikit-learn": peers._sklearn,
    }
    if peers.torch is not None:
        fits["PyTorch"] = peers._torch
    weights = {name: fits[name]() for name in ("before 3", "after 3")}  # and a warm-up
    for name in ("before 1", "after 1", "scikit-learn", "PyTorch"):
        if name in fits:
            fits[name]()
    difference = float(
        np.max(np.abs(np.asarray(weights["after 3"].coefs_[0]) - np.asarray(weights["before 3"].coefs_[0])))
    )
    t = alternated_medians(fits, rounds)
    epoch = {side: (t[f"{side} 3"] - t[f"{side} 1"]) / 2 for side in ("before", "after")}
    print(
        f"{dtype}: one-epoch fit before {t['before 1']:.3f} s, after {t['after 1']:.3f} s "
        f"({t['after 1'] / t['before 1']:.3f}×); epoch alone before {epoch['before']:.3f} s, after "
        f"{epoch['after']:.3f} s ({epoch['after'] / epoch['before']:.3f}×); largest weight difference "
        f"after 3 epochs {difference:.3g}",
        flush=True,
    )
    for name in ("scikit-learn", "PyTorch"):
        if name in t:
            peer_time = t[name]
            print(
                f"  {name} one-epoch fit {peer_time:.3f} s: hml's fit ÷ it {t['after 1'] / peer_time:.3f}, "
                f"hml's epoch ÷ it {epoch['after'] / peer_time:.3f} (before: {t['before 1'] / peer_time:.3f}, "
                f"{epoch['before'] / peer_time:.3f})",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="the git ref to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    args = parser.parse_args()
    old = load_before(args.before, Path(tempfile.mkdtemp()))
    import hml

    warnings.simplefilter("ignore")
    for dtype in args.dtypes:
        compare(old, hml, dtype, args.rounds)


if __name__ == "__main__":
    main()
