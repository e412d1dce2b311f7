"""Sample weights that balance the classes of a static site attribute (Poehls et al.).

Each member of a Poehls ensemble is trained with the "balanced" weights of one static
attribute (soil texture, land cover, climate class, ...):

    w_i = n_samples / (n_classes * n_class(i))

so that every class carries the same total weight (``n_samples / n_classes``) and the mean
weight is 1. Continuous attributes (field capacity, latitude, ...) are first turned into
classes by quantile bins.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

#: Class label given to samples whose attribute is missing (NaN, None or empty text).
MISSING_CLASS = "missing"


def balanced_weights(classes: Sequence | np.ndarray) -> np.ndarray:
    """Balanced sample weights ``n_samples / (n_classes * n_class(i))``.

    Parameters
    ----------
    classes : array-like, shape (n,)
        Class label of each sample (any hashable values: codes, strings, bin indices).
        Missing values (NaN, None, "") form one class of their own, :data:`MISSING_CLASS`.

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        Weight of each sample; the weights sum to ``n`` and each class sums to ``n / n_classes``.

    Examples
    --------
    Three samples of class "a" and one of class "b": n = 4, two classes,
    w_a = 4 / (2 * 3) = 2/3, w_b = 4 / (2 * 1) = 2.

    >>> balanced_weights(["a", "a", "a", "b"]).round(4).tolist()
    [0.6667, 0.6667, 0.6667, 2.0]
    """
    labels = _labels(classes)
    n = labels.size
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    uniq, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return n / (uniq.size * counts[inverse].astype(np.float64))


def quantile_edges(values: Sequence[float] | np.ndarray, n_bins: int,
                   groups: Optional[Sequence | np.ndarray] = None) -> np.ndarray:
    """Inner edges of ``n_bins`` quantile bins of a continuous attribute.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        Attribute value of each sample; NaN values are ignored.
    n_bins : int
        Number of bins wanted (>= 1).
    groups : array-like, shape (n,), optional
        Site of each sample. When given, the quantiles are taken over one value per site
        (its first finite value), so that a site with many samples does not pull the edges:
        the bins then hold about the same number of *sites*. For a static attribute this is
        what "terciles of field capacity" means.

    Returns
    -------
    numpy.ndarray of float64
        The ``n_bins − 1`` inner edges at the quantiles ``k / n_bins``, with duplicates
        removed (a attribute with few distinct values yields fewer bins).

    Examples
    --------
    >>> quantile_edges([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3).tolist()
    [2.666666666666667, 4.333333333333334]
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, not {n_bins}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if groups is not None:
        g = np.asarray(groups).ravel()
        if g.shape != v.shape:
            raise ValueError(f"groups has {g.size} items but values has {v.size}")
        ok = np.isfinite(v)
        _, first = np.unique(g[ok], return_index=True)
        v = v[ok][first]
    v = v[np.isfinite(v)]
    if v.size == 0 or n_bins == 1:
        return np.zeros(0, dtype=np.float64)
    edges = np.quantile(v, np.arange(1, n_bins) / n_bins)
    return np.unique(edges)


def quantile_classes(values: Sequence[float] | np.ndarray, n_bins: int,
                     groups: Optional[Sequence | np.ndarray] = None,
                     edges: Optional[np.ndarray] = None) -> np.ndarray:
    """Bin a continuous attribute into quantile classes ``0 … n_bins − 1``.

    A value equal to an edge goes to the upper bin (``numpy.digitize`` with ``right=False``).
    NaN values get class −1, which :func:`balanced_weights` treats as one more class.

    Parameters
    ----------
    values : array-like of float, shape (n,)
    n_bins : int
        Number of quantile bins (ignored when ``edges`` is given).
    groups : array-like, optional
        Site of each sample; see :func:`quantile_edges`.
    edges : numpy.ndarray, optional
        Inner edges to use instead of computing them (e.g. the training set's edges
        applied to new samples).

    Returns
    -------
    numpy.ndarray of int64, shape (n,)

    Examples
    --------
    >>> quantile_classes([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, float("nan")], 3).tolist()
    [0, 0, 1, 1, 2, 2, -1]
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if edges is None:
        edges = quantile_edges(v, n_bins, groups)
    out = np.digitize(v, edges, right=False).astype(np.int64)
    out[~np.isfinite(v)] = -1
    return out


def _labels(classes: Sequence | np.ndarray) -> np.ndarray:
    """Class labels as strings, missing values mapped to :data:`MISSING_CLASS`."""
    arr = np.asarray(classes, dtype=object).ravel()
    out = np.empty(arr.size, dtype=object)
    for i, c in enumerate(arr):
        if c is None or (isinstance(c, str) and not c.strip()):
            out[i] = MISSING_CLASS
        elif isinstance(c, (float, np.floating)) and not np.isfinite(c):
            out[i] = MISSING_CLASS
        elif isinstance(c, (float, np.floating)) and float(c).is_integer():
            out[i] = str(int(c))  # 52.0 and 52 are the same NLCD class
        else:
            out[i] = str(c)
    return out.astype(str)
