"""Adam with early stopping on MNIST, side by side with scikit-learn (issue 23's floor), in one process.

    python benchmarks/mlp_adam_mnist.py [--rounds 2] [--dtype float32|float64]

The same network and training: [784, 256, 10] relu/softmax, Adam (step 0.001, β₁ 0.9, β₂ 0.999),
batches of 200, λ = 1e-4 (scikit-learn's ``alpha``), early stopping on a stratified 10 % held out
after 10 epochs without a better accuracy, at most 200 epochs; pixels scaled to [0, 1], not
standardised (``normalize=False``; scikit-learn never standardises). Fits alternate (hml,
scikit-learn, scikit-learn, hml, ...) so both see the same drift of a shared machine. Floors:
test accuracy ≥ 0.978, hml's fit time ≤ 1.0× scikit-learn's.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import hml
from hml.datasets import load_mnist


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    from sklearn.neural_network import MLPClassifier

    train, test = load_mnist("train"), load_mnist("test")
    X, y = (train.data / 255.0).astype(args.dtype), train.target
    X_test, y_test = (test.data / 255.0).astype(args.dtype), test.target

    def ours():
        return hml.MultilayerPerceptron(
            layers=[784, 256, 10],
            activation="relu",
            output="softmax",
            init="glorot",
            solver="adam",
            batch_size=200,
            l2=1e-4,
            max_iter=200,
            tol=None,
            normalize=False,
            early_stopping=True,
            n_iter_no_change=10,
            random_state=0,
        )

    def theirs():
        return MLPClassifier(
            hidden_layer_sizes=(256,),
            solver="adam",
            batch_size=200,
            alpha=1e-4,
            max_iter=200,
            early_stopping=True,
            n_iter_no_change=10,
            random_state=0,
        )

    times: dict[str, list[float]] = {"hml": [], "scikit-learn": []}
    for round_ in range(args.rounds):
        order = [("hml", ours), ("scikit-learn", theirs)]
        for name, make in order if round_ % 2 == 0 else order[::-1]:
            model = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                model.fit(X, y)
                seconds = time.perf_counter() - start
            accuracy = float(np.mean(np.asarray(model.predict(X_test)) == y_test))
            epochs = model.n_iter_
            times[name].append(seconds)
            print(
                f"{name:>12}: {seconds:6.1f} s, {epochs} epochs ({seconds / epochs:.2f} s each), test accuracy {accuracy:.4f}",
                flush=True,
            )
    ratio = statistics.median(times["hml"]) / statistics.median(times["scikit-learn"])
    print(f"hml / scikit-learn fit time (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
