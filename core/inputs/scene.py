"""A downscaling scene: the coarse soil-moisture series, the covariates and the two grids.

The scene turns whatever the user has — layers in any CRS, resolution and extent, static or
dated — into features on one fine (target) grid, read block by block, and into their
aggregates on the coarse grid of the soil-moisture product (the training view).

Feature names a scene provides (methods and model cards refer to them):
``lst, ndvi, et, precipitation, sand, clay, ph, dem, land_cover, other`` (the roles; several
layers of one role are named after their layers, see :func:`covariate_feature_names`), ``slope`` and ``mtpi`` (derived from the DEM),
``doy`` (day of year), ``sm_coarse`` (the soil moisture of the coarse cell holding the pixel),
``lat`` and ``lon`` (WGS84 pixel centre).
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from ..raster.aggregate import CellAccumulator, CellModeAccumulator
from ..raster.align import AlignedBand, BandRef, read_full, source_grid
from .dates import day_of_year, nearest_earlier
from ..errors import Canceled, InputError
from ..raster.grid import (Grid, Window, bilinear_from_cells, cell_index, crs_to_wkt, intersect, same_crs, snap_grid,
                   srs_from_wkt, transform_bounds)
from .roles import ROLE_INFO, Role
from ..raster.terrain import focal_mean, mtpi_radii_px, slope_degrees
from .units import check_layer

Progress = Callable[[float, str], None]
IsCanceled = Callable[[], bool]

TERRAIN_FEATURES = ("slope", "mtpi")
_LOCAL_RADIUS_MAX_PX = 48

#: Largest fine grid (pixels) a scene accepts unless told otherwise: a mistyped resolution (100× too
#: fine) gives 10 000× the pixels, and hours of work, before anyone notices.
DEFAULT_MAX_PIXELS = 100_000_000
#: Throughput used for the time estimate in that message: fine pixels per second and date of the
#: regression method with gradient boosting on a 2-core machine (benchmarks/downscale_scaling.py).
TYPICAL_PIXELS_PER_SECOND = 0.25e6


@dataclass
class LayerInput:
    """A covariate layer: one undated band (static) or one band per date (a time series)."""

    role: Role
    name: str
    bands: list[BandRef]
    categorical: Optional[bool] = None

    @property
    def is_categorical(self) -> bool:
        return ROLE_INFO[self.role].categorical if self.categorical is None else self.categorical

    @property
    def is_dynamic(self) -> bool:
        return any(b.date is not None for b in self.bands)


@dataclass
class SceneSpec:
    """What the user gave: coarse soil moisture (one band per date) and covariate layers."""

    soil_moisture: list[BandRef]
    covariates: list[LayerInput] = field(default_factory=list)
    crs: Optional[str] = None
    resolution: Optional[float] = None
    #: Pixel height when it differs from the width (e.g. a 0.140625° × 0.09375° lattice); None = square.
    resolution_y: Optional[float] = None
    derive_terrain: bool = True
    tolerance_days: int = 8
    check_units: bool = True
    #: Optional area of interest (xmin, ymin, xmax, ymax) in the target CRS.
    extent: Optional[tuple[float, float, float, float]] = None
    #: Set for covariate-only scenes (alignment): the fine grid then comes from the covariates.
    allow_no_soil_moisture: bool = False
    #: Largest fine grid in pixels (``None``: no limit); checked before any covariate is read.
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS


@dataclass
class _Feature:
    name: str
    layer: Optional[LayerInput]  # None for derived features
    categorical: bool


class Scene:
    """Inputs resolved onto a coarse and a fine grid, ready to be read block by block."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        sm = list(spec.soil_moisture)
        if not sm and not spec.allow_no_soil_moisture:
            raise InputError(problem="no coarse soil-moisture layer was given.", layer=None, fix="add one.")
        undated = [b for b in sm if b.date is None]
        if undated:
            raise InputError(problem=undated_bands_problem(undated), layer=undated[0].label,
                             fix="name files with YYYYMMDD / YYYY-MM-DD, set band descriptions to dates, "
                             "or give the dates explicitly (Processing: the advanced parameter 'Dates of the "
                             "soil-moisture bands').")
        sm.sort(key=lambda b: b.date)  # type: ignore[arg-type, return-value]
        dups = {b.date for b in sm if sum(c.date == b.date for c in sm) > 1}
        if dups:
            raise InputError(problem=f"the date {min(dups)} appears more than once.", layer=sm[0].label,
                             fix="give each date once.")
        self.sm_bands = sm
        self.dates: list[_dt.date] = [b.date for b in sm]  # type: ignore[misc]
        if not spec.covariates:
            raise InputError(problem="no fine-resolution covariate was given.", layer=None,
                             fix="add at least one covariate (e.g. a DEM, NDVI or LST layer).")
        if spec.check_units:
            for b in sm:
                check_layer(Role.SOIL_MOISTURE, b)
            for lay in spec.covariates:
                for b in lay.bands:
                    check_layer(lay.role, b)
        self._build_grids()
        self._check_size()
        self._build_features()

    def _check_size(self) -> None:
        """Refuse a fine grid above :attr:`SceneSpec.max_pixels`, with the time and disk it would take."""
        limit = self.spec.max_pixels
        px = self.fine.width * self.fine.height
        if limit is None or limit <= 0 or px <= limit:
            return
        n_dates = max(1, len(self.dates))
        hours = px * n_dates / TYPICAL_PIXELS_PER_SECOND / 3600.0
        disk = 4.0 * px * n_dates * 4 / 3
        raise InputError(
            problem=f"The target grid would be {self.fine.width} × {self.fine.height} = {_millions(px)} million "
            f"pixels of {self.fine.dx:g} (in the target CRS's units), above the limit of {_millions(limit)} million: "
            f"for {n_dates} date(s) expect roughly {_duration(hours)} of computing (at "
            f"{TYPICAL_PIXELS_PER_SECOND / 1e6:g} million pixels per second and date) and up to "
            f"{disk / 1e9:,.3g} GB of output.",
            fix="check the target resolution (it is in the units of the target CRS: metres, or degrees for "
            "EPSG:4326) or cut the area of interest; if you mean it, raise the limit (Processing: the advanced "
            "parameter 'Largest target grid (million pixels)', 0 = no limit).")

    # ------------------------------------------------------------------ grids
    def _build_grids(self) -> None:
        spec = self.spec
        sm_grids = [source_grid(b) for b in self.sm_bands]
        for b, g in zip(self.sm_bands[1:], sm_grids[1:]):
            g0 = sm_grids[0]
            if (g.width, g.height) != (g0.width, g0.height) or not same_crs(g.crs_wkt, g0.crs_wkt) \
                    or not np.allclose(g.transform, g0.transform, atol=1e-9 * max(1.0, abs(g0.x0))):
                raise InputError(problem="its grid differs from the first soil-moisture date's grid.", layer=b.label,
                                 fix="give dates of one product on one grid.")
        # zone layers (per-zone models) neither set the resolution nor cut the extent: outside them, the
        # global model applies
        grid_layers = [lay for lay in spec.covariates if lay.role is not Role.ZONE] or list(spec.covariates)
        cov_grids = {(lay.name, i): source_grid(b) for lay in grid_layers for i, b in enumerate(lay.bands)}
        finest = cov_grids[min(cov_grids, key=lambda k: _metres(cov_grids[k]))]
        target_wkt = crs_to_wkt(spec.crs) if spec.crs else finest.crs_wkt
        if spec.resolution:
            res = res_y = float(spec.resolution)
        else:  # the finest covariate's pixel, which may be non-square (e.g. 0.140625° × 0.09375°)
            b = transform_bounds(finest.bounds, finest.crs_wkt, target_wkt)
            res = (b[2] - b[0]) / finest.width
            res_y = (b[3] - b[1]) / finest.height
        if spec.resolution_y:
            res_y = float(spec.resolution_y)
        bounds = [(self.sm_bands[0].label, transform_bounds(sm_grids[0].bounds, sm_grids[0].crs_wkt, target_wkt))] \
            if sm_grids else []
        for lay in grid_layers:
            g = cov_grids[(lay.name, 0)]
            bounds.append((lay.name, transform_bounds(g.bounds, g.crs_wkt, target_wkt)))
        if spec.extent is not None:
            bounds.append(("area of interest", tuple(spec.extent)))
        common = intersect([b for _, b in bounds])
        if common is None:
            first = bounds[0][1]
            culprit = next((n for n, b in bounds[1:] if intersect([first, b]) is None), bounds[-1][0])
            raise InputError(problem=f"it does not overlap '{bounds[0][0]}'.", layer=culprit,
                             fix="use layers that cover the same area (check their CRS if they should).")
        self.coarse: Optional[Grid] = None
        if not sm_grids:
            self.fine = snap_grid(common, target_wkt, res, res_y)
            return
        g0 = sm_grids[0]
        if same_crs(g0.crs_wkt, target_wkt):
            coarse_full = g0
            self._sm_native = True
        else:
            sb = transform_bounds(g0.bounds, g0.crs_wkt, target_wkt)
            coarse_full = snap_grid(sb, target_wkt, (sb[2] - sb[0]) / g0.width, (sb[3] - sb[1]) / g0.height)
            self._sm_native = False
        # coarse cells that overlap the common extent
        c0 = max(0, int(math.floor((common[0] - coarse_full.x0) / coarse_full.dx + 1e-9)))
        c1 = min(coarse_full.width, int(math.ceil((common[2] - coarse_full.x0) / coarse_full.dx - 1e-9)))
        r0 = max(0, int(math.floor((coarse_full.y0 - common[3]) / coarse_full.dy + 1e-9)))
        r1 = min(coarse_full.height, int(math.ceil((coarse_full.y0 - common[1]) / coarse_full.dy - 1e-9)))
        self.coarse = Grid(target_wkt, coarse_full.x0 + c0 * coarse_full.dx, coarse_full.y0 - r0 * coarse_full.dy,
                           coarse_full.dx, coarse_full.dy, c1 - c0, r1 - r0)
        self._coarse_offset = (r0, c0)
        if res >= self.coarse.dx or res_y >= self.coarse.dy:
            raise InputError(problem=f"the target resolution {res:g} is not finer than the soil-moisture product's "
                             f"{self.coarse.dx:g}.", layer=self.sm_bands[0].label,
                             fix="choose a finer target resolution.")
        self.fine = snap_grid(common, target_wkt, res, res_y, anchor=(self.coarse.x0, self.coarse.y0))

    # ------------------------------------------------------------------ features
    def _build_features(self) -> None:
        self._features: list[_Feature] = []
        self._dem: Optional[LayerInput] = None
        for lay, name in zip(self.spec.covariates, covariate_feature_names(self.spec.covariates)):
            self._features.append(_Feature(name, lay, lay.is_categorical))
            if lay.role is Role.DEM and self._dem is None:
                if lay.is_dynamic:
                    raise InputError(problem="a DEM cannot be a time series.", layer=lay.name, fix="give one elevation band.")
                self._dem = lay
        self._terrain: Optional[_TerrainDeriver] = None
        if self.spec.derive_terrain and self._dem is not None:
            self._terrain = _TerrainDeriver(self._dem.bands[0], self.fine)
            for t in TERRAIN_FEATURES:
                self._features.append(_Feature(t, None, False))
        self._aligned: dict[tuple[str, int], AlignedBand] = {}
        # which band of each dynamic layer serves each date
        self._band_for_date: dict[str, list[int]] = {}
        for f in self._features:
            if f.layer is None or not f.layer.is_dynamic:
                continue
            cands = [b.date for b in f.layer.bands]
            picks = []
            for d in self.dates:
                i = nearest_earlier(d, cands, self.spec.tolerance_days)
                if i is None:
                    raise InputError(problem=f"no date on or up to {self.spec.tolerance_days} days before {d}.",
                                     layer=f.layer.name, fix="add that date, or raise the date tolerance.")
                picks.append(i)
            self._band_for_date[f.name] = picks
        self._sm_cache: dict[int, np.ndarray] = {}

    @property
    def covariate_names(self) -> list[str]:
        """Names of the covariate features (layers and derived terrain), in a fixed order."""
        return [f.name for f in self._features]

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self._features if f.categorical]

    def feature_layer_name(self, name: str) -> str:
        f = next(f for f in self._features if f.name == name)
        return f.layer.name if f.layer is not None else f"{name} (derived from {self._dem.name if self._dem else 'DEM'})"

    def _aligned_band(self, f: _Feature, i: int) -> AlignedBand:
        key = (f.name, i)
        if key not in self._aligned:
            self._aligned[key] = AlignedBand(f.layer.bands[i], self.fine, f.categorical)  # type: ignore[union-attr]
        return self._aligned[key]

    def feature_layer(self, name: str) -> Optional[LayerInput]:
        """The layer a feature is read from (``None`` for derived terrain)."""
        return next(f.layer for f in self._features if f.name == name)

    def read_band(self, name: str, i: int, window: Window) -> np.ndarray:
        """Band ``i`` of feature ``name``'s layer on the fine grid."""
        f = next(f for f in self._features if f.name == name)
        return self._aligned_band(f, i).read(window)

    def band_index(self, name: str, t: int) -> int:
        picks = self._band_for_date.get(name)
        return 0 if picks is None else picks[t]

    # ------------------------------------------------------------------ reading
    def coarse_sm(self, t: int) -> np.ndarray:
        """Coarse soil moisture of date ``t`` on the coarse grid, flat (``coarse.size``), NaN = none."""
        if t not in self._sm_cache:
            ref = self.sm_bands[t]
            if self._sm_native:
                a, _ = read_full(ref)
                r0, c0 = self._coarse_offset
                a = a[r0:r0 + self.coarse.height, c0:c0 + self.coarse.width]
            else:
                a = AlignedBand(ref, self.coarse, resampling="near").read()
            self._sm_cache[t] = np.ascontiguousarray(a, dtype=np.float32).ravel()
        return self._sm_cache[t]

    def cell_index(self, window: Window) -> np.ndarray:
        return cell_index(self.fine, self.coarse, window)

    def static_block(self, window: Window) -> dict[str, np.ndarray]:
        """The features that do not change with the date, for one block."""
        out: dict[str, np.ndarray] = {}
        for f in self._features:
            if f.layer is not None and not f.layer.is_dynamic:
                out[f.name] = self._aligned_band(f, 0).read(window)
        if self._terrain is not None:
            out.update(self._terrain.read(window))
        return out

    def features(self, t: int, window: Window, static: Optional[dict[str, np.ndarray]] = None,
                 extra: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """All covariate features of date ``t`` for ``window`` (+ ``doy`` and any of ``extra``:
        ``sm_coarse``, ``lat``, ``lon``)."""
        out = dict(static if static is not None else self.static_block(window))
        for f in self._features:
            if f.layer is not None and f.layer.is_dynamic:
                out[f.name] = self._aligned_band(f, self.band_index(f.name, t)).read(window)
        shape = (window.nrows, self.fine.width)
        out["doy"] = np.full(shape, day_of_year(self.dates[t]), dtype=np.float32)
        if "sm_coarse" in extra:
            idx = self.cell_index(window)
            sm = self.coarse_sm(t)
            out["sm_coarse"] = np.where(idx >= 0, sm[np.maximum(idx, 0)], np.nan).astype(np.float32)
        if "lat" in extra or "lon" in extra:
            lon, lat = self.lonlat(window)
            out["lat"], out["lon"] = lat, lon
        return out

    def lonlat(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude (WGS 84, float32) of the pixel centres of ``window``.

        Through pyproj when it is installed (QGIS ships it; the same PROJ as GDAL's, vectorised:
        ~5× faster than OSR's list of tuples), else through OSR.
        """
        xs, ys = self.fine.centers(window)
        X, Y = np.meshgrid(xs, ys)
        try:
            import pyproj
        except ImportError:
            pyproj = None
        if pyproj is not None:
            src_crs = pyproj.CRS.from_wkt(self.fine.crs_wkt)
            if src_crs.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
                return X.astype(np.float32), Y.astype(np.float32)
            lon, lat = pyproj.Transformer.from_crs(src_crs, "EPSG:4326", always_xy=True).transform(X, Y)
            return np.asarray(lon).astype(np.float32), np.asarray(lat).astype(np.float32)
        wgs = osr.SpatialReference()
        wgs.ImportFromEPSG(4326)
        wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        src = srs_from_wkt(self.fine.crs_wkt)
        if src.IsSame(wgs):
            return X.astype(np.float32), Y.astype(np.float32)
        ct = osr.CoordinateTransformation(src, wgs)
        pts = np.array(ct.TransformPoints(np.column_stack([X.ravel(), Y.ravel()])))
        return pts[:, 0].reshape(X.shape).astype(np.float32), pts[:, 1].reshape(X.shape).astype(np.float32)

    # ------------------------------------------------------------------ training view
    def training_view(self, block_pixels: int = 1 << 20, progress: Optional[Progress] = None,
                      is_canceled: Optional[IsCanceled] = None,
                      bands: Optional[set[tuple[str, int]]] = None,
                      grid: Optional[Grid] = None) -> dict[tuple[str, int], np.ndarray]:
        """Every covariate aggregated onto the coarse grid (or onto ``grid``, any grid of the same CRS
        coarser than the fine one), in one streaming pass.

        Continuous features take the mean of the fine pixels in each coarse cell, categorical
        ones the majority class. Returns ``{(feature, band_index): flat coarse array}``;
        static features have band index 0.
        """
        onto = grid or self.coarse
        needed: dict[str, set[int]] = {f.name: set(self._band_for_date.get(f.name, [0])) for f in self._features}
        acc: dict[tuple[str, int], object] = {}
        for f in self._features:
            for i in needed[f.name]:
                acc[(f.name, i)] = (CellModeAccumulator if f.categorical else CellAccumulator)(onto.size)
        windows = list(self.fine.windows(block_pixels))
        for k, w in enumerate(windows):
            if is_canceled is not None and is_canceled():
                raise Canceled()
            idx = cell_index(self.fine, onto, w)
            static = self.static_block(w)
            for f in self._features:
                for i in needed[f.name]:
                    v = static[f.name] if f.name in static else self._aligned_band(f, i).read(w)
                    acc[(f.name, i)].add(v, idx)  # type: ignore[attr-defined]
            if progress is not None:
                progress((k + 1) / len(windows), "aggregating covariates to the coarse grid")
        return {key: (a.mode() if isinstance(a, CellModeAccumulator) else a.mean()).astype(np.float32)
                for key, a in acc.items()}

    def coarse_features(self, view: dict[tuple[str, int], np.ndarray], t: int) -> dict[str, np.ndarray]:
        """Covariates of date ``t`` on the coarse grid (from :meth:`training_view`) + ``doy``."""
        out = {f.name: view[(f.name, self.band_index(f.name, t))] for f in self._features}
        out["doy"] = np.full(self.coarse.size, day_of_year(self.dates[t]), dtype=np.float32)
        return out

    def summary_lines(self) -> list[str]:
        """Dates, grids and covariates in two lines for a run log."""
        d = self.describe()
        return [f"{len(self.dates)} dates {d['dates'][0]} … {d['dates'][-1]}; fine grid "
                f"{self.fine.width}×{self.fine.height} px of {self.fine.dx:g} in {d['crs']}; "
                f"coarse grid {self.coarse.width}×{self.coarse.height} cells of {self.coarse.dx:g}",
                "Covariates: " + ", ".join(f"{k} ← {v}" for k, v in d["covariates"].items())]

    def describe(self) -> dict:
        """A JSON-able summary for run logs."""
        srs = srs_from_wkt(self.fine.crs_wkt)
        auth = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
        return {
            "crs": f"{auth[0]}:{auth[1]}" if all(auth) else self.fine.crs_wkt,
            "fine_grid": {"x0": self.fine.x0, "y0": self.fine.y0, "dx": self.fine.dx, "dy": self.fine.dy,
                          "width": self.fine.width, "height": self.fine.height},
            "coarse_grid": None if self.coarse is None else {
                "x0": self.coarse.x0, "y0": self.coarse.y0, "dx": self.coarse.dx, "dy": self.coarse.dy,
                "width": self.coarse.width, "height": self.coarse.height},
            "dates": [d.isoformat() for d in self.dates],
            "soil_moisture": [b.path if b.band == 1 else f"{b.path}#{b.band}" for b in self.sm_bands],
            "covariates": {f.name: (self.feature_layer_name(f.name)) for f in self._features},
        }


#: Feature names a covariate layer can never take (derived features and what every scene provides).
RESERVED_FEATURES = frozenset(TERRAIN_FEATURES + ("doy", "sm_coarse", "lat", "lon")) | {r.value for r in Role}


def feature_key(text: str) -> str:
    """A layer name as a feature name: lower case, runs of other characters as ``_``.

    >>> feature_key("Valley depth (m)")
    'valley_depth_m'
    """
    return re.sub(r"[^a-z0-9]+", "_", (text or "").lower()).strip("_")


def covariate_feature_names(layers: Sequence[LayerInput]) -> list[str]:
    """The feature name of each covariate layer.

    The only layer of its role is named after the role (``ndvi``, ``other``): model cards and
    saved models refer to those names. Several layers of one role are named after their layers:
    ``<role>_<layer>`` (``sand_topsoil``), and under *Other* the layer name alone (``twi``,
    ``field_capacity``: an ensemble input of that name is fed by it), prefixed with ``other_``
    where it would clash with a role or a derived feature. Repeats get ``_2``, ``_3``…
    """
    per_role: dict[Role, int] = {}
    for lay in layers:
        per_role[lay.role] = per_role.get(lay.role, 0) + 1
    names: list[str] = []
    for lay in layers:
        if per_role[lay.role] == 1:
            name = lay.role.value
        else:
            key = feature_key(lay.name) or "layer"
            if lay.role is Role.OTHER:
                name = key if key not in RESERVED_FEATURES and not key[0].isdigit() else f"other_{key}"
            else:
                name = f"{lay.role.value}_{key}"
        unique, k = name, 1
        while unique in names:
            k += 1
            unique = f"{name}_{k}"
        names.append(unique)
    return names


def undated_bands_problem(refs: Sequence[BandRef]) -> str:
    """Plain words for soil-moisture bands without a date: each band, its description and file name."""
    items = []
    for r in refs[:5]:
        desc = _band_description(r)
        items.append(f"band {r.band} of '{os.path.basename(r.path)}' (description "
                     + (f"'{desc}'" if desc else "empty") + ")")
    more = f" and {len(refs) - 5} more" if len(refs) > 5 else ""
    return (f"{len(refs)} band(s) have no date: " + ", ".join(items) + more + ". No YYYYMMDD, YYYY-MM-DD or "
            "YYYY_MM_DD date could be read in these band descriptions, nor in the file names.")


def _band_description(ref: BandRef) -> str:

    try:
        ds = gdal.Open(ref.path)
        desc = ds.GetRasterBand(ref.band).GetDescription() or ""
        ds = None
        return desc
    except RuntimeError:
        return ""


def _millions(n: float) -> str:
    return f"{n / 1e6:,.0f}" if n >= 1e7 else f"{n / 1e6:.3g}"


def _duration(hours: float) -> str:
    if hours < 1:
        minutes = max(1, round(hours * 60))
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    return f"{hours:,.0f} hours" if hours < 48 else f"{hours / 24:,.0f} days"


def _metres(g: Grid) -> float:
    return min(g.pixel_size_m())


class _TerrainDeriver:
    """Slope and multi-scale TPI on the fine grid, block by block.

    Small radii are computed on the block plus a halo of rows; radii wider than
    ``_LOCAL_RADIUS_MAX_PX`` pixels on a decimated copy of the DEM (whose size is the grid's
    divided by the decimation factor squared), interpolated back bilinearly — so memory stays
    bounded even for the 116 km radius of the mTPI on a 30 m grid.
    """

    def __init__(self, dem: BandRef, fine: Grid) -> None:
        self.fine = fine
        self.dem = AlignedBand(dem, fine, categorical=False)
        self.dx_m, self.dy_m = fine.pixel_size_m()
        px = (self.dx_m + self.dy_m) / 2
        radii_px = mtpi_radii_px(px)
        self.radii_local = [r for r in radii_px if r <= _LOCAL_RADIUS_MAX_PX]
        self.radii_global = [r for r in radii_px if r > _LOCAL_RADIUS_MAX_PX]
        self.halo = int(math.ceil(max(self.radii_local + [1.0]))) + 1
        self._global: list[tuple[Grid, np.ndarray]] = []
        for r in self.radii_global:
            k = int(math.ceil(r / 24.0))
            g = Grid(fine.crs_wkt, fine.x0, fine.y0, fine.dx * k, fine.dy * k,
                     int(math.ceil(fine.width / k)), int(math.ceil(fine.height / k)))
            small = AlignedBand(dem, g, resampling="average").read()
            self._global.append((g, focal_mean(small, r / k)))

    def read(self, window: Window) -> dict[str, np.ndarray]:
        r0 = max(0, window.row0 - self.halo)
        r1 = min(self.fine.height, window.row0 + window.nrows + self.halo)
        dem = self.dem.read(Window(r0, r1 - r0))
        cut = slice(window.row0 - r0, window.row0 - r0 + window.nrows)
        slope = slope_degrees(dem, self.dx_m, self.dy_m)[cut]
        acc = np.zeros((window.nrows, self.fine.width), dtype=np.float64)
        core_dem = dem[cut].astype(np.float64)
        for r in self.radii_local:
            acc += core_dem - focal_mean(dem, r)[cut]
        for g, fm in self._global:
            acc += core_dem - bilinear_from_cells(fm, self.fine, g, window)
        n = len(self.radii_local) + len(self._global)
        mt = (acc / max(n, 1)).astype(np.float32)
        mt[~np.isfinite(core_dem)] = np.nan
        return {"slope": slope, "mtpi": mt}
