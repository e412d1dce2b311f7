"""Covariates aligned on one grid, written as a band stack (the fine view and the training view)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..inputs.dates import format_date
from ..errors import Canceled, InputError
from .output import RasterWriter
from ..inputs.scene import IsCanceled, Progress, Scene


def _bands(scene: Scene) -> list[tuple[str, int, str]]:
    """(feature, band index, band description) of every distinct covariate band."""
    out = []
    for name in scene.covariate_names:
        layer = scene.feature_layer(name)
        if layer is not None and layer.is_dynamic:
            for i, b in enumerate(layer.bands):
                out.append((name, i, f"{name} {format_date(b.date)}" if b.date else name))
        else:
            out.append((name, 0, name))
    return out


def write_fine_stack(scene: Scene, path: str, block_pixels: int = 1 << 20,
                     progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None) -> list[str]:
    """Every covariate (and derived terrain) on the fine grid, one band each; returns band names."""
    bands = _bands(scene)
    windows = list(scene.fine.windows(block_pixels))
    with RasterWriter(path, scene.fine, [b[2] for b in bands], metadata={"CONTENT": "aligned covariates"}) as out:
        for k, w in enumerate(windows):
            if is_canceled is not None and is_canceled():
                raise Canceled()
            static = scene.static_block(w)
            for j, (name, i, _) in enumerate(bands):
                out.write(j, w, static[name] if name in static else scene.read_band(name, i, w))
            if progress is not None:
                progress((k + 1) / len(windows), "aligning covariates to the target grid")
        out.commit()
    return [b[2] for b in bands]


def write_coarse_stack(scene: Scene, path: str, block_pixels: int = 1 << 20,
                       progress: Optional[Progress] = None, is_canceled: Optional[IsCanceled] = None) -> list[str]:
    """Every covariate aggregated to the coarse soil-moisture grid (the training view)."""
    if scene.coarse is None:
        raise InputError(problem="the training view needs the coarse soil-moisture layer as reference grid.",
                         layer=None, fix="give a soil-moisture layer.")
    bands = _bands(scene)
    needed = {(n, i) for n, i, _ in bands}
    view = scene.training_view(block_pixels, progress, is_canceled, bands=needed)
    grid = scene.coarse
    from ..raster.grid import Window
    with RasterWriter(path, grid, [b[2] for b in bands], metadata={"CONTENT": "covariates on the coarse grid"}) as out:
        for j, (name, i, _) in enumerate(bands):
            out.write(j, Window(0, grid.height), view[(name, i)].reshape(grid.height, grid.width))
        out.commit(overviews=False)
    return [b[2] for b in bands]
