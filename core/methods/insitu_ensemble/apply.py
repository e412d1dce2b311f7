"""Downscale with an in-situ-trained ensemble (Poehls et al.): every fine pixel, every date.

The ensemble's members (ONNX) take the inputs its model card declares — e.g. the coarse soil
moisture of the pixel's coarse cell, the DEM's multi-scale TPI and the latitude — and estimate
the soil moisture a station at that pixel would measure. Outputs, each one band per date:
the members' mean, their spread (standard deviation) and a mask of pixels whose inputs lie
outside the training domain (1 = outside). No residual correction: the ensemble targets in-situ
values, not the coarse product's, so its cell means need not equal the coarse values.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...inputs.dates import format_date
from ...errors import InputError
from ...io.output import SPREAD_RAMP, RasterWriter, qml_pseudocolor, write_json_atomic, write_soil_moisture_style, write_text_atomic
from ...inputs.scene import IsCanceled, Progress, Scene
from ..blocks import current_blocks
from ..result import DownscaleResult

#: Scene features that any scene provides, whatever layers were given.
ALWAYS = ("sm_coarse", "doy", "lat", "lon")
#: Model inputs read from the 'other' covariate layer (no role of their own).
FROM_OTHER = ("field_capacity", "vv_db", "vh_db")
_HOW = {"mtpi": "a DEM with 'Derive terrain covariates' on", "slope": "a DEM with 'Derive terrain covariates' on",
        "dem": "a DEM", "ndvi": "an NDVI layer", "land_cover": "a land-cover layer (NLCD codes)",
        "sand": "a sand layer (%)", "clay": "a clay layer (%)", "field_capacity": "field capacity (%) as 'Other covariate'",
        "vv_db": "Sentinel-1 VV (dB) as 'Other covariate'", "vh_db": "Sentinel-1 VH (dB) as 'Other covariate'"}


@dataclass
class EnsembleOutputs:
    mean: str
    spread: str
    domain_mask: str


def scene_feature_for(name: str, scene: Scene) -> Optional[str]:
    """The scene feature that feeds model input ``name`` (``None`` if the scene lacks it)."""
    if name in ALWAYS or name in scene.covariate_names:  # an Other layer named after the input feeds it
        return name
    if name in FROM_OTHER:
        return "other" if "other" in scene.covariate_names else None
    return None


def check_inputs(ensemble, scene: Scene) -> list[str]:
    """Scene feature per model input; raises InputError naming every input the layers cannot supply."""
    cols, missing = [], []
    for name in ensemble.input_features:
        f = scene_feature_for(name, scene)
        if f is None:
            missing.append(f"'{name}' ({_HOW.get(name, 'a layer of that role')})")
        cols.append(f or "")
    if missing:
        raise InputError(problem=f"the ensemble '{ensemble.name}' needs " + ", ".join(missing) + ", which the given "
                         "layers do not provide.", layer=ensemble.name,
                         fix="add those layers (the model card lists each input with its units).")
    return cols


def predict(ensemble, scene: Scene, outputs: EnsembleOutputs, block_pixels: int = 1 << 19,
            progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None) -> DownscaleResult:
    """Apply a verified ensemble (:class:`core.learn.model_folder.Ensemble`) to every fine pixel of
    every date of ``scene``; write mean, spread and domain mask (atomically)."""
    t0 = time.time()
    prog = progress or (lambda f, m: None)
    canceled = is_canceled or (lambda: False)
    cols = check_inputs(ensemble, scene)
    extra = tuple(c for c in cols if c in ("sm_coarse", "lat", "lon"))
    dates = scene.dates
    names = [format_date(d) for d in dates]
    meta = {"SOIL_MOISTURE_UNITS": "m3/m3", "METHOD": f"ensemble {ensemble.name} ({ensemble.n_members} members)",
            "TIMES": ",".join(names)}
    windows = list(scene.fine.windows(block_pixels))
    n_steps = len(windows) * len(dates)
    outside = np.zeros(len(dates))
    valid = np.zeros(len(dates))
    with RasterWriter(outputs.mean, scene.fine, names, metadata=meta) as w_mean, \
            RasterWriter(outputs.spread, scene.fine, names, metadata={**meta, "CONTENT": "spread (std of members)"}) as w_sd, \
            RasterWriter(outputs.domain_mask, scene.fine, names,
                         metadata={**meta, "CONTENT": "1 = inputs outside the training domain"}) as w_mask:
        step = 0
        for w, (mean, sd, ood) in current_blocks().ensemble_blocks(scene, ensemble, cols, extra, windows, canceled):
            for t in range(len(dates)):
                ok = np.isfinite(mean[t])
                w_mean.write(t, w, np.where(ok, np.clip(mean[t], 0.0, None), np.nan))
                w_sd.write(t, w, sd[t])
                w_mask.write(t, w, np.where(ok, ood[t].astype(np.float32), np.nan))
                outside[t] += np.count_nonzero(ood[t] & ok)
                valid[t] += np.count_nonzero(ok)
            step += len(dates)
            prog(step / n_steps, f"predicting with the {ensemble.n_members} members of '{ensemble.name}'")
        prog(1.0, "building overviews")
        for wr in (w_mean, w_sd, w_mask):
            wr.commit()
    write_soil_moisture_style(outputs.mean)
    write_text_atomic(outputs.spread.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(SPREAD_RAMP))
    write_text_atomic(outputs.domain_mask.rsplit(".", 1)[0] + ".qml", qml_pseudocolor(
        ((0.0, "#ffffff"), (1.0, "#d7191c")), label_units="(1 = outside)", opacity=0.6))
    domain = [{"valid_px": int(v), "outside_fraction": float(o / v) if v else float("nan")}
              for v, o in zip(valid, outside)]
    log_path = outputs.mean.rsplit(".", 1)[0] + ".json"
    training = {"ensemble": ensemble.name, "folder": ensemble.folder, "inputs": ensemble.input_features,
                "scene_features": cols, "scores": ensemble.card.get("scores", {}),
                "training_data": ensemble.card.get("training_data", {})}
    result = DownscaleResult(outputs.mean, log_path, list(dates), [], training, time.time() - t0,
                             extra={"domain": domain, "spread": outputs.spread, "domain_mask": outputs.domain_mask})
    write_json_atomic(log_path, {"method": "ensemble", "scene": scene.describe(), "model": training,
                                 "outputs": outputs.__dict__,
                                 "domain": [{"date": n, **d} for n, d in zip(names, domain)],
                                 "seconds": result.seconds})
    return result
