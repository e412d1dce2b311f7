"""What every method returns, and the progress helpers its fit and predict steps share."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..inputs.scene import IsCanceled, Progress


@dataclass
class DownscaleResult:
    """One run's outputs: the main raster, its run log (JSON), the dates, per-date conservation
    figures (may be empty for methods that do not conserve the coarse value), what was fitted and
    how long it took; ``extra`` holds method-specific outputs (e.g. a spread or kriging-SD raster)."""
    path: str
    log_path: str
    dates: list[_dt.date]
    conservation: list[dict[str, float]]
    training: dict[str, Any]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def progress_span(progress: Optional[Progress], start: float, end: float) -> Progress:
    """A progress callback mapping 0…1 onto ``start``…``end`` of ``progress`` (a no-op if None)."""
    if progress is None:
        return lambda f, m: None
    return lambda f, m: progress(start + (end - start) * f, m)


def never_canceled() -> bool:
    return False


def canceled_fn(is_canceled: Optional[IsCanceled]) -> Callable[[], bool]:
    return is_canceled or never_canceled


def trend_residual_summary(res: DownscaleResult) -> list[str]:
    """The log lines of a trend → residual run: trend CV and weight, residual variogram, conservation per date."""
    lines = []
    t = res.training
    tu = t.get("svr_tuning", {})
    if "C" in tu:
        lines.append(f"SVR tuned: C = {tu['C']:g}, ε = {tu['epsilon']:g}, γ = {tu['gamma']:.3g} "
                     f"(grouped CV RMSE {tu['cv_rmse']:.4f} m³/m³)")
    if "cv_r" in t:
        lines.append(f"Trend on {t['n_samples']} coarse samples: CV R = {t['cv_r']:.3f}, "
                     f"RMSE = {t['cv_rmse']:.4f} m³/m³ ({t.get('cv_folds', '5 random folds of coarse samples')})")
    if "cv_rmse_interpolation" in t:
        lines.append(f"Trend weight {res.extra['trend_weight']:.2f}: held-out coarse cells interpolated from "
                     f"their neighbours miss by {t['cv_rmse_interpolation']:.4f} m³/m³ (RMSE), with the full "
                     f"trend {t['cv_rmse_trend']:.4f}, with the weighted trend {t['cv_rmse_weighted']:.4f}")
        if "trend_weight_static" in t:
            lines.append(f"Trend weights applied: {t['trend_weight']:.2f} to the cell means, "
                         f"{t['trend_weight_static']:.2f} to the static within-cell pattern (between cells "
                         f"{t['trend_weight_static_between_cells']:.2f}, within 2×2 blocks "
                         f"{t['trend_weight_static_within_blocks']:.2f}), {t['trend_weight_dynamic']:.2f} to its "
                         f"date-to-date anomaly (between cells {t['trend_weight_dynamic_between_cells']:.2f}, within "
                         f"blocks {t['trend_weight_dynamic_within_blocks']:.2f}); held-out anomalies (ubRMSE) "
                         f"{t['cv_ubrmse_interpolation']:.4f} interpolated, {t['cv_ubrmse_trend']:.4f} with the full "
                         f"trend, {t['cv_ubrmse_weighted']:.4f} weighted")
    elif "note" in t:
        lines.append(f"Trend weight 1: {t['note']}")
    rl = res.extra.get("residual", {})
    if "departure_weight_static" in rl:
        lines.append(f"Residual ({rl.get('residual')}) departure from the uniform residual weighted one scale up: "
                     f"{rl['departure_weight_static']:.2f} static, {rl['departure_weight_dynamic']:.2f} date-to-date")
    vg = rl.get("variogram")
    if vg:
        pm = vg["point_model"]
        lines.append(f"Residual variogram (point support): {pm['model']}, sill {pm['sill']:.3g} (m³/m³)², "
                     f"range {pm['range'] / 1000:.1f} km")
    return lines + conservation_lines(res.dates, res.conservation)


def conservation_lines(dates, conservation) -> list[str]:
    """One log line per date: how far the fine pixels' mean in each coarse cell is from its value."""
    return [f"Conservation {d}: mean |fine mean − coarse| = {c['mean_abs_diff']:.4f}, "
            f"max = {c['max_abs_diff']:.4f} m³/m³ over {c['cells']} cells" for d, c in zip(dates, conservation)]
