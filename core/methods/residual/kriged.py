"""What point kriging and area-to-point kriging of the residual share: the lattice geometry in
metres, the pooled variogram, the per-date sill, and streaming prediction in row blocks."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ...errors import Canceled, InputError
from ...learn.geostat.kriging import OrdinaryKriging
from ...learn.geostat.variogram import VariogramModel, lattice_variogram
from ...raster.grid import Window, cell_pixel_blocks
from .base import FittedResidual, ResidualGeometry, ResidualModel

#: Largest covariance table (entries; two of them, float64: 256 MB) a run may build; beyond it the
#: neighbourhood is too wide for the pixel size (with 25 neighbours: more than ~260 fine pixels per
#: coarse cell side).
_MAX_TABLE = 16_000_000
#: Pixel × neighbour entries kriged in one batch (small batches stay in cache; bounds memory).
_BATCH_ELEMENTS = 300_000
#: Kriging systems kept for reuse by later dates with the same cells present (per row block).
_CACHED_SYSTEMS = 8


class CellLattice:
    """The coarse cells of a scene seen from the fine lattice: pixel rectangles, centres (pixel
    units and metres), pixel and cell sizes in metres."""

    def __init__(self, geometry: ResidualGeometry) -> None:
        fine, coarse = geometry.fine, geometry.coarse
        self.fine, self.coarse = fine, coarse
        self.blocks = cell_pixel_blocks(fine, coarse)
        self.has_pixels = (self.blocks[:, 1] > self.blocks[:, 0]) & (self.blocks[:, 3] > self.blocks[:, 2])
        self.px, self.py = fine.pixel_size_m()
        rows = (fine.y0 - (coarse.y0 - (np.arange(coarse.height) + 0.5) * coarse.dy)) / fine.dy
        cols = (coarse.x0 + (np.arange(coarse.width) + 0.5) * coarse.dx - fine.x0) / fine.dx
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        self.centres = np.column_stack([rr.ravel(), cc.ravel()])            # pixel units (row, col)
        self.xy = np.column_stack([cc.ravel() * self.px, rr.ravel() * self.py])  # metres
        self.ratio_x, self.ratio_y = coarse.dx / fine.dx, coarse.dy / fine.dy
        self.cell_x, self.cell_y = self.ratio_x * self.px, self.ratio_y * self.py

    def field(self, residual: np.ndarray) -> np.ndarray:
        r = np.where(self.has_pixels, np.asarray(residual, dtype=np.float64), np.nan)
        return r.reshape(self.coarse.height, self.coarse.width)


class KrigedResidual(ResidualModel):
    """Ordinary kriging of the coarse residual with ``neighbours`` data per cell; subclasses say
    what the data are (points at cell centres, or blocks) and how the variogram is obtained."""

    def __init__(self, neighbours: int = 25, variogram_model: str = "exponential", max_lag_cells: int = 8) -> None:
        self.neighbours = int(neighbours)
        self.variogram_model = variogram_model
        self.max_lag_cells = int(max_lag_cells)

    # -- what subclasses provide -----------------------------------------------------------
    def point_model(self, lattice: CellLattice, areal) -> tuple[VariogramModel, dict[str, Any]]:
        raise NotImplementedError

    def covariance(self, lattice: CellLattice, unit: VariogramModel, max_rows: int, max_cols: int):
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def fit(self, residuals: Sequence[np.ndarray], geometry: ResidualGeometry,
            canceled: Callable[[], bool]) -> "FittedKriging":
        lat = CellLattice(geometry)
        fields = [lat.field(r) for r in residuals]
        lag = int(np.clip(max(lat.coarse.height, lat.coarse.width) // 2, 1, self.max_lag_cells))
        areal = lattice_variogram(fields, lat.cell_x, lat.cell_y, lag)
        if len(areal.lags) == 0 or not np.any(areal.gamma > 0):
            raise InputError(problem="the coarse residual has too few neighbouring cells (or no variation) to fit "
                             "a variogram for kriging.", layer=None,
                             fix="use a larger area or more dates, or the bilinear residual.")
        point, info = self.point_model(lat, areal)
        if canceled():
            raise Canceled()
        unit = point.scaled(1.0)
        # one variogram shape for every date; each date's sill scales the areal model to its own
        # experimental variogram (least squares over the lags)
        areal_unit = info.pop("_areal_fit")
        sills = []
        for f in fields:
            v = lattice_variogram([f], lat.cell_x, lat.cell_y, lag)
            g = areal_unit.gamma(v.lags) / max(areal_unit.sill, 1e-30) if len(v.lags) else np.zeros(0)
            den = float(np.sum(v.counts * g * g))
            scale = float(np.sum(v.counts * g * v.gamma)) / den if den > 0 else float("nan")
            sills.append(point.sill * scale / max(areal_unit.sill, 1e-30) if np.isfinite(scale) else point.sill)
        reach = 0.0
        k = max(1, self.neighbours)
        from scipy.spatial import cKDTree
        for f in fields:
            ok = np.flatnonzero(np.isfinite(f.ravel()))
            if len(ok) == 0:
                continue
            d, _ = cKDTree(lat.xy[ok]).query(lat.xy[lat.has_pixels], k=min(k, len(ok)))
            reach = max(reach, float(np.max(d)))
        max_rows = int(math.ceil(2 * reach / lat.py + 2 * lat.ratio_y)) + 2
        max_cols = int(math.ceil(2 * reach / lat.px + 2 * lat.ratio_x)) + 2
        if (2 * max_rows + 3) * (2 * max_cols + 3) > _MAX_TABLE:
            raise InputError(problem=f"kriging with {k} neighbours reaches {reach / 1000:.0f} km, "
                             f"{max(max_rows, max_cols)} fine pixels: the covariance tables would not fit in memory.",
                             layer=None, fix="use fewer kriging neighbours, a coarser target resolution, or the "
                             "bilinear residual.")
        cov = self.covariance(lat, unit, max_rows, max_cols)
        log = {"residual": self.name, "neighbours": k, "variogram": {
            "pooled_areal_experimental": areal.as_dict(), "point_model": point.as_dict(), **info,
            "sill_per_date": [float(f"{s:.6g}") for s in sills]}}
        return FittedKriging(lat, cov, [np.asarray(r, dtype=np.float64) for r in residuals], sills, k, log)


class FittedKriging(FittedResidual):
    has_variance = True

    def __init__(self, lattice: CellLattice, cov, residuals: list[np.ndarray], sills: list[float], k: int,
                 log: dict[str, Any]) -> None:
        self.lat, self.cov, self.res, self.sills, self.k, self._log = lattice, cov, residuals, sills, k, log
        # dates with the same cells present share their neighbourhoods and kriging systems
        self._keys = [np.flatnonzero(np.isfinite(r) & lattice.has_pixels).tobytes() for r in residuals]
        self._engines: dict[bytes, Optional[OrdinaryKriging]] = {}
        self._systems: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _mask_key(self, t: int) -> bytes:
        return self._keys[t]

    def _engine(self, t: int) -> Optional[OrdinaryKriging]:
        key = self._mask_key(t)
        if key not in self._engines:
            ok = np.frombuffer(key, dtype=np.int64) if key else np.zeros(0, np.int64)
            self._engines[key] = OrdinaryKriging(self.cov, self.lat.xy[ok], ok, self.k) if len(ok) else None
        return self._engines[key]

    def predict(self, t: int, window: Window) -> tuple[np.ndarray, Optional[np.ndarray]]:
        shape = (window.nrows, self.lat.fine.width)
        value = np.full(shape, np.nan, dtype=np.float32)
        var = np.full(shape, np.nan, dtype=np.float32)
        eng = self._engine(t)
        if eng is None:
            return value, var
        b = self.lat.blocks
        lo, hi = window.row0, window.row0 + window.nrows
        targets = np.flatnonzero(self.lat.has_pixels & (b[:, 0] < hi) & (b[:, 1] > lo))
        if len(targets) == 0:
            return value, var
        key = (self._mask_key(t), lo, hi)
        if key not in self._systems:
            if len(self._systems) >= _CACHED_SYSTEMS:
                self._systems.pop(next(iter(self._systems)))
            self._systems[key] = eng.systems(self.lat.xy[targets])
        nbr, inv = self._systems[key]
        z = self.res[t]
        r0 = np.maximum(b[targets, 0], lo)
        r1 = np.minimum(b[targets, 1], hi)
        c0, c1 = b[targets, 2], b[targets, 3]
        shapes = np.column_stack([r1 - r0, c1 - c0])
        # cells whose pixel rectangles (inside this window) share a shape are kriged together
        for shape in np.unique(shapes, axis=0):
            group = np.flatnonzero((shapes == shape).all(axis=1))
            nr, nc = int(shape[0]), int(shape[1])
            per_cell = nr * nc * (self.k + 1)
            step = max(1, _BATCH_ELEMENTS // per_cell)
            for s0 in range(0, len(group), step):
                g = group[s0:s0 + step]
                rows = r0[g][:, None] + np.arange(nr)[None, :]
                cols = c0[g][:, None] + np.arange(nc)[None, :]
                p, v = eng.predict_cells(rows, cols, nbr[g], inv[g], z[nbr[g]])
                rr = (rows - lo)[:, :, None]
                cc = cols[:, None, :]
                value[rr, cc] = p
                var[rr, cc] = v * self.sills[t]
        return value, var

    def log(self) -> dict[str, Any]:
        return self._log
