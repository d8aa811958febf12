"""MNIST quality floors of the classifiers (issue 4), side by side with scikit-learn in one run.

    python benchmarks/mnist_quality.py [--skip-sklearn] [--only lr|mlp]

Loads MNIST through hml.datasets (set HML_DATA_MIRROR offline), scales pixels to [0, 1],
fits each model once on the 60,000 training images and reports the wall time of ``fit``
and the accuracy on the 10,000 test images. Floors: logistic regression ≥ 0.92 in at most
0.5× scikit-learn's ``LogisticRegression()`` time; MLP ≥ 0.95 with mini-batches; the
original [784, 25, 10] full-batch network ≥ 0.92 in at most 300 iterations.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np

import hml
from hml.datasets import load_mnist


def timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--only", choices=["lr", "mlp"])
    args = parser.parse_args()
    train, test = load_mnist("train"), load_mnist("test")
    X, y = train.data / 255.0, train.target
    X_test, y_test = test.data / 255.0, test.target
    print(
        f"# MNIST quality run: {platform.node()} {platform.processor() or platform.machine()}, numpy {np.__version__}, hml {hml.__version__}"
    )
    warnings.simplefilter("ignore")  # ConvergenceWarnings of fixed-iteration fits
    rows = []
    if args.only in (None, "lr"):
        ours = hml.LogisticRegression()
        seconds = timed_fit(ours, X, y)
        rows.append(
            ("hml LogisticRegression() [multinomial, L-BFGS, 50 iterations]", seconds, ours.score(X_test, y_test))
        )
        if not args.skip_sklearn:
            from sklearn.linear_model import LogisticRegression

            peer = LogisticRegression()
            peer_seconds = timed_fit(peer, X, y)
            rows.append(
                ("scikit-learn LogisticRegression() [lbfgs, 100 iterations]", peer_seconds, peer.score(X_test, y_test))
            )
            rows.append(("ratio hml / scikit-learn (floor ≤ 0.5)", seconds / peer_seconds, float("nan")))
    if args.only in (None, "mlp"):
        original = hml.MultilayerPerceptron(layers=[784, 25, 10], max_iter=300, learning_rate=1.0, random_state=0)
        seconds = timed_fit(original, X, y)
        rows.append(
            (
                "hml MLP [784, 25, 10] sigmoid, full batch, 300 iterations, lr 1.0, l2 1.0",
                seconds,
                original.score(X_test, y_test),
            )
        )
        minibatch = hml.MultilayerPerceptron(
            layers=[784, 256, 10],
            activation="relu",
            output="softmax",
            init="glorot",
            learning_rate=0.05,
            batch_size=128,
            momentum=0.9,
            max_iter=10,
            l2=1.0,
            random_state=0,
        )
        seconds = timed_fit(minibatch, X, y)
        rows.append(
            (
                "hml MLP [784, 256, 10] relu/softmax, batch 128, momentum 0.9, 10 epochs",
                seconds,
                minibatch.score(X_test, y_test),
            )
        )
    print("| model | fit time (s) | test accuracy |")
    print("| --- | --- | --- |")
    for name, seconds, accuracy in rows:
        print(f"| {name} | {seconds:.2f} | {'' if np.isnan(accuracy) else f'{accuracy:.4f}'} |")


if __name__ == "__main__":
    main()
