"""Downscale with an in-situ-trained ensemble (Poehls et al.): every fine pixel, every date.

The ensemble's members (ONNX) take the inputs its model card declares — e.g. the coarse soil
moisture of the pixel's coarse cell, the DEM's multi-scale TPI and the latitude — and estimate
the soil moisture a station at that pixel would measure. Outputs, each one band per date:
the members' mean, their spread (standard deviation), a mask of pixels whose inputs lie
outside the training domain (1 = outside) and, when the card carries a calibrated interval, its
half-width (the interval ``mean ± half-width`` held the card's stated share of held-out station
values in CV). The domain check also looks at the coarse product's *level*: a coarse cell whose
mean over the scene's dates lies outside the 5–95 % range of the training stations' mean coarse
soil moisture is flagged for every date. No residual correction: the ensemble targets in-situ values,
not the coarse product's, so its cell means need not equal the coarse values.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...inputs.dates import format_date
from ...errors import InputError
from ...io.output import SPREAD_RAMP, RasterWriter, qml_pseudocolor, write_json_atomic, write_soil_moisture_style, write_text_atomic
from ...inputs.scene import IsCanceled, Progress, Scene
from ...raster.aggregate import CellAccumulator
from ..blocks import current_blocks
from ..result import DownscaleResult

#: Scene features that any scene provides, whatever layers were given.
ALWAYS = ("sm_coarse", "doy", "lat", "lon")
#: Model inputs read from an 'other' covariate layer (no role of their own).
FROM_OTHER = ("field_capacity", "vv_db", "vh_db", "ndwi", "evi", "nsdsi")
_HOW = {"mtpi": "a DEM with 'Derive terrain covariates' on", "slope": "a DEM with 'Derive terrain covariates' on",
        "dem": "a DEM", "ndvi": "an NDVI layer", "land_cover": "a land-cover layer (NLCD codes)",
        "sand": "a sand layer (%)", "clay": "a clay layer (%)", "field_capacity": "field capacity (%) as 'Other covariate'",
        "vv_db": "Sentinel-1 VV (dB) as 'Other covariate'", "vh_db": "Sentinel-1 VH (dB) as 'Other covariate'",
        "ndwi": "Sentinel-2 NDWI as 'Other covariate'", "evi": "Sentinel-2 EVI as 'Other covariate'",
        "nsdsi": "Sentinel-2 NSDSI as 'Other covariate'"}


@dataclass
class EnsembleOutputs:
    mean: str
    spread: str
    domain_mask: str
    interval: Optional[str] = None  # half-width of the calibrated interval (needs the card's 'uncertainty')


def scene_feature_for(name: str, scene: Scene) -> Optional[str]:
    """The scene feature that feeds model input ``name`` (``None`` if the scene lacks it)."""
    if name in ALWAYS or name in scene.covariate_names:  # an Other layer named after the input feeds it
        return name
    if name in FROM_OTHER:
        return "other" if "other" in scene.covariate_names else None
    return None


def missing_inputs(input_names, scene: Scene) -> tuple[list[str], list[str]]:
    """``(scene feature per input ("" if none), problems)``: an input no layer supplies, or two
    inputs that would read the same layer (several inputs from one 'Other' layer)."""
    cols, missing = [], []
    for name in input_names:
        f = scene_feature_for(name, scene)
        if f is None:
            missing.append(f"'{name}' ({_HOW.get(name, 'a layer of that role')})")
        cols.append(f or "")
    for f in sorted({c for c in cols if c and cols.count(c) > 1}):
        same = [n for n, c in zip(input_names, cols) if c == f]
        missing.append(f"{', '.join(repr(n) for n in same)} as separate layers (they would all read the layer "
                       f"'{f}'; name each layer after its input)")
    return cols, missing


def check_inputs(ensemble, scene: Scene) -> list[str]:
    """Scene feature per model input; raises InputError naming every input the layers cannot supply."""
    cols, missing = missing_inputs(ensemble.input_features, scene)
    if missing:
        raise InputError(problem=f"the ensemble '{ensemble.name}' needs " + ", ".join(missing) + ", which the given "
                         "layers do not provide.", layer=ensemble.name,
                         fix="add those layers (the model card lists each input with its units).")
    return cols


#: Blocks (one date of one row block each) queued per output for its writer thread.
WRITE_BEHIND_BLOCKS = 2

#: Seasons of the anchoring option: meteorological seasons, by month.
_SEASON_OF_MONTH = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0)  # DJF, MAM, JJA, SON
SEASONS = ("DJF", "MAM", "JJA", "SON")


def coarse_level_outside(ensemble, scene: Scene) -> tuple[np.ndarray, dict]:
    """Per coarse cell: True where the cell's mean coarse soil moisture over the scene's dates lies
    outside the 5–95 % range of the training stations' mean coarse soil moisture (card ``coarse_level``):
    a region much wetter or drier than nine in ten training stations.

    Returns the flag per cell (all False when the card has no ``coarse_level``) and a summary for the
    run log: the training range, the scene's cell-mean range and the share of cells outside.
    """
    lev = ensemble.card.get("coarse_level")
    n_cells = scene.coarse.width * scene.coarse.height
    acc = np.zeros(n_cells)
    cnt = np.zeros(n_cells)
    for t in range(len(scene.dates)):
        v = np.asarray(scene.coarse_sm(t), dtype=np.float64)
        ok = np.isfinite(v)
        acc[ok] += v[ok]
        cnt[ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        cell_mean = np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)
    if not lev or not np.isfinite(cell_mean).any():
        return np.zeros(n_cells, dtype=bool), {}
    lo, hi = lev["station_mean_p05"], lev["station_mean_p95"]
    with np.errstate(invalid="ignore"):
        out = np.isfinite(cell_mean) & ((cell_mean < lo) | (cell_mean > hi))
    n_valid = int(np.isfinite(cell_mean).sum())
    return out, {"training_station_mean_range": [lo, hi],
                 "scene_cell_mean_range": [float(np.nanmin(cell_mean)), float(np.nanmax(cell_mean))],
                 "scene_mean": float(np.nanmean(cell_mean)), "cells_outside": int(out.sum()),
                 "cells_outside_fraction": float(out.sum() / n_valid)}


def card_lines(ensemble) -> list[str]:
    """What a run says about the ensemble before predicting (toolbox log and command line alike)."""
    card = ensemble.card
    lines = [f"Ensemble '{ensemble.name}': {ensemble.n_members} members; inputs "
             + ", ".join(f"{x['name']} ({x['units']})" for x in card["inputs"]),
             f"Trained on: {card.get('training_data', {}).get('description', '?')}"]
    if "uncertainty" in card:
        u = card["uncertainty"]
        cov = ", ".join(f"{k}: {v:.0%}" for k, v in u["coverage"].items())
        lines.append(f"Interval: {u['level']:.0%} (held at held-out stations: {cov})")
    return lines


def coarse_level_warning(res: DownscaleResult) -> Optional[str]:
    """The warning of a run whose coarse cells lie outside the training stations' level, or ``None``."""
    lev = res.extra["coarse_level"]
    if not lev.get("cells_outside"):
        return None
    lo, hi = lev["training_station_mean_range"]
    return (f"{lev['cells_outside_fraction']:.0%} of the coarse cells have a mean soil moisture over these dates "
            f"outside the 5–95 % range of the training stations' ({lo:.3f}–{hi:.3f} m³/m³; scene mean "
            f"{lev['scene_mean']:.3f}): they are flagged in the domain mask. Consider 'Keep the coarse product's level'.")


def domain_lines(res: DownscaleResult) -> list[str]:
    """The dates with pixels outside the training domain, one line each."""
    return [f"{d}: {dom['outside_fraction']:.1%} of pixels outside the training domain"
            for d, dom in zip(res.dates, res.extra["domain"]) if dom["outside_fraction"] > 0]


def predict(ensemble, scene: Scene, outputs: EnsembleOutputs, block_pixels: int = 1 << 19,
            progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None,
            anchor_to_coarse: bool = False) -> DownscaleResult:
    """Apply a verified ensemble (:class:`core.learn.model_folder.Ensemble`) to every fine pixel of
    every date of ``scene``; write mean, spread, domain mask and (when asked and calibrated) the
    interval half-width, atomically.

    Parameters
    ----------
    anchor_to_coarse : bool
        Keep the coarse product's level: for each coarse cell and season (DJF, MAM, JJA, SON) the
        ensemble is shifted so that its mean over the cell's pixels and the season's dates equals the
        coarse product's mean over those dates; the ensemble's pattern within the cell and its
        dynamics are kept. Costs a second pass of predictions. Use it where the coarse product's
        level is trusted more than the training stations' (a region unlike them).
    """
    t0 = time.time()
    prog = progress or (lambda f, m: None)
    canceled = is_canceled or (lambda: False)
    cols = check_inputs(ensemble, scene)
    extra = tuple(c for c in cols if c in ("sm_coarse", "lat", "lon"))
    dates = scene.dates
    names = [format_date(d) for d in dates]
    meta = {"SOIL_MOISTURE_UNITS": "m3/m3", "METHOD": f"ensemble {ensemble.name} ({ensemble.n_members} members)",
            "TIMES": ",".join(names)}
    calib = ensemble.card.get("uncertainty")
    write_interval = bool(outputs.interval) and calib is not None
    windows = list(scene.fine.windows(block_pixels))
    n_passes = 2 if anchor_to_coarse else 1
    n_steps = len(windows) * len(dates) * n_passes
    level_out, level = coarse_level_outside(ensemble, scene)
    counter = {"step": 0}

    def blocks(label: str):
        """(t, window, shape, cell index, mean, sd, ood) for every block and date; the members run
        wherever :func:`core.methods.blocks.current_blocks` says (this process or a Dask cluster)."""
        for w, (means, sds, oods) in current_blocks().ensemble_blocks(scene, ensemble, cols, extra, windows,
                                                                      canceled):
            idx = scene.cell_index(w).ravel()
            for t in range(len(dates)):
                ood = oods[t].ravel() | ((idx >= 0) & level_out[np.maximum(idx, 0)])
                yield t, w, (w.nrows, scene.fine.width), idx, means[t].ravel(), sds[t].ravel(), ood
                counter["step"] += 1
                prog(counter["step"] / n_steps, label)

    offset = _anchor_offsets(scene, blocks("anchoring: ensemble level per coarse cell and season")) \
        if anchor_to_coarse else None
    outside = np.zeros(len(dates))
    valid = np.zeros(len(dates))
    with contextlib.ExitStack() as stack:
        def writer(path: str, metadata: dict) -> RasterWriter:  # GDAL compresses while the members predict
            return stack.enter_context(RasterWriter(path, scene.fine, names, metadata=metadata,
                                                    write_behind=WRITE_BEHIND_BLOCKS))
        w_mean = writer(outputs.mean, meta)
        w_sd = writer(outputs.spread, {**meta, "CONTENT": "spread (std of members)"})
        w_mask = writer(outputs.domain_mask, {
            **meta, "CONTENT": "1 = inputs (or the coarse level) outside the training domain"})
        w_int = writer(outputs.interval, {
            **meta, "CONTENT": f"half-width of the {calib['level']:.0%} interval (m3/m3)"}) if write_interval else None
        for t, w, shape, idx, mean, sd, ood in blocks(f"predicting with the {ensemble.n_members} members of "
                                                      f"'{ensemble.name}'"):
            if offset is not None:
                season = _SEASON_OF_MONTH[dates[t].month - 1]
                mean = mean + np.where(idx >= 0, offset[season][np.maximum(idx, 0)], np.nan).astype(np.float32)
            ok = np.isfinite(mean)
            w_mean.write(t, w, np.where(ok, np.clip(mean, 0.0, None), np.nan).reshape(shape))
            w_sd.write(t, w, sd.reshape(shape))
            w_mask.write(t, w, np.where(ok, ood.astype(np.float32), np.nan).reshape(shape))
            if w_int is not None:
                half = calib["scale"] * (sd + calib["floor"])
                w_int.write(t, w, np.where(ok, half, np.nan).astype(np.float32).reshape(shape))
            outside[t] += np.count_nonzero(ood & ok)
            valid[t] += np.count_nonzero(ok)
        prog(1.0, "building overviews")
        # each file flushes, compresses and builds its overviews in GDAL (no GIL): two at a time
        with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="smds-commit") as pool:
            list(pool.map(RasterWriter.commit, [wr for wr in (w_mean, w_sd, w_mask, w_int) if wr is not None]))
    write_soil_moisture_style(outputs.mean)
    write_text_atomic(outputs.spread.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(SPREAD_RAMP))
    if write_interval:
        write_text_atomic(outputs.interval.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(SPREAD_RAMP))
    write_text_atomic(outputs.domain_mask.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(
        ((0.0, "#ffffff"), (1.0, "#d7191c")), label_units="(1 = outside)", opacity=0.6))
    domain = [{"valid_px": int(v), "outside_fraction": float(o / v) if v else float("nan")}
              for v, o in zip(valid, outside)]
    log_path = outputs.mean.rsplit(".", 1)[0] + ".json"
    training = {"ensemble": ensemble.name, "folder": ensemble.folder, "inputs": ensemble.input_features,
                "scene_features": cols, "scores": ensemble.card.get("scores", {}),
                "training_data": ensemble.card.get("training_data", {}),
                "uncertainty": calib or {}, "tier": ensemble.card.get("tier", {})}
    interval = outputs.interval if write_interval else None
    extra_out = {"domain": domain, "spread": outputs.spread, "domain_mask": outputs.domain_mask,
                 "interval": interval, "coarse_level": level, "anchored": bool(anchor_to_coarse)}
    result = DownscaleResult(outputs.mean, log_path, list(dates), [], training, time.time() - t0, extra=extra_out)
    write_json_atomic(log_path, {"method": "ensemble", "scene": scene.describe(), "model": training,
                                 "outputs": {**outputs.__dict__, "interval": interval},
                                 "domain": [{"date": n, **d} for n, d in zip(names, domain)],
                                 "coarse_level": level, "anchored_to_coarse_level": bool(anchor_to_coarse),
                                 "seconds": result.seconds})
    return result


def _anchor_offsets(scene: Scene, blocks) -> list[np.ndarray]:
    """Per season, per coarse cell: mean coarse value − mean ensemble value over the season's dates
    (the ensemble's cell mean of each date first; dates where either is missing are left out).
    Cells without a common date get NaN (their pixels stay empty)."""
    n_cells = scene.coarse.width * scene.coarse.height
    cell_ens = {t: CellAccumulator(n_cells) for t in range(len(scene.dates))}
    for t, _, _, idx, mean, _, _ in blocks:
        cell_ens[t].add(mean, idx)
    diff = [np.zeros(n_cells) for _ in SEASONS]
    cnt = [np.zeros(n_cells) for _ in SEASONS]
    for t, d in enumerate(scene.dates):
        s = _SEASON_OF_MONTH[d.month - 1]
        dv = np.asarray(scene.coarse_sm(t), dtype=np.float64) - cell_ens[t].mean()
        ok = np.isfinite(dv)
        diff[s][ok] += dv[ok]
        cnt[s][ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return [np.where(c > 0, a / np.maximum(c, 1), np.nan) for a, c in zip(diff, cnt)]
