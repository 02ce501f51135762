"""blox_inspect.analysis.stats: array statistics and block-character histograms, against numpy."""

import ml_dtypes
import numpy as np
import pytest

from blox_inspect.analysis.stats import BLOCKS, array_stats, histogram_bars


def test_matches_numpy_on_finite_values():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    x[0, :5] = 0.0
    s = array_stats(x, bins=10)
    ref = x.astype(np.float64)
    assert s.size == x.size and s.dtype == "float32"
    assert s.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert s.std == pytest.approx(ref.std(), rel=1e-12)
    assert (s.min, s.max) == (ref.min(), ref.max())
    assert s.l2 == pytest.approx(np.linalg.norm(ref), rel=1e-12)
    assert (s.zeros, s.nans, s.infs) == (5, 0, 0)
    counts, edges = np.histogram(ref, bins=10)
    assert s.hist_counts == counts.tolist()
    np.testing.assert_allclose(s.hist_edges, edges)


def test_nans_and_infs_are_counted_and_excluded():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 3.0, 0.0])
    s = array_stats(x)
    assert (s.nans, s.infs, s.zeros) == (1, 2, 1)
    finite = np.array([1.0, 3.0, 0.0])
    assert s.mean == pytest.approx(finite.mean())
    assert s.std == pytest.approx(finite.std())
    assert (s.min, s.max) == (0.0, 3.0)
    assert s.l2 == pytest.approx(np.sqrt(10.0))
    assert sum(s.hist_counts) == 3


def test_no_finite_values_and_constant_arrays():
    s = array_stats(np.full(4, np.nan))
    assert s.mean is None and s.l2 is None and s.hist_counts == [] and s.nans == 4
    c = array_stats(np.full((3, 3), 2.0), bins=4)
    assert (c.mean, c.std, c.min, c.max) == (2.0, 0.0, 2.0, 2.0)
    assert sum(c.hist_counts) == 9 and c.hist_edges[0] < 2.0 < c.hist_edges[-1]


def test_low_precision_and_bool_dtypes():
    x = np.array([0.5, -1.5, 2.0], dtype=ml_dtypes.bfloat16)
    s = array_stats(x)
    assert s.dtype == "bfloat16"
    assert s.mean == pytest.approx(np.mean([0.5, -1.5, 2.0]))
    b = array_stats(np.array([True, False, True]))
    assert (b.zeros, b.mean) == (1, pytest.approx(2 / 3))


def test_histogram_bars_scale_to_the_tallest_bin():
    rows = histogram_bars([0, 4, 8], height=2)
    assert rows == [" " + BLOCKS[0] + BLOCKS[8], " " + BLOCKS[8] + BLOCKS[8]]
    # a bin with a single value next to a huge one still shows up
    assert histogram_bars([1, 10_000])[0] == BLOCKS[1] + BLOCKS[8]
    assert histogram_bars([], height=2) == ["", ""]


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.int8])
def test_big_arrays_are_summarised_in_blocks_with_numpys_numbers(monkeypatch, dtype):
    from blox_inspect.analysis import stats

    monkeypatch.setattr(stats, "BLOCK", 1000)  # 10,003 values: ten full blocks and a short one
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((10003,)) * 20).astype(dtype)
    if dtype is not np.int8:
        x[[3, 2500, 9999]] = np.nan
        x[[17, 5000]] = np.inf
        x[8000] = -np.inf
    x[[1, 2, 7000]] = 0
    s = array_stats(x.reshape(7, 1429, 1), bins=13)
    ref = x.astype(np.float64)
    finite = ref[np.isfinite(ref)]
    assert (s.size, s.dtype) == (x.size, np.dtype(dtype).name)
    assert (s.nans, s.infs) == (int(np.isnan(ref).sum()), int(np.isinf(ref).sum()))
    assert s.zeros == int((ref == 0).sum())
    assert s.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert s.std == pytest.approx(finite.std(), rel=1e-12)
    assert s.l2 == pytest.approx(np.linalg.norm(finite), rel=1e-12)
    assert (s.min, s.max) == (finite.min(), finite.max())
    counts, edges = np.histogram(finite, bins=13)
    assert s.hist_counts == counts.tolist()
    np.testing.assert_allclose(s.hist_edges, edges)


def test_big_constant_and_all_nan_arrays_in_blocks(monkeypatch):
    from blox_inspect.analysis import stats

    monkeypatch.setattr(stats, "BLOCK", 100)
    c = array_stats(np.full(1000, 2.0, np.float32), bins=4)
    assert (c.mean, c.std, c.min, c.max, c.zeros) == (2.0, 0.0, 2.0, 2.0, 0)
    assert c.hist_counts == np.histogram(np.full(1000, 2.0), bins=4, range=(1.5, 2.5))[0].tolist()
    n = array_stats(np.full(1000, np.nan))
    assert (n.nans, n.mean, n.l2, n.hist_counts) == (1000, None, None, [])
    b = array_stats(np.arange(1000) % 3 == 0)
    assert (b.zeros, b.mean) == (666, pytest.approx(334 / 1000))
