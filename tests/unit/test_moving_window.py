"""Area-weighted moving windows against an explicit cell-by-cell overlap computation."""
import numpy as np
import pytest

from core.raster.grid import Grid, Window
from core.raster.moving_window import WindowAverager


def _reference(values, src, dst, wx, wy):
    """Loop over every target pixel and every source cell: overlap area as weight, NaN cells skipped."""
    mean = np.full((dst.height, dst.width), np.nan)
    std = np.full_like(mean, np.nan)
    for i in range(dst.height):
        cy = dst.y0 - (i + 0.5) * dst.dy
        for j in range(dst.width):
            cx = dst.x0 + (j + 0.5) * dst.dx
            w, v = [], []
            for r in range(src.height):
                top, bot = src.y0 - r * src.dy, src.y0 - (r + 1) * src.dy
                oy = max(0.0, min(cy + wy / 2, top) - max(cy - wy / 2, bot))
                for c in range(src.width):
                    left = src.x0 + c * src.dx
                    ox = max(0.0, min(cx + wx / 2, left + src.dx) - max(cx - wx / 2, left))
                    if ox * oy > 0 and np.isfinite(values[r, c]):
                        w.append(ox * oy)
                        v.append(values[r, c])
            if w:
                w, v = np.array(w), np.array(v)
                mean[i, j] = np.sum(w * v) / w.sum()
                std[i, j] = np.sqrt(np.sum(w * (v - mean[i, j]) ** 2) / w.sum())
    return mean, std


@pytest.mark.parametrize("fine_dx, width", [(0.25, 1.25), (0.3, 1.25), (1.0, 2.5)])
def test_window_mean_and_std_equal_the_explicit_overlap_weights(fine_dx, width):
    rng = np.random.default_rng(3)
    src = Grid("", 10.0, 50.0, 1.0, 0.8, 6, 5)
    dst = Grid("", 10.1, 49.9, fine_dx, fine_dx * 0.8, int(5.8 / fine_dx), int(3.9 / (fine_dx * 0.8)))
    values = rng.uniform(0.1, 0.4, (src.height, src.width))
    values[1, 2] = values[4, 0] = np.nan
    avg = WindowAverager(src, dst, width * src.dx, width * src.dy)
    mean, std = avg.mean(values, Window(0, dst.height), with_std=True)
    ref_mean, ref_std = _reference(values, src, dst, width * src.dx, width * src.dy)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, ref_std, rtol=1e-4, atol=1e-5)


def test_blocks_with_only_their_source_rows_give_the_whole_grid_result():
    rng = np.random.default_rng(4)
    src = Grid("", 0.0, 20.0, 0.5, 0.5, 30, 40)
    dst = Grid("", 0.0, 20.0, 0.5, 0.5, 30, 40)  # same grid: sigma of the pixels in the window
    values = rng.normal(size=(40, 30))
    values[rng.random(values.shape) < 0.1] = np.nan
    avg = WindowAverager(src, dst, 1.25, 1.25)
    whole, whole_sd = avg.mean(values, Window(0, 40), with_std=True)
    for w in (Window(0, 7), Window(7, 13), Window(20, 20)):
        r0, r1 = avg.source_rows(w)
        assert r0 <= w.row0 and r1 >= w.row0 + w.nrows
        part, part_sd = avg.mean(values[r0:r1], w, with_std=True, row0=r0)
        np.testing.assert_allclose(part, whole[w.row0:w.row0 + w.nrows], rtol=1e-6)
        np.testing.assert_allclose(part_sd, whole_sd[w.row0:w.row0 + w.nrows], rtol=1e-5, atol=1e-7)


def test_a_window_over_no_data_is_nan_and_a_constant_field_stays_constant():
    src = Grid("", 0.0, 3.0, 1.0, 1.0, 3, 3)
    dst = Grid("", 0.0, 3.0, 0.5, 0.5, 6, 6)
    values = np.full((3, 3), 0.3)
    values[:, 2] = np.nan
    mean, _ = WindowAverager(src, dst, 0.5, 0.5).mean(values, Window(0, 6))
    assert np.all(np.isnan(mean[:, 4:]))
    np.testing.assert_allclose(mean[:, :4], 0.3, rtol=1e-6)
