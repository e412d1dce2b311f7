"""The trend → residual pipeline every trend-based method composes.

Given any fitted trend (an object with ``predict(X) -> float32`` over the feature columns
``names``, or with ``predict_block(scene, t, window, static) -> (rows, width)`` when it needs more than
the pixel's own features — neighbouring rows, earlier dates) and any residual model (:mod:`core.methods.residual`), :func:`trend_plus_residual`

1. predicts the trend on every fine pixel and date, block by block (on :func:`~core.methods.blocks.current_blocks`:
   this process, or a Dask cluster), scaled by ``trend_weight``, the share of the trend the method
   trusts — 0 gives a pure interpolation of the coarse field; a
   :class:`~core.methods.trend_weight.TrendWeights` scales the trend's cell means, each pixel's static
   (time-mean) departure from its cell mean and the date-to-date rest apart — and its mean in each coarse cell;
2. fits the residual model to the coarse residual (coarse soil moisture − mean fine trend) of
   every date;
3. writes trend + residual (clipped at 0, empty where the coarse cell has no soil moisture; a pixel
   whose covariates have a gap takes its cell's mean trend, a cell without any the date's mean) and,
   when the residual model has one and ``sd_path`` is given, the kriging standard deviation.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

import numpy as np

from ..errors import Canceled
from ..inputs.dates import format_date
from ..inputs.scene import IsCanceled, Progress, Scene
from ..io.output import RasterWriter
from ..raster.aggregate import CellAccumulator
from ..raster.grid import Window
from .residual import ResidualGeometry, ResidualModel, coarse_residual, make_residual
from .blocks import current_blocks
from .result import canceled_fn
from .trend_weight import TrendWeights

#: Values (dates × pixels) read at once when the trend is split into its static and dynamic parts.
_SPLIT_VALUES = 1 << 22


@dataclass
class ResidualOptions:
    """How a trend-based method spreads its coarse residual and how far it trusts its trend — the
    options every method on this pipeline shares (their Processing parameters are the same too)."""
    #: Residual model: ``auto`` (chosen one scale up among uniform, bilinear and ATPK), ``uniform``,
    #: ``bilinear``, ``point_kriging`` or ``atpk`` (:mod:`core.methods.residual`).
    residual: str = "auto"
    #: Extra passes that adjust the bilinear residual field so the fine pixels of each coarse cell
    #: average back to the coarse value (0 = plain bilinear residual).
    residual_iterations: int = 3
    #: Coarse cells per kriging neighbourhood (kriged residuals).
    kriging_neighbours: int = 25
    variogram_model: str = "exponential"
    #: Scale the trend by its cross-validated skill on the coarse field (do no harm): with
    #: uninformative covariates the map falls back to an interpolation of the coarse field.
    shrink_trend: bool = True
    #: Scale a bilinear or kriged residual's departure from the uniform one by its skill one scale
    #: up (static and date-to-date parts apart): 0 keeps each cell's own series (do no harm).
    shrink_residual: bool = True
    #: Subtracted from the coarse soil moisture before fitting and downscaling (m³/m³): a bias
    #: correction, e.g. the mean coarse-minus-station difference.
    coarse_offset: float = 0.0

    def residual_model(self) -> ResidualModel:
        """The residual model these options ask for."""
        return make_residual(self.residual, self.residual_iterations, self.kriging_neighbours, self.variogram_model,
                             shrink=self.shrink_residual)


class Trend(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


@dataclass
class PipelineOutput:
    conservation: list[dict[str, float]]
    residual_log: dict[str, Any]
    sd_path: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)


def trend_plus_residual(scene: Scene, trend: Trend, names: Sequence[str], residual_model: ResidualModel,
                        output_path: str, *, trend_weight: float | TrendWeights = 1.0, coarse_offset: float = 0.0,
                        sd_path: Optional[str] = None, metadata: Optional[dict[str, str]] = None,
                        block_pixels: int = 1 << 20, progress: Optional[Progress] = None,
                        is_canceled: Optional[IsCanceled] = None,
                        trend_memory_bytes: Optional[int] = None) -> PipelineOutput:
    """Run trend → residual on ``scene`` and write ``output_path`` (not committed styles/logs:
    the calling method writes its own run log). ``coarse_offset`` is subtracted from the coarse
    soil moisture first (a bias correction). Raises :class:`~core.errors.Canceled` on cancel.

    The fine trend of every date is kept in memory between the two passes when it takes at most
    ``trend_memory_bytes`` (float32; default :data:`TREND_MEMORY_BYTES`), else in a scratch GeoTIFF next to the output; either way the map
    is the same to the bit."""
    prog = progress or (lambda f, m: None)
    canceled = canceled_fn(is_canceled)
    dates = scene.dates
    T = len(dates)
    windows = list(scene.fine.windows(block_pixels))
    band_names = [format_date(d) for d in dates]
    weights = trend_weight if isinstance(trend_weight, TrendWeights) else TrendWeights(*(3 * [float(trend_weight)]))
    weight = np.float32(weights.cells if weights.is_uniform else 1.0)
    coarse = [scene.coarse_sm(t) - np.float32(coarse_offset) for t in range(T)]
    n_steps = 2 * len(windows) * T
    step = 0
    memory = TREND_MEMORY_BYTES if trend_memory_bytes is None else trend_memory_bytes
    with _trend_store(output_path, scene, band_names, memory) as trend_file, \
            RasterWriter(output_path, scene.fine, band_names, metadata=metadata) as out:
        sd_out = None
        # 1. fine trend, and its mean in each coarse cell
        trend_acc = [CellAccumulator(scene.coarse.size) for _ in range(T)]
        for w, block in current_blocks().trend_blocks(scene, trend, names, weight, windows, canceled):
            idx = scene.cell_index(w)
            for t in range(T):
                trend_file.write(t, w, block[t])
                trend_acc[t].add(block[t], idx)
            step += T
            prog(0.9 * step / n_steps, "predicting the trend on the fine grid")
        if not weights.is_uniform:
            prog(0.9 * step / n_steps, "weighting the trend's cell means, static and dynamic departures")
            trend_acc = _split_trend(trend_file, [a.mean() for a in trend_acc], weights, scene, windows, canceled)
        # 2. the residual model, fitted on every date's coarse residual
        cell_trend = [_fill_cells(trend_acc[t].mean(), coarse[t]) for t in range(T)]
        targets = [coarse_residual(coarse[t], cell_trend[t]) for t in range(T)]

        def filled_trend(t: int, w) -> np.ndarray:
            # a pixel whose covariates have a gap takes its cell's mean trend: no hole in the map,
            # and the cell still averages back to its value
            tr = trend_file.read(t, w)
            idx = scene.cell_index(w)
            mean = np.where(idx >= 0, cell_trend[t][np.maximum(idx, 0)], np.nan)
            return np.where(np.isfinite(tr), tr, mean)

        geometry = ResidualGeometry(scene.fine, scene.coarse, windows,
                                    support=lambda t, w: np.isfinite(filled_trend(t, w)),
                                    cell_index=scene.cell_index)
        prog(0.9 * step / n_steps, f"fitting the residual model ({residual_model.label})")
        fitted = residual_model.fit(targets, geometry, canceled)
        try:
            if sd_path and fitted.has_variance:
                sd_out = RasterWriter(sd_path, scene.fine, band_names,
                                      metadata={"SOIL_MOISTURE_UNITS": "m3/m3", "QUANTITY": "kriging standard deviation",
                                                "TIMES": ",".join(band_names)})
            # 3. trend + residual
            final_acc = [CellAccumulator(scene.coarse.size) for _ in range(T)]
            for w in windows:
                idx = scene.cell_index(w)
                for t in range(T):
                    if canceled():
                        raise Canceled()
                    has_sm = (idx >= 0) & np.isfinite(coarse[t][np.maximum(idx, 0)])
                    resid, var = fitted.predict(t, w)
                    fine = filled_trend(t, w) + resid
                    fine = np.where(has_sm, np.clip(fine, 0.0, None), np.nan).astype(np.float32)
                    out.write(t, w, fine)
                    if sd_out is not None:
                        sd_out.write(t, w, np.where(np.isfinite(fine), np.sqrt(var), np.nan))
                    final_acc[t].add(fine, idx)
                    step += 1
                    prog(0.9 * step / n_steps, "adding the interpolated coarse residual")
            conservation = [conservation_figures(final_acc[t].mean(), coarse[t]) for t in range(T)]
            prog(0.92, "building overviews")
            if canceled():
                raise Canceled()
            out.commit(overviews=True)
            if sd_out is not None:
                sd_out.commit(overviews=True)
        except BaseException:
            if sd_out is not None:
                sd_out.discard()
            raise
    return PipelineOutput(conservation, fitted.log(), sd_out.path if sd_out is not None else None)


def _split_trend(trend_file, cell_mean: list[np.ndarray], weights: TrendWeights, scene: Scene,
                 windows: Sequence[Window], canceled) -> list[CellAccumulator]:
    """Rewrite the stored trend ``f`` as ``α·f̄ + α_s·s + α_d·(f − f̄ − s)`` (``f̄`` its cell mean on the
    date, ``s`` the pixel's mean departure from it over the dates) and return the new cell means."""
    T = len(cell_mean)
    acc = [CellAccumulator(scene.coarse.size) for _ in range(T)]
    rows = max(1, _SPLIT_VALUES // max(1, T * scene.fine.width))
    for big in windows:
        for row0 in range(big.row0, big.row0 + big.nrows, rows):
            if canceled():
                raise Canceled()
            w = Window(row0, min(rows, big.row0 + big.nrows - row0))
            idx = scene.cell_index(w)
            mean = np.stack([np.where(idx >= 0, cell_mean[t][np.maximum(idx, 0)], np.nan) for t in range(T)])
            dep = np.stack([trend_file.read(t, w) for t in range(T)]).astype(np.float64) - mean
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # pixels without any trend
                static = np.nanmean(dep, axis=0)
            out = weights.cells * mean + weights.static * static + weights.dynamic * (dep - static)
            for t in range(T):
                block = out[t].astype(np.float32)
                trend_file.write(t, w, block)
                acc[t].add(block, idx)
    return acc


#: Up to this many bytes of fine trend (all dates, float32) stay in memory between the two passes: a
#: 4 Mpx × 4-date scene (64 MB); larger scenes go through a scratch file, so memory stays bounded.
TREND_MEMORY_BYTES = 64 << 20


class _MemoryTrend:
    """The fine trend of every date held in memory (the scratch file's ``write``/``read`` interface)."""

    def __init__(self, n_bands: int, height: int, width: int) -> None:
        self._values = np.empty((n_bands, height, width), dtype=np.float32)

    def write(self, band: int, window, values: np.ndarray) -> None:
        self._values[band, window.row0:window.row0 + window.nrows] = values

    def read(self, band: int, window) -> np.ndarray:
        return self._values[band, window.row0:window.row0 + window.nrows]

    def __enter__(self) -> "_MemoryTrend":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._values = None


def _trend_store(output_path: str, scene: Scene, band_names: Sequence[str], memory_bytes: int):
    g = scene.fine
    if len(band_names) * g.size * 4 <= memory_bytes:
        return _MemoryTrend(len(band_names), g.height, g.width)
    return RasterWriter(output_path, g, band_names, temporary=True)


def _fill_cells(cell_trend: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Cells with soil moisture but no trend (covariates missing over the whole cell) take the
    date's mean trend: a constant adds no spatial detail, so there the map falls back to the
    interpolation of the coarse field instead of a hole."""
    out = np.array(cell_trend, dtype=np.float64, copy=True)
    gap = ~np.isfinite(out) & np.isfinite(coarse)
    if gap.any():
        have = np.isfinite(out)
        out[gap] = float(np.mean(out[have])) if have.any() else 0.0
    return out


def conservation_figures(fine_cell_mean: np.ndarray, coarse: np.ndarray) -> dict[str, float]:
    """Mean and max absolute difference (m³/m³) between the mean of the fine pixels in each coarse
    cell and the coarse value, over cells that have both."""
    d = fine_cell_mean - coarse
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"cells": 0, "mean_abs_diff": float("nan"), "max_abs_diff": float("nan")}
    return {"cells": int(d.size), "mean_abs_diff": float(np.mean(np.abs(d))),
            "max_abs_diff": float(np.max(np.abs(d)))}
