"""Flows between the clusters of two columns, the decision paths of a class, and the inputs on rare flows.

Plain functions over an assignments table (one int column per level or time step, bottom to top, then
``"class"``); no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["CLASS", "class_column", "flow_counts", "flow_table", "path_table", "rare_inputs"]

#: The name of the top column of an assignments table.
CLASS = "class"


def class_column(c: int) -> str:
    """The name of the count column of class ``c`` in a flows table: ``"class_3"``."""
    return f"{CLASS}_{c}"


def flow_counts(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct pairs (lower, upper) and how many rows carry each, sorted by lower then upper.

    Returns
    -------
    lower_ids, upper_ids, counts : ndarray of shape (n_pairs,), int64
    """
    width = int(upper.max()) + 1 if len(upper) else 1
    codes, counts = np.unique(lower.astype(np.int64) * width + upper, return_counts=True)
    return codes // width, codes % width, counts.astype(np.int64)


def flow_table(assignments: pd.DataFrame, lower: str, upper: str, classes: Sequence[int]) -> pd.DataFrame:
    """F[a, b]: the inputs in cluster ``a`` of column ``lower`` and ``b`` of column ``upper``, split by class.

    Parameters
    ----------
    assignments : pandas.DataFrame of shape (N, n_columns)
    lower, upper : str
        Column names.
    classes : sequence of int
        The classes given a count column each (an input of another class still counts in ``count``).

    Returns
    -------
    pandas.DataFrame of shape (n_flows, 3 + len(classes))
        ``lower_cluster``, ``upper_cluster``, ``count`` and one column ``class_{c}`` per class; one row per pair
        carrying at least one input, sorted by ``lower_cluster`` then ``upper_cluster``.
    """
    a = assignments[lower].to_numpy(np.int64)
    b = assignments[upper].to_numpy(np.int64)
    lows, ups, counts = flow_counts(a, b)
    table = pd.DataFrame({"lower_cluster": lows, "upper_cluster": ups, "count": counts})
    if len(a) == 0:
        return table.assign(**{class_column(c): np.zeros(0, np.int64) for c in classes})
    width = int(b.max()) + 1
    pair_row = np.searchsorted(lows * width + ups, a * width + b)  # the row of each input's flow
    cls = assignments[CLASS].to_numpy(np.int64)
    for c in classes:
        table[class_column(c)] = np.bincount(pair_row[cls == c], minlength=len(table)).astype(np.int64)
    return table


def path_table(assignments: pd.DataFrame, columns: Sequence[str], cls: int | None = None) -> pd.DataFrame:
    """The decision paths: each distinct sequence of clusters, bottom to top, then the class.

    Parameters
    ----------
    assignments : pandas.DataFrame of shape (N, n_columns)
    columns : sequence of str
        The columns of a path, bottom to top (the class last).
    cls : int, optional
        Only the inputs of this class; their number is then the denominator of ``coverage``.

    Returns
    -------
    pandas.DataFrame of shape (n_paths, 3)
        ``path`` (tuple of int), ``count`` (int) and ``coverage`` (count / inputs of the class, or of all inputs
        when ``cls`` is None), sorted by count (largest first), then by path.
    """
    rows = assignments[list(columns)].to_numpy(np.int64)
    if cls is not None:
        rows = rows[assignments[CLASS].to_numpy(np.int64) == cls]
    if len(rows) == 0:
        return pd.DataFrame(
            {"path": pd.Series([], dtype=object), "count": np.zeros(0, np.int64), "coverage": np.zeros(0)}
        )
    unique, counts = np.unique(rows, axis=0, return_counts=True)  # sorted by path
    order = np.argsort(-counts, kind="stable")  # by count, ties keep the path order
    unique, counts = unique[order], counts[order].astype(np.int64)
    paths = pd.Series([tuple(int(v) for v in row) for row in unique], dtype=object)
    return pd.DataFrame({"path": paths, "count": counts, "coverage": counts / len(rows)})


def rare_inputs(
    assignments: pd.DataFrame,
    columns: Sequence[str],
    predicted: np.ndarray,
    labels: np.ndarray | None,
    *,
    max_fraction: float,
    dominance: float,
) -> pd.DataFrame:
    """Inputs on thin flows, and inputs whose cluster at the last hidden column is dominated by another class.

    A flow between two consecutive columns is thin when it carries at most ``max_fraction`` of all inputs. The
    dominant class of a cluster is the most frequent value of the class column among its inputs (ties: the
    smaller class); the cluster is dominated by it when that class holds at least ``dominance`` of the cluster's
    inputs. An input is flagged when its cluster at the last column below the class is dominated by another class
    than its prediction (the paper's Table 2: a cluster that feeds almost only class 6, and an input of it that
    the model calls 0).

    Returns
    -------
    pandas.DataFrame
        Columns ``input``, ``level`` (the lower column of the flow, or the last hidden column), ``cluster`` (the
        input's cluster there), ``count`` (the flow's count: of the thin flow, or from the cluster to the input's
        class), ``predicted``, ``label`` (nullable Int64, missing without labels), ``dominant`` (the cluster's
        dominant class), ``reason`` (``"thin flow"`` or ``"dominated"``); sorted by input, then column, then reason.
    """
    n = len(assignments)
    values = {name: assignments[name].to_numpy(np.int64) for name in columns}
    cls = values[columns[-1]]
    dominant_of: dict[str, np.ndarray] = {}
    parts = []
    for position, (low, up) in enumerate(zip(columns[:-1], columns[1:])):
        a, b = values[low], values[up]
        lows, ups, counts = flow_counts(a, b)
        width = int(b.max()) + 1 if n else 1
        count = counts[np.searchsorted(lows * width + ups, a * width + b)]
        thin = np.flatnonzero(count <= max_fraction * n)
        parts.append(
            pd.DataFrame(
                {"input": thin, "column": position, "cluster": a[thin], "count": count[thin], "reason": "thin flow"}
            )
        )
        dominant_of[low], share = _dominant(a, cls)
    last = columns[-2]
    a = values[last]
    dominant = dominant_of[last][a]
    flagged = np.flatnonzero((predicted != dominant) & (share[a] >= dominance))
    lows, ups, counts = flow_counts(a, cls)
    width = int(cls.max()) + 1 if n else 1
    to_class = counts[np.searchsorted(lows * width + ups, a * width + cls)]
    parts.append(
        pd.DataFrame(
            {
                "input": flagged,
                "column": len(columns) - 2,
                "cluster": a[flagged],
                "count": to_class[flagged],
                "reason": "dominated",
            }
        )
    )
    table = pd.concat(parts, ignore_index=True).sort_values(["input", "column", "reason"], kind="stable")
    rows = table["input"].to_numpy(np.int64)
    table["level"] = [columns[c] for c in table["column"]]
    table["predicted"] = predicted[rows].astype(np.int64)
    table["label"] = pd.array(labels[rows] if labels is not None else [pd.NA] * len(rows), dtype="Int64")
    table["dominant"] = np.array(
        [dominant_of[columns[c]][k] for c, k in zip(table["column"], table["cluster"])], dtype=np.int64
    )
    columns_out = ["input", "level", "cluster", "count", "predicted", "label", "dominant", "reason"]
    return table[columns_out].astype({"input": np.int64, "cluster": np.int64, "count": np.int64}).reset_index(drop=True)


def _dominant(clusters: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The most frequent class of each cluster id (ties: the smaller class) and the share of the cluster it
    holds, for ids ``0..max`` (an empty id: class 0, share 0)."""
    k = int(clusters.max()) + 1 if len(clusters) else 0
    n_classes = int(cls.max()) + 1 if len(cls) else 1
    table = np.zeros((k, n_classes), dtype=np.int64)
    np.add.at(table, (clusters, cls), 1)
    sizes = table.sum(axis=1)
    share = table.max(axis=1) / np.maximum(sizes, 1)
    return table.argmax(axis=1), share
