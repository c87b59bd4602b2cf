"""The per-column drift statistics, vectorised, each defined as Evidently defines it.

Every function takes one column of reference and current values, already cleaned
(no NaN, no infinities): float64 arrays for numeric columns, integer category codes
(``0..k-1`` over both windows) for categorical ones. Each returns a :class:`Measured`
whose ``score`` is what Evidently calls the drift score (a p-value for the tests, a
distance otherwise). Distributions come from scipy; counting is NumPy, one pass each.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from weightbase.errors import MissingExtraError

try:
    from scipy import stats
    from scipy.spatial import distance
except ImportError as exc:  # pragma: no cover - scipy comes with the monitoring extra
    raise MissingExtraError(
        "drift statistics need scipy: pip install 'weightbase[monitoring]'"
    ) from exc

__all__ = [
    "DISTANCES",
    "METHODS",
    "Measured",
    "binned_categorical",
    "binned_numeric",
    "chi_square",
    "few_unique",
    "jensen_shannon",
    "ks",
    "psi",
    "wasserstein_norm",
    "z_test",
]

Floats = npt.NDArray[np.float64]
Codes = npt.NDArray[np.intp]

#: Each method's default threshold and the column kinds it applies to (Evidently's).
METHODS: dict[str, tuple[float, frozenset[str]]] = {
    "ks": (0.05, frozenset({"numeric"})),
    "wasserstein": (0.1, frozenset({"numeric"})),
    "chisquare": (0.05, frozenset({"categorical", "numeric"})),
    "z": (0.05, frozenset({"categorical", "numeric"})),
    "jensenshannon": (0.1, frozenset({"categorical", "numeric"})),
    "psi": (0.1, frozenset({"categorical", "numeric"})),
}
#: Methods whose score is a distance (drift when score ≥ threshold), not a p-value.
DISTANCES = frozenset({"wasserstein", "jensenshannon", "psi"})


@dataclass(frozen=True, slots=True)
class Measured:
    """One statistic on one column: ``score`` is compared with the threshold."""

    statistic: float
    p_value: float | None

    @property
    def score(self) -> float:
        """The p-value of a test, else the distance itself."""
        return self.statistic if self.p_value is None else self.p_value


def few_unique(values: npt.NDArray[np.generic], limit: int) -> npt.NDArray[np.generic] | None:
    """The sorted distinct values of ``values`` when there are at most ``limit``, else None.

    Needs at most ``limit + 1`` linear passes, never a sort of the whole column: a
    continuous column is told apart by its first few thousand values.
    """
    found: npt.NDArray[np.generic] = np.unique(values[:4096])
    rest = values
    while found.size <= limit:
        rest = rest[~np.isin(rest, found)]
        if rest.size == 0:
            return found
        found = np.union1d(found, np.unique(rest[:4096]))
    return None


def ks(reference: Floats, current: Floats) -> Measured:
    """Two-sample Kolmogorov-Smirnov, two-sided (scipy's ``ks_2samp``, its default mode)."""
    with warnings.catch_warnings():
        # scipy falls back from the exact p-value to the asymptotic one where the exact
        # computation does not converge, and says so; Evidently's figure is the same one.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        result = stats.ks_2samp(reference, current)
    return Measured(float(result.statistic), float(result.pvalue))


@lru_cache(maxsize=8)
def _quantile_grid(n: int, m: int) -> tuple[Codes, Codes, Floats]:
    """Where the quantile functions of ``n`` and ``m`` sorted samples step, on [0, 1).

    The breakpoints ``i/n`` and ``j/m`` are merged exactly in integers (``i*m`` and
    ``j*n`` out of ``n*m``): the position of ``i*m`` among them all is known in closed
    form, so no sort is needed. Returns, per piece, the index into each sorted sample
    and the piece's width.
    """
    grid = np.empty(n + m, dtype=np.int64)
    i = np.arange(n, dtype=np.int64)
    from_reference = i + (i * m + n - 1) // n  # i plus the j with j*n < i*m
    grid[from_reference] = i * m
    is_current = np.ones(n + m, dtype=bool)
    is_current[from_reference] = False
    grid[is_current] = np.arange(m, dtype=np.int64) * n
    widths = np.diff(grid, append=np.int64(n) * m).astype(np.float64) / (float(n) * m)
    return grid // m, grid // n, widths


def wasserstein_norm(reference: Floats, current: Floats) -> Measured:
    """First Wasserstein distance divided by the reference's standard deviation (≥ 0.001).

    Exact: W1 is the integral of |Q_ref(t) - Q_cur(t)| over the merged quantile grid,
    which needs each sample sorted once and nothing more (scipy sorts both, sorts their
    union again and binary-searches every point of it). A histogram would only bound it.
    """
    norm = max(float(np.std(reference)), 0.001)
    ref_index, cur_index, widths = _quantile_grid(reference.size, current.size)
    gaps = np.abs(np.sort(reference)[ref_index] - np.sort(current)[cur_index])
    return Measured(float(np.dot(gaps, widths)) / norm, None)


def _counts(reference: Codes, current: Codes, categories: int) -> tuple[Floats, Floats]:
    return (
        np.bincount(reference, minlength=categories).astype(np.float64),
        np.bincount(current, minlength=categories).astype(np.float64),
    )


def chi_square(reference: Codes, current: Codes, categories: int) -> Measured:
    """Pearson's χ² of current counts against reference shares scaled to the current size."""
    expected, observed = _counts(reference, current, categories)
    present = (observed > 0) | (expected > 0)
    observed, expected = observed[present], expected[present] * (current.size / reference.size)
    if observed.size < 2:
        # One category in both windows: nothing can have moved (scipy's p is NaN: no
        # degrees of freedom; Evidently never flags it, p = 1 says the same).
        return Measured(0.0, 1.0)
    if np.any(expected == 0):
        # A category the reference never saw: χ² is infinite, as scipy and Evidently give it.
        return Measured(float("inf"), 0.0)
    result = stats.chisquare(observed, expected)
    return Measured(float(result.statistic), float(result.pvalue))


def z_test(reference: Codes, current: Codes, first: int) -> Measured:
    """Two-proportion z-test (pooled) on "is not the smallest category" (``first``).

    A column holding one and the same value in both windows has p = 1 (Evidently's rule).
    """
    ref_other = reference != first
    cur_other = current != first
    ref_share, cur_share = float(ref_other.mean()), float(cur_other.mean())
    if ref_share == cur_share and ref_share in (0.0, 1.0):
        return Measured(0.0, 1.0)
    n1, n2 = reference.size, current.size
    pooled = (ref_share * n1 + cur_share * n2) / (n1 + n2)
    z = (ref_share - cur_share) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return Measured(float(z), float(2 * stats.norm.sf(abs(z))))


def binned_categorical(reference: Codes, current: Codes, categories: int) -> tuple[Floats, Floats]:
    """Each category's share of each window, over the categories either window has."""
    ref_counts, cur_counts = _counts(reference, current, categories)
    present = (ref_counts > 0) | (cur_counts > 0)
    return ref_counts[present] / reference.size, cur_counts[present] / current.size


def binned_numeric(reference: Floats, current: Floats) -> tuple[Floats, Floats]:
    """Shares per bin as Evidently's ``get_binned_data`` makes them for a numeric column.

    Over 20 distinct reference values: Sturges' equal-width bins over both windows
    together; otherwise one bin per distinct value of either window.
    """
    if few_unique(reference, 20) is None:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        return (
            np.histogram(reference, edges)[0] / reference.size,
            np.histogram(current, edges)[0] / current.size,
        )
    keys = np.union1d(np.unique(reference), np.unique(current))
    ref_codes = np.searchsorted(keys, reference)
    cur_codes = np.searchsorted(keys, current)
    return binned_categorical(ref_codes, cur_codes, keys.size)


def jensen_shannon(ref_shares: Floats, cur_shares: Floats) -> Measured:
    """Jensen-Shannon distance (natural log) between two binned distributions."""
    return Measured(float(distance.jensenshannon(ref_shares, cur_shares)), None)


def _fill_zeros(shares: Floats) -> Floats:
    """Evidently's zero filling: a millionth of the smallest share, or 0.0001 if larger."""
    smallest = float(shares[shares != 0].min())
    filler = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, filler, shares)


def psi(ref_shares: Floats, cur_shares: Floats) -> Measured:
    """Population stability index: sum of (ref - cur)·ln(ref/cur), zeros filled as Evidently."""
    ref, cur = _fill_zeros(ref_shares), _fill_zeros(cur_shares)
    return Measured(float(np.sum((ref - cur) * np.log(ref / cur))), None)


Kind = Literal["numeric", "categorical"]
