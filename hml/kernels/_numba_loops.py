"""The bodies of hml's compiled loops (:mod:`hml.kernels._numba` compiles them with Numba, and says why each
exists): plain Python over arrays and scalars, never run uncompiled -- a Python iteration per value."""

from __future__ import annotations

from typing import Any

import numpy as np


def nearest_in_rows(scores: Any, norms: Any, labels: Any, best: Any) -> None:  # pragma: no cover - compiled
    # Four rows at a time: a row's running minimum is a chain of dependent compares, each waiting on
    # the last; four independent chains keep the core busy meanwhile.
    n, k = scores.shape
    whole = n - n % 4
    for i in range(0, whole, 4):
        b0 = scores[i, 0] + norms[0]
        b1 = scores[i + 1, 0] + norms[0]
        b2 = scores[i + 2, 0] + norms[0]
        b3 = scores[i + 3, 0] + norms[0]
        l0 = l1 = l2 = l3 = 0
        for j in range(1, k):
            v0 = scores[i, j] + norms[j]
            v1 = scores[i + 1, j] + norms[j]
            v2 = scores[i + 2, j] + norms[j]
            v3 = scores[i + 3, j] + norms[j]
            if v0 < b0:
                b0, l0 = v0, j
            if v1 < b1:
                b1, l1 = v1, j
            if v2 < b2:
                b2, l2 = v2, j
            if v3 < b3:
                b3, l3 = v3, j
        labels[i], labels[i + 1], labels[i + 2], labels[i + 3] = l0, l1, l2, l3
        best[i], best[i + 1], best[i + 2], best[i + 3] = b0, b1, b2, b3
    for i in range(whole, n):
        b, label = scores[i, 0] + norms[0], 0
        for j in range(1, k):
            v = scores[i, j] + norms[j]
            if v < b:
                b, label = v, j
        labels[i], best[i] = label, b


def nearest_in_lanes(scores: Any, norms: Any, labels: Any, best: Any) -> None:  # pragma: no cover - compiled
    # As nearest_in_rows, for long rows: eight running minima (lane l over the scores l, l + 8, …), which the
    # SLP vectoriser turns into one vector compare and two blends per eight scores, where one chain of
    # compares takes a cycle or more per score. Then the least of the eight, and among equal minima the
    # lowest index (the first, as argmin), then the scores past the last whole eight.
    n, k = scores.shape
    whole = k - k % 8
    for i in range(n):
        m0 = np.inf
        m1 = np.inf
        m2 = np.inf
        m3 = np.inf
        m4 = np.inf
        m5 = np.inf
        m6 = np.inf
        m7 = np.inf
        j0 = 0
        j1 = 0
        j2 = 0
        j3 = 0
        j4 = 0
        j5 = 0
        j6 = 0
        j7 = 0
        for j in range(0, whole, 8):
            v0 = scores[i, j + 0] + norms[j + 0]
            v1 = scores[i, j + 1] + norms[j + 1]
            v2 = scores[i, j + 2] + norms[j + 2]
            v3 = scores[i, j + 3] + norms[j + 3]
            v4 = scores[i, j + 4] + norms[j + 4]
            v5 = scores[i, j + 5] + norms[j + 5]
            v6 = scores[i, j + 6] + norms[j + 6]
            v7 = scores[i, j + 7] + norms[j + 7]
            if v0 < m0:
                m0, j0 = v0, j + 0
            if v1 < m1:
                m1, j1 = v1, j + 1
            if v2 < m2:
                m2, j2 = v2, j + 2
            if v3 < m3:
                m3, j3 = v3, j + 3
            if v4 < m4:
                m4, j4 = v4, j + 4
            if v5 < m5:
                m5, j5 = v5, j + 5
            if v6 < m6:
                m6, j6 = v6, j + 6
            if v7 < m7:
                m7, j7 = v7, j + 7
        b, label = m0, j0
        if m1 < b or (m1 == b and j1 < label):
            b, label = m1, j1
        if m2 < b or (m2 == b and j2 < label):
            b, label = m2, j2
        if m3 < b or (m3 == b and j3 < label):
            b, label = m3, j3
        if m4 < b or (m4 == b and j4 < label):
            b, label = m4, j4
        if m5 < b or (m5 == b and j5 < label):
            b, label = m5, j5
        if m6 < b or (m6 == b and j6 < label):
            b, label = m6, j6
        if m7 < b or (m7 == b and j7 < label):
            b, label = m7, j7
        for j in range(whole, k):
            v = scores[i, j] + norms[j]
            if v < b:
                b, label = v, j
        labels[i] = label
        best[i] = b


def nearest_by_eights(X: Any, columns: Any, bias: Any, labels: Any, best: Any) -> None:  # pragma: no cover
    # For two rows at a time and each group g of eight centroids, the scores sₖ = bias[g, k] + Σ_f x_f ·
    # columns[g, f, k]: sixteen scalars that the SLP vectoriser keeps in two vector registers, the pair
    # sharing each feature's load of the eight columns; then each row's running minimum takes the eight
    # in centroid order (strict <: the first of equal minima, as argmin).
    n, d = X.shape
    whole = n - n % 2
    for i in range(0, whole, 2):
        b0 = b1 = np.inf
        l0 = l1 = 0
        for g in range(columns.shape[0]):
            # Row after row, each row's eight in order: so the SLP vectoriser packs them (interleaved,
            # p0 = q0 = …, it did not: 1.5× the time).
            p0 = bias[g, 0]
            p1 = bias[g, 1]
            p2 = bias[g, 2]
            p3 = bias[g, 3]
            p4 = bias[g, 4]
            p5 = bias[g, 5]
            p6 = bias[g, 6]
            p7 = bias[g, 7]
            q0 = bias[g, 0]
            q1 = bias[g, 1]
            q2 = bias[g, 2]
            q3 = bias[g, 3]
            q4 = bias[g, 4]
            q5 = bias[g, 5]
            q6 = bias[g, 6]
            q7 = bias[g, 7]
            for f in range(d):
                x = X[i, f]
                y = X[i + 1, f]
                c = columns[g, f, 0]
                p0 += x * c
                q0 += y * c
                c = columns[g, f, 1]
                p1 += x * c
                q1 += y * c
                c = columns[g, f, 2]
                p2 += x * c
                q2 += y * c
                c = columns[g, f, 3]
                p3 += x * c
                q3 += y * c
                c = columns[g, f, 4]
                p4 += x * c
                q4 += y * c
                c = columns[g, f, 5]
                p5 += x * c
                q5 += y * c
                c = columns[g, f, 6]
                p6 += x * c
                q6 += y * c
                c = columns[g, f, 7]
                p7 += x * c
                q7 += y * c
            k = 8 * g
            if p0 < b0:
                b0, l0 = p0, k
            if p1 < b0:
                b0, l0 = p1, k + 1
            if p2 < b0:
                b0, l0 = p2, k + 2
            if p3 < b0:
                b0, l0 = p3, k + 3
            if p4 < b0:
                b0, l0 = p4, k + 4
            if p5 < b0:
                b0, l0 = p5, k + 5
            if p6 < b0:
                b0, l0 = p6, k + 6
            if p7 < b0:
                b0, l0 = p7, k + 7
            if q0 < b1:
                b1, l1 = q0, k
            if q1 < b1:
                b1, l1 = q1, k + 1
            if q2 < b1:
                b1, l1 = q2, k + 2
            if q3 < b1:
                b1, l1 = q3, k + 3
            if q4 < b1:
                b1, l1 = q4, k + 4
            if q5 < b1:
                b1, l1 = q5, k + 5
            if q6 < b1:
                b1, l1 = q6, k + 6
            if q7 < b1:
                b1, l1 = q7, k + 7
        labels[i] = l0
        best[i] = b0
        labels[i + 1] = l1
        best[i + 1] = b1
    for i in range(whole, n):  # an odd last row
        b, label = np.inf, 0
        for g in range(columns.shape[0]):
            for j in range(8):
                s = bias[g, j]
                for f in range(d):
                    s += X[i, f] * columns[g, f, j]
                if s < b:
                    b, label = s, 8 * g + j
        labels[i] = label
        best[i] = b


def segment_sums(values: Any, ids: Any, sums: Any, counts: Any) -> None:  # pragma: no cover - compiled
    n_segments = sums.shape[0]
    for i in range(values.shape[0]):
        segment = ids[i]
        if 0 <= segment < n_segments:  # the one-hot default ignores other ids; never write outside S
            counts[segment] += 1.0
            for j in range(values.shape[1]):
                sums[segment, j] += values[i, j]


def segment_moves(values: Any, before: Any, after: Any, sums: Any, counts: Any) -> int:  # pragma: no cover
    n_segments, n_changed = sums.shape[0], 0
    for i in range(values.shape[0]):
        old, new = before[i], after[i]
        if old == new:
            continue
        n_changed += 1
        if 0 <= old < n_segments:
            counts[old] -= 1.0
            for j in range(values.shape[1]):
                sums[old, j] -= values[i, j]
        if 0 <= new < n_segments:
            counts[new] += 1.0
            for j in range(values.shape[1]):
                sums[new, j] += values[i, j]
    return n_changed
