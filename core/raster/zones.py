"""Terrain zones from a DEM: plains, hills and mountains by local relief, or clusters of terrain.

The stacking paper fits one model per geomorphic unit (plains, hills, mountains). Without a zone
map, the units are derived from the terrain:

* **relief classes** (default): local relief = highest minus lowest elevation within a radius
  (default 5 km); plains below the first threshold (default 50 m), mountains above the second
  (default 300 m), hills between — the relief-roughness classes of Meybeck et al. (2001, Global
  Ecology & Biogeography), which a hydrologist can read off a map;
* **clusters**: k-means on standardised (elevation, relief), for areas where fixed thresholds put
  everything in one class; the cluster centres are reported, sorted by elevation.

Zones are derived on a DEM decimated to about a tenth of the radius per pixel (relief at 5 km
does not need 30 m pixels), so memory does not grow with the fine grid; fine pixels take the zone
of the decimated pixel they fall in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .grid import Grid

ZONE_NODATA = 0
RELIEF_LABELS = {1: "plains", 2: "hills", 3: "mountains"}


@dataclass
class ZoneRule:
    """How zones are derived from a DEM."""
    method: str = "relief"  # "relief" or "kmeans"
    radius_m: float = 5000.0
    thresholds_m: Sequence[float] = (50.0, 300.0)
    n_clusters: int = 3
    seed: int = 42


def local_relief(dem: np.ndarray, radius_px: float) -> np.ndarray:
    """Highest minus lowest elevation within a circular ``radius_px`` (NaN outside the DEM)."""
    from scipy import ndimage

    r = max(int(math.floor(radius_px)), 1)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy * yy + xx * xx) <= radius_px * radius_px + 1e-9
    valid = np.isfinite(dem)
    hi = ndimage.maximum_filter(np.where(valid, dem, -np.inf), footprint=disk, mode="nearest")
    lo = ndimage.minimum_filter(np.where(valid, dem, np.inf), footprint=disk, mode="nearest")
    out = (hi - lo).astype(np.float32)
    out[~valid] = np.nan
    return out


def relief_classes(relief: np.ndarray, thresholds_m: Sequence[float] = (50.0, 300.0)) -> np.ndarray:
    """1 = plains (< first threshold), 2 = hills, 3 = mountains (≥ second); 0 where relief is NaN."""
    lo, hi = float(thresholds_m[0]), float(thresholds_m[1])
    if not lo < hi:
        raise ValueError(f"relief thresholds must increase, got {lo} and {hi}")
    z = np.where(relief < lo, 1, np.where(relief < hi, 2, 3)).astype(np.uint8)
    z[~np.isfinite(relief)] = ZONE_NODATA
    return z


def kmeans_zones(dem: np.ndarray, relief: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    """Zones 1…k by k-means on standardised (elevation, relief), numbered by rising elevation."""
    from sklearn.cluster import KMeans

    ok = np.isfinite(dem) & np.isfinite(relief)
    z = np.zeros(dem.shape, dtype=np.uint8)
    if ok.sum() < k:
        return z, []
    F = np.column_stack([dem[ok], relief[ok]]).astype(np.float64)
    mu, sd = F.mean(axis=0), F.std(axis=0)
    sd[sd == 0] = 1.0
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit((F - mu) / sd)
    centres = km.cluster_centers_ * sd + mu
    order = np.argsort(centres[:, 0])
    rank = np.empty(k, dtype=np.uint8)
    rank[order] = np.arange(1, k + 1)
    z[ok] = rank[km.labels_]
    info = [{"zone": int(rank[i]), "elevation_m": float(centres[i, 0]), "relief_m": float(centres[i, 1])}
            for i in order]
    return z, info


def decimation_grid(fine: Grid, radius_m: float) -> Grid:
    """A grid over ``fine``'s extent whose pixels are about ``radius_m / 10`` (never finer than ``fine``)."""
    px = min(fine.pixel_size_m())
    k = max(1, int(radius_m / 10.0 // px))
    return Grid(fine.crs_wkt, fine.x0, fine.y0, fine.dx * k, fine.dy * k,
                int(math.ceil(fine.width / k)), int(math.ceil(fine.height / k)))


def derive_zones(dem: np.ndarray, grid: Grid, rule: Optional[ZoneRule] = None) -> tuple[np.ndarray, dict]:
    """Zones of a DEM given on ``grid`` (already decimated, see :func:`decimation_grid`).

    Returns the zone array (uint8, 0 = no DEM) and what was done (rule, pixel counts, cluster centres)
    for the run log and report.
    """
    rule = rule or ZoneRule()
    px = float(np.mean(grid.pixel_size_m()))
    relief = local_relief(dem.astype(np.float32), rule.radius_m / px)
    info: dict = {"method": rule.method, "radius_m": rule.radius_m, "pixel_m": px}
    if rule.method == "relief":
        z = relief_classes(relief, rule.thresholds_m)
        info["thresholds_m"] = [float(t) for t in rule.thresholds_m]
        info["labels"] = {str(k): v for k, v in RELIEF_LABELS.items()}
    elif rule.method == "kmeans":
        z, centres = kmeans_zones(dem, relief, rule.n_clusters, rule.seed)
        info["clusters"] = centres
        info["labels"] = {str(c["zone"]): f"zone {c['zone']} (~{c['elevation_m']:.0f} m, relief {c['relief_m']:.0f} m)"
                          for c in centres}
    else:
        raise ValueError(f"unknown zone method '{rule.method}' (relief or kmeans)")
    info["pixels"] = {str(int(v)): int(n) for v, n in zip(*np.unique(z[z > 0], return_counts=True))}
    return z, info


def zones_on(zones: np.ndarray, zone_grid: Grid, target: Grid, window=None) -> np.ndarray:
    """Zone of each pixel of ``target`` (or of ``window`` of it): the zone-grid pixel its centre falls in
    (both grids in the same CRS; 0 outside the zone grid)."""
    xs, ys = target.centers(window)
    col = np.floor((xs - zone_grid.x0) / zone_grid.dx).astype(np.int64)
    row = np.floor((zone_grid.y0 - ys) / zone_grid.dy).astype(np.int64)
    out = np.zeros((ys.size, xs.size), dtype=np.uint8)
    ci = (col >= 0) & (col < zone_grid.width)
    ri = (row >= 0) & (row < zone_grid.height)
    out[np.ix_(ri, ci)] = zones[np.ix_(row[ri], col[ci])]
    return out


def rasterize_polygons(vector_path: str, field: str, path: str, layer: Optional[str] = None,
                       max_pixels: int = 1000) -> tuple[str, dict[int, str]]:
    """Burn a polygon layer's zone field into a class GeoTIFF (zone codes 1…n, 0 = outside).

    Numeric fields keep their positive integer values; any other field (names of basins, units…)
    gets codes 1…n in sorted order. The raster covers the layer's extent in its own CRS with at most
    ``max_pixels`` pixels on its longer side (zones are broad; the scene then takes the nearest
    class). Returns the path and ``{code: label}``.
    """
    from osgeo import gdal, ogr

    gdal.UseExceptions()
    src = ogr.Open(vector_path)
    lay = src.GetLayerByName(layer) if layer else src.GetLayer(0)
    if lay is None:
        raise ValueError(f"{vector_path} has no layer {layer!r}")
    defn = lay.GetLayerDefn()
    idx = defn.GetFieldIndex(field)
    if idx < 0:
        names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
        raise ValueError(f"the layer has no field '{field}' (fields: {', '.join(names)})")
    numeric = defn.GetFieldDefn(idx).GetType() in (ogr.OFTInteger, ogr.OFTInteger64, ogr.OFTReal)
    values = sorted({f.GetField(idx) for f in lay if f.GetField(idx) is not None}, key=str)
    lay.ResetReading()
    if numeric:
        codes = {v: int(v) for v in values if int(v) > 0}
    else:
        codes = {v: i + 1 for i, v in enumerate(values)}
    xmin, xmax, ymin, ymax = lay.GetExtent()
    step = max(xmax - xmin, ymax - ymin) / max_pixels
    width, height = max(1, int(math.ceil((xmax - xmin) / step))), max(1, int(math.ceil((ymax - ymin) / step)))
    mem = ogr.GetDriverByName("Memory").CreateDataSource("zones")
    out_lay = mem.CreateLayer("zones", lay.GetSpatialRef(), ogr.wkbMultiPolygon)
    out_lay.CreateField(ogr.FieldDefn("code", ogr.OFTInteger))
    for feat in lay:
        v = feat.GetField(idx)
        if v is None or v not in codes or feat.GetGeometryRef() is None:
            continue
        f = ogr.Feature(out_lay.GetLayerDefn())
        f.SetGeometry(feat.GetGeometryRef().Clone())
        f.SetField("code", codes[v])
        out_lay.CreateFeature(f)
    ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Byte, ["COMPRESS=DEFLATE"])
    ds.SetGeoTransform((xmin, step, 0.0, ymax, 0.0, -step))
    srs = lay.GetSpatialRef()
    if srs is not None:
        ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(0)
    band.Fill(0)
    gdal.RasterizeLayer(ds, [1], out_lay, options=["ATTRIBUTE=code", "ALL_TOUCHED=FALSE"])
    labels = {c: str(v) for v, c in codes.items()}
    # free layers before their data sources (GDAL crashes on a layer whose data source is gone)
    band = ds = None
    out_lay = None
    mem = None
    lay = None
    src = None
    return path, labels
