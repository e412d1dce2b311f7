"""A PNG quick-look of a dated soil-moisture raster next to the coarse product (matplotlib, Agg)."""
from __future__ import annotations

import datetime as _dt
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal

from .atomic import atomic_open
from ..inputs.dates import parse_date
from .output import SOIL_MOISTURE_RAMP

gdal.UseExceptions()


def _cmap():
    from matplotlib.colors import LinearSegmentedColormap
    lo, hi = SOIL_MOISTURE_RAMP[0][0], SOIL_MOISTURE_RAMP[-1][0]
    return LinearSegmentedColormap.from_list("soil_moisture", [((v - lo) / (hi - lo), c) for v, c in SOIL_MOISTURE_RAMP])


def _read(path: str, band: int, max_px: int = 1200) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    ds = gdal.Open(path)
    b = ds.GetRasterBand(band)
    step = max(1, int(np.ceil(max(ds.RasterXSize, ds.RasterYSize) / max_px)))
    a = b.ReadAsArray(buf_xsize=ds.RasterXSize // step or 1, buf_ysize=ds.RasterYSize // step or 1).astype(np.float32)
    nd = b.GetNoDataValue()
    if nd is not None and not np.isnan(nd):
        a[a == np.float32(nd)] = np.nan
    s, o = b.GetScale() or 1.0, b.GetOffset() or 0.0
    gt = ds.GetGeoTransform()
    ext = (gt[0], gt[0] + gt[1] * ds.RasterXSize, gt[3] + gt[5] * ds.RasterYSize, gt[3])
    return a * s + o, ext


def write_quicklook(png_path: str, fine_path: str, dates: Sequence[_dt.date],
                    coarse_paths: Optional[dict[_dt.date, str]] = None,
                    stations: Optional[Sequence[tuple[float, float, str]]] = None,
                    title: str = "Downscaled soil moisture", n_panels: int = 3) -> str:
    """Write a PNG with up to ``n_panels`` dates: coarse product (top) and downscaled (bottom).

    ``stations`` are (x, y, label) in the raster's CRS, drawn as points. The file is written
    atomically. Returns ``png_path``.
    """
    from matplotlib.figure import Figure

    picks = sorted(set(np.linspace(0, len(dates) - 1, min(n_panels, len(dates))).round().astype(int)))
    in_file = band_dates(fine_path)
    band_of = {d: i + 1 for i, d in enumerate(in_file)} if in_file else {d: i + 1 for i, d in enumerate(dates)}
    rows = 2 if coarse_paths else 1
    fig = Figure(figsize=(4.2 * len(picks), 4.4 * rows + 0.6), dpi=110)
    cmap = _cmap()
    cmap.set_bad("#dddddd")
    lo, hi = SOIL_MOISTURE_RAMP[0][0], SOIL_MOISTURE_RAMP[-1][0]
    im = None
    for j, k in enumerate(picks):
        d = dates[k]
        panels = []
        if coarse_paths and d in coarse_paths:
            panels.append(("coarse", coarse_paths[d], 1))
        panels.append(("downscaled", fine_path, band_of[d]))
        for i, (label, path, band) in enumerate(panels):
            ax = fig.add_subplot(rows, len(picks), (rows - len(panels) + i) * len(picks) + j + 1)
            a, ext = _read(path, band)
            im = ax.imshow(a, extent=ext, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            if stations:
                ax.scatter([s[0] for s in stations], [s[1] for s in stations], s=14, c="k", marker="^")
            ax.set_title(f"{label} {d.isoformat()}", fontsize=9)
            ax.tick_params(labelsize=7)
    if im is not None:
        cax = fig.add_axes([0.92, 0.15, 0.015, 0.7])
        fig.colorbar(im, cax=cax, label="m³/m³")
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.05, right=0.9, top=0.9, bottom=0.06, wspace=0.25, hspace=0.25)
    with atomic_open(png_path, "wb") as f:
        fig.savefig(f, format="png")
    return png_path


def band_dates(path: str) -> list[_dt.date]:
    ds = gdal.Open(path)
    out = [parse_date(ds.GetRasterBand(i).GetDescription() or "") for i in range(1, ds.RasterCount + 1)]
    return [d for d in out if d is not None]
