"""North-up raster grids: the target (fine) grid, the coarse grid and their relation."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterator, Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from ..errors import InputError

gdal.UseExceptions()

Bounds = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax


@dataclass(frozen=True)
class Window:
    """A strip of full-width rows ``[row0, row0 + nrows)`` of a grid."""

    row0: int
    nrows: int


@dataclass(frozen=True)
class Grid:
    """A north-up grid: top-left corner ``(x0, y0)``, pixel size ``dx`` × ``dy`` (both > 0)."""

    crs_wkt: str
    x0: float
    y0: float
    dx: float
    dy: float
    width: int
    height: int

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        return (self.x0, self.dx, 0.0, self.y0, 0.0, -self.dy)

    @property
    def bounds(self) -> Bounds:
        return (self.x0, self.y0 - self.height * self.dy, self.x0 + self.width * self.dx, self.y0)

    @property
    def size(self) -> int:
        return self.width * self.height

    @property
    def srs(self) -> osr.SpatialReference:
        return srs_from_wkt(self.crs_wkt)

    def windows(self, block_pixels: int = 1 << 20) -> Iterator[Window]:
        """Full-width row strips of about ``block_pixels`` pixels each (at least one row)."""
        rows = max(1, block_pixels // max(self.width, 1))
        if rows >= 256:
            rows -= rows % 256  # whole 256-row tiles of the output GeoTIFF per block
        for r in range(0, self.height, rows):
            yield Window(r, min(rows, self.height - r))

    def centers(self, window: Optional[Window] = None) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre x of every column and y of each row of ``window``."""
        w = window or Window(0, self.height)
        xs = self.x0 + (np.arange(self.width) + 0.5) * self.dx
        ys = self.y0 - (np.arange(w.row0, w.row0 + w.nrows) + 0.5) * self.dy
        return xs, ys

    def subgrid(self, window: Window) -> "Grid":
        return replace(self, y0=self.y0 - window.row0 * self.dy, height=window.nrows)

    def is_geographic(self) -> bool:
        return bool(self.srs.IsGeographic())

    def pixel_size_m(self) -> tuple[float, float]:
        """Pixel size in metres (at the grid's central latitude for a geographic CRS)."""
        if not self.is_geographic():
            f = self.srs.GetLinearUnits() or 1.0
            return self.dx * f, self.dy * f
        xmin, ymin, xmax, ymax = self.bounds
        lat = math.radians((ymin + ymax) / 2)
        return self.dx * 111320.0 * math.cos(lat), self.dy * 110574.0

    @classmethod
    def from_dataset(cls, ds: gdal.Dataset, name: str = "") -> "Grid":
        gt = ds.GetGeoTransform(can_return_null=True)
        wkt = ds.GetProjection()
        if not wkt:
            raise InputError(problem="it has no coordinate reference system.", layer=name,
                             fix="assign its CRS (Layer Properties ▸ Source, or gdal_edit.py -a_srs EPSG:xxxx).")
        if gt is None or gt[2] != 0 or gt[4] != 0 or gt[5] >= 0:
            raise InputError(problem="it is not a north-up georeferenced raster.", layer=name,
                             fix="warp it to a north-up grid first (Raster ▸ Projections ▸ Warp).")
        return cls(wkt, gt[0], gt[3], gt[1], -gt[5], ds.RasterXSize, ds.RasterYSize)


def srs_from_wkt(wkt: str) -> osr.SpatialReference:
    s = osr.SpatialReference()
    s.SetFromUserInput(wkt)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def crs_to_wkt(crs: str) -> str:
    """Accept ``EPSG:4326``, a PROJ string or WKT; return WKT."""
    return srs_from_wkt(crs).ExportToWkt()


def same_crs(a: str, b: str) -> bool:
    return bool(srs_from_wkt(a).IsSame(srs_from_wkt(b)))


def transform_bounds(bounds: Bounds, src_wkt: str, dst_wkt: str) -> Bounds:
    """Bounds of ``bounds`` (in ``src_wkt``) expressed in ``dst_wkt`` (densified edges)."""
    if same_crs(src_wkt, dst_wkt):
        return bounds
    ct = osr.CoordinateTransformation(srs_from_wkt(src_wkt), srs_from_wkt(dst_wkt))
    return tuple(ct.TransformBounds(*bounds, 21))  # type: ignore[return-value]


def intersect(bounds: Sequence[Bounds]) -> Optional[Bounds]:
    xmin = max(b[0] for b in bounds)
    ymin = max(b[1] for b in bounds)
    xmax = min(b[2] for b in bounds)
    ymax = min(b[3] for b in bounds)
    if xmax <= xmin or ymax <= ymin:
        return None
    return (xmin, ymin, xmax, ymax)


def snap_grid(bounds: Bounds, crs_wkt: str, dx: float, dy: float,
              anchor: Optional[tuple[float, float]] = None) -> Grid:
    """Largest grid of ``dx``×``dy`` pixels inside ``bounds`` whose lines pass through ``anchor``.

    Anchoring the fine grid on the coarse grid's corner makes fine pixels nest in coarse
    cells whenever the coarse size is a multiple of the fine size.
    """
    ax, ay = anchor if anchor is not None else (bounds[0], bounds[3])
    eps = 1e-6
    c0 = math.ceil((bounds[0] - ax) / dx - eps)
    c1 = math.floor((bounds[2] - ax) / dx + eps)
    r0 = math.ceil((ay - bounds[3]) / dy - eps)
    r1 = math.floor((ay - bounds[1]) / dy + eps)
    if c1 <= c0 or r1 <= r0:
        raise InputError(problem=f"the common extent ({bounds}) holds no whole pixel of {dx:g}×{dy:g}.", layer=None,
                         fix="choose a finer target resolution or layers that overlap more.")
    return Grid(crs_wkt, ax + c0 * dx, ay - r0 * dy, dx, dy, c1 - c0, r1 - r0)


def cell_index(fine: Grid, coarse: Grid, window: Optional[Window] = None) -> np.ndarray:
    """Flat index of the coarse cell holding each fine pixel centre of ``window`` (−1 outside).

    Both grids must share a CRS.
    """
    xs, ys = fine.centers(window)
    col = np.floor((xs - coarse.x0) / coarse.dx).astype(np.int64)
    row = np.floor((coarse.y0 - ys) / coarse.dy).astype(np.int64)
    okc = (col >= 0) & (col < coarse.width)
    okr = (row >= 0) & (row < coarse.height)
    idx = row[:, None] * coarse.width + col[None, :]
    idx[~(okr[:, None] & okc[None, :])] = -1
    return idx


def bilinear_from_cells(values: np.ndarray, fine: Grid, coarse: Grid, window: Window) -> np.ndarray:
    """Bilinear interpolation of coarse cell-centre ``values`` (2-D) at fine pixel centres.

    NaN cells are left out and the remaining weights renormalised; outside the outermost
    cell centres the edge value is held. Returns float32 ``(window.nrows, fine.width)``.
    """
    v = np.asarray(values, dtype=np.float64).reshape(coarse.height, coarse.width)
    xs, ys = fine.centers(window)
    fx = np.clip((xs - coarse.x0) / coarse.dx - 0.5, 0, coarse.width - 1)
    fy = np.clip((coarse.y0 - ys) / coarse.dy - 0.5, 0, coarse.height - 1)
    x0 = np.minimum(np.floor(fx).astype(int), max(coarse.width - 2, 0))
    y0 = np.minimum(np.floor(fy).astype(int), max(coarse.height - 2, 0))
    x1 = np.minimum(x0 + 1, coarse.width - 1)
    y1 = np.minimum(y0 + 1, coarse.height - 1)
    tx = (fx - x0)[None, :]
    ty = (fy - y0)[:, None]
    acc = np.zeros((len(ys), len(xs)))
    wsum = np.zeros_like(acc)
    # the cells this window reads all finite (the common case): the same sums without the NaN masks
    finite = bool(len(ys) and len(xs)) and bool(np.isfinite(v[y0.min():y1.max() + 1, x0.min():x1.max() + 1]).all())
    for yy, wy in ((y0, 1 - ty), (y1, ty)):
        for xx, wx in ((x0, 1 - tx), (x1, tx)):
            q = v[yy[:, None], xx[None, :]]
            w = wy * wx
            if finite:
                acc += q * w
                wsum += w
                continue
            ok = np.isfinite(q)
            acc += np.where(ok, q, 0.0) * w
            wsum += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(wsum > 1e-12, acc / wsum, np.nan)
    return out.astype(np.float32)


def cell_pixel_blocks(fine: Grid, coarse: Grid) -> np.ndarray:
    """The fine pixels of each coarse cell as a rectangle of pixel indices ``r0, r1, c0, c1`` (end
    exclusive; the same assignment by pixel centre as :func:`cell_index`), shape ``(coarse.size, 4)``.

    Works for any integer or non-integer ratio; a cell with no fine pixel has ``r0 == r1`` or
    ``c0 == c1``. Both grids must share a CRS.
    """
    xs, ys = fine.centers()
    col = np.floor((xs - coarse.x0) / coarse.dx).astype(np.int64)
    row = np.floor((coarse.y0 - ys) / coarse.dy).astype(np.int64)
    cells_r = np.arange(coarse.height)
    cells_c = np.arange(coarse.width)
    r0, r1 = np.searchsorted(row, cells_r, "left"), np.searchsorted(row, cells_r, "right")
    c0, c1 = np.searchsorted(col, cells_c, "left"), np.searchsorted(col, cells_c, "right")
    out = np.empty((coarse.height, coarse.width, 4), dtype=np.int64)
    out[..., 0], out[..., 1] = r0[:, None], r1[:, None]
    out[..., 2], out[..., 3] = c0[None, :], c1[None, :]
    return out.reshape(-1, 4)


def cubic_from_cells(values: np.ndarray, coarse: Grid, target: Grid, window: Optional[Window] = None) -> np.ndarray:
    """Cubic (spline, order 3) interpolation of coarse cell-centre ``values`` at the pixel centres of
    ``window`` of ``target`` (any grid of the same CRS), float32 ``(window.nrows, target.width)``.

    Empty cells are filled from the nearest cell with a value before the spline is fitted (so gaps do
    not spread NaN); pixels whose own coarse cell is empty, or that fall outside the coarse grid, are
    NaN. Beyond the outermost cell centres the edge values are held.
    """
    from scipy import ndimage

    w = window or Window(0, target.height)
    v = np.asarray(values, dtype=np.float64).reshape(coarse.height, coarse.width)
    valid = np.isfinite(v)
    if not valid.any():
        return np.full((w.nrows, target.width), np.nan, np.float32)
    if not valid.all():
        _, (ri, ci) = ndimage.distance_transform_edt(~valid, return_indices=True)
        v = v[ri, ci]
    xs, ys = target.centers(w)
    fx = np.clip((xs - coarse.x0) / coarse.dx - 0.5, 0, coarse.width - 1)
    fy = np.clip((coarse.y0 - ys) / coarse.dy - 0.5, 0, coarse.height - 1)
    FY, FX = np.meshgrid(fy, fx, indexing="ij")
    out = ndimage.map_coordinates(v, [FY.ravel(), FX.ravel()], order=3, mode="nearest").reshape(FY.shape)
    idx = cell_index(target, coarse, w)
    own = np.where(idx >= 0, np.asarray(values, dtype=np.float64).ravel()[np.maximum(idx, 0)], np.nan)
    return np.where(np.isfinite(own), out, np.nan).astype(np.float32)
