"""Diagnostics of a downscaled product file against the coarse product, streamed from disk.

:mod:`core.evaluation.diagnostics` holds the per-cell arithmetic (conservation % and heterogeneity CV,
Alemohammad et al. 2018); this module feeds it from rasters: the fine product is read in
full-width row blocks (:meth:`core.raster.grid.Grid.windows`), each block's pixels are mapped to the
coarse cell holding their centre (:func:`core.raster.grid.cell_index`) and accumulated, one
accumulator per date, so memory follows the block and the number of coarse cells, never the
fine grid.

The result lives on the coarse grid expressed in the product's CRS, cut to the coarse cells
the product overlaps. A coarse product in another CRS is warped onto such a grid (same
number of cells over its extent, nearest neighbour), as :class:`core.inputs.scene.Scene` does.

Example
-------
>>> fine = [BandRef("downscaled.tif", 1, "downscaled", date(2018, 1, 1))]   # doctest: +SKIP
>>> coarse = [BandRef("esa_20180101.tif", 1, "ESA CCI", date(2018, 1, 1))]  # doctest: +SKIP
>>> d = diagnose_product(fine, coarse)                                      # doctest: +SKIP
>>> d.summary()["conservation_percent"]["mean_abs"]                         # doctest: +SKIP
1.7
"""
from __future__ import annotations

import datetime as _dt
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
from osgeo import gdal

from ..raster.align import AlignedBand, BandRef, open_band, read_full, scale_offset
from .diagnostics import DiagnosticsAccumulator, summary
from ..errors import Canceled, InputError
from ..raster.grid import Grid, Window, cell_index, same_crs, snap_grid, transform_bounds
from ..io.output import RasterWriter

gdal.UseExceptions()

Progress = Callable[[float, str], None]
IsCanceled = Callable[[], bool]


@dataclass
class ProductDiagnostics:
    """Conservation and heterogeneity of one product on the coarse grid, one layer per date.

    Attributes
    ----------
    grid : Grid
        The coarse cells the product overlaps, in the product's CRS.
    dates : list of datetime.date
        Dates diagnosed (in the product and the coarse product), ascending.
    conservation : numpy.ndarray, float32, shape (n_dates, grid.height, grid.width)
        ``(mean of the fine pixels − coarse) / coarse × 100``; NaN where undefined.
    heterogeneity : numpy.ndarray, float32, same shape
        Coefficient of variation (std / mean) of the fine pixels of each cell.
    coverage : numpy.ndarray, float32, same shape
        Fraction of the cell's fine pixels that hold a value.
    skipped : list of datetime.date
        Product dates without a coarse date (not diagnosed).
    """

    grid: Grid
    dates: list[_dt.date]
    conservation: np.ndarray
    heterogeneity: np.ndarray
    coverage: np.ndarray
    skipped: list[_dt.date] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean, median and maximum of |conservation| and |CV| over cells and dates
        (:func:`core.evaluation.diagnostics.summary`; the ``diagnostics`` entry of the site report)."""
        return summary(self.conservation, self.heterogeneity)


def coarse_grid_for(fine: Grid, coarse_src: Grid, name: str = "") -> tuple[Grid, Optional[tuple[int, int]]]:
    """The coarse cells overlapping ``fine``, in ``fine``'s CRS.

    Returns the grid and, when the coarse product is already in that CRS, the ``(row, col)``
    of its first cell in the source raster (``None`` when it has to be warped).

    Raises
    ------
    InputError
        The two do not overlap.
    """
    if same_crs(coarse_src.crs_wkt, fine.crs_wkt):
        full, native = coarse_src, True
    else:
        b = transform_bounds(coarse_src.bounds, coarse_src.crs_wkt, fine.crs_wkt)
        full = snap_grid(b, fine.crs_wkt, (b[2] - b[0]) / coarse_src.width, (b[3] - b[1]) / coarse_src.height)
        native = False
    fx0, fy0, fx1, fy1 = fine.bounds
    c0 = max(0, int(math.floor((fx0 - full.x0) / full.dx + 1e-9)))
    c1 = min(full.width, int(math.ceil((fx1 - full.x0) / full.dx - 1e-9)))
    r0 = max(0, int(math.floor((full.y0 - fy1) / full.dy + 1e-9)))
    r1 = min(full.height, int(math.ceil((full.y0 - fy0) / full.dy - 1e-9)))
    if c1 <= c0 or r1 <= r0:
        raise InputError(problem="it does not overlap the downscaled product.", layer=name or None,
                         fix="compare a product with the coarse product it was downscaled from.")
    grid = Grid(fine.crs_wkt, full.x0 + c0 * full.dx, full.y0 - r0 * full.dy, full.dx, full.dy, c1 - c0, r1 - r0)
    return grid, ((r0, c0) if native else None)


def diagnose_product(
    fine: Sequence[BandRef],
    coarse: Sequence[BandRef],
    min_count: int = 1,
    min_coverage: float = 0.0,
    block_pixels: int = 1 << 20,
    progress: Optional[Progress] = None,
    is_canceled: Optional[IsCanceled] = None,
) -> ProductDiagnostics:
    """Conservation and heterogeneity of a downscaled product on the coarse grid, per date.

    Parameters
    ----------
    fine : sequence of BandRef
        The product's dated bands: one multi-band file or several single-date files, all on
        one grid. Every ref needs a ``date``.
    coarse : sequence of BandRef
        The coarse product's dated bands, all on one grid (any CRS).
    min_count, min_coverage :
        Cells with fewer valid fine pixels, or a smaller valid fraction, get NaN
        (:meth:`core.evaluation.diagnostics.DiagnosticsAccumulator.result`).
    block_pixels : int
        Fine pixels read per block.
    progress, is_canceled :
        ``progress(fraction, message)``; ``is_canceled()`` true stops with
        :class:`core.errors.Canceled`.

    Raises
    ------
    InputError
        A band without a date, grids that differ within a product, no overlap, or no date
        in common.
    """
    fine, coarse = list(fine), list(coarse)
    if not fine:
        raise InputError(problem="no band of the downscaled product was given.", fix="give the product's raster(s).")
    if not coarse:
        raise InputError(problem="no band of the coarse product was given.", fix="give the coarse product's raster(s).")
    for r in fine + coarse:
        if r.date is None:
            raise InputError(problem=f"band {r.band} has no date.", layer=r.label,
                             fix="set band descriptions to dates (YYYY-MM-DD) or put the date in the file name.")
    fine_grid = _common_grid(fine)
    coarse_src = _common_grid(coarse)
    grid, offset = coarse_grid_for(fine_grid, coarse_src, coarse[0].label)

    coarse_by_date = {r.date: r for r in coarse}
    fine_by_date: "OrderedDict[_dt.date, BandRef]" = OrderedDict()
    for r in sorted(fine, key=lambda r: r.date):  # type: ignore[arg-type, return-value]
        if r.date in fine_by_date:
            raise InputError(problem=f"the date {r.date} appears more than once.", layer=r.label,
                             fix="give each date of the product once.")
        fine_by_date[r.date] = r  # type: ignore[index]
    dates = [d for d in fine_by_date if d in coarse_by_date]
    skipped = [d for d in fine_by_date if d not in coarse_by_date]
    if not dates:
        raise InputError(problem=f"none of its {len(fine_by_date)} dates "
                         f"({min(fine_by_date)} … {max(fine_by_date)}) is a date of the coarse product.",
                         layer=fine[0].label, fix="give the coarse product of the same period.")

    accs = {d: DiagnosticsAccumulator(grid.size) for d in dates}
    by_path: "OrderedDict[str, list[BandRef]]" = OrderedDict()
    for d in dates:
        by_path.setdefault(fine_by_date[d].path, []).append(fine_by_date[d])
    windows = list(fine_grid.windows(block_pixels))
    total = len(windows) * len(by_path)
    done = 0
    for path, refs in by_path.items():
        ds, _ = open_band(refs[0])
        bands = [(r.date, ds.GetRasterBand(r.band)) for r in refs]
        meta = [(b.GetNoDataValue(),) + scale_offset(b) for _, b in bands]
        for w in windows:
            if is_canceled is not None and is_canceled():
                raise Canceled()
            idx = cell_index(fine_grid, grid, w)
            for (d, band), (nodata, s, o) in zip(bands, meta):
                accs[d].add(_read_block(band, w.row0, fine_grid.width, w.nrows, nodata, s, o), idx)
            done += 1
            if progress is not None:
                progress(done / total, "aggregating the downscaled product to the coarse grid")
        ds = None

    shape = (len(dates), grid.height, grid.width)
    cons = np.full(shape, np.nan, dtype=np.float32)
    cv = np.full(shape, np.nan, dtype=np.float32)
    cover = np.full(shape, np.nan, dtype=np.float32)
    for t, d in enumerate(dates):
        c = _coarse_values(coarse_by_date[d], grid, offset)
        res = accs[d].result(c, min_count, min_coverage)
        cons[t] = res.conservation_percent.reshape(grid.height, grid.width)
        cv[t] = res.heterogeneity_cv.reshape(grid.height, grid.width)
        cover[t] = res.coverage.reshape(grid.height, grid.width)
    return ProductDiagnostics(grid, dates, cons, cv, cover, skipped)


def write_diagnostic_rasters(diag: ProductDiagnostics, conservation_path: Optional[str] = None,
                             heterogeneity_path: Optional[str] = None) -> list[str]:
    """Write the conservation (%) and heterogeneity (CV) rasters, one band per date
    (description = ISO date), each atomically; returns the paths written."""
    names = [d.isoformat() for d in diag.dates]
    out = []
    for path, cube, what in ((conservation_path, diag.conservation, "conservation_percent"),
                             (heterogeneity_path, diag.heterogeneity, "heterogeneity_cv")):
        if not path:
            continue
        whole = Window(0, diag.grid.height)
        with RasterWriter(path, diag.grid, names, metadata={"quantity": what}) as w:
            for t in range(len(names)):
                w.write(t, whole, cube[t])
            out.append(w.commit(overviews=False))
    return out


# --------------------------------------------------------------------------- helpers


def _common_grid(refs: Sequence[BandRef]) -> Grid:
    grids: dict[str, Grid] = {}
    for r in refs:
        if r.path not in grids:
            ds, _ = open_band(r)
            grids[r.path] = Grid.from_dataset(ds, r.label)
    first_path = refs[0].path
    g0 = grids[first_path]
    for r in refs:
        g = grids[r.path]
        if (g.width, g.height) != (g0.width, g0.height) or not same_crs(g.crs_wkt, g0.crs_wkt) \
                or not np.allclose(g.transform, g0.transform, atol=1e-9 * max(1.0, abs(g0.x0))):
            raise InputError(problem=f"its grid differs from the grid of '{refs[0].label}'.", layer=r.label,
                             fix="give the dates of one product on one grid.")
    return g0


def _read_block(band: gdal.Band, row0: int, width: int, nrows: int, nodata: Optional[float],
                scale: float, offset: float) -> np.ndarray:
    raw = band.ReadAsArray(0, row0, width, nrows)
    a = raw.astype(np.float64)
    if nodata is not None:
        a[np.isnan(a) if math.isnan(nodata) else (raw == np.asarray(nodata).astype(raw.dtype))] = np.nan
    if scale != 1.0 or offset != 0.0:
        a = a * scale + offset
    return a


def _coarse_values(ref: BandRef, grid: Grid, offset: Optional[tuple[int, int]]) -> np.ndarray:
    if offset is not None:
        a, _ = read_full(ref)
        r0, c0 = offset
        a = a[r0:r0 + grid.height, c0:c0 + grid.width]
    else:
        a = AlignedBand(ref, grid, resampling="near").read()
    return np.ascontiguousarray(a, dtype=np.float64).ravel()
