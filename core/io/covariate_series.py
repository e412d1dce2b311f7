"""A dated covariate series made ready for downscaling: masked, gap-filled, smoothed, written in blocks.

The input is a dated series of one covariate (files or dated bands), or dated reflectance bands
by role from which a spectral index is computed first (``core.inputs.indices``). Every layer is
read on the grid of the first one (warped on the fly if it differs; quality layers by nearest
value), in row blocks holding every date, so time-wise steps see the whole series of each pixel
while memory stays bounded. The output is one float32 GeoTIFF, one band per date (band
description = ISO date), which the downscaling algorithms take as a dated covariate.

Typical use::

    refs = [BandRef(p, 1, os.path.basename(p), parse_date(p)) for p in sorted(glob("ndvi_*.tif"))]
    result = prepare_series(refs, "ndvi_ready.tif", SeriesOptions(max_gap_days=15))
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import Canceled, InputError
from ..inputs.indices import INDEX_BANDS, spectral_index
from ..inputs.series_prep import clip_range, fill_gaps, quality_mask, savitzky_golay_weights, smooth
from ..raster.align import AlignedBand, BandRef, source_grid
from ..raster.grid import Grid
from .output import RasterWriter

#: Reflectance above this (after scaling) means the scale factor is missing.
_MAX_REFLECTANCE = 1.5


@dataclass(frozen=True)
class SeriesOptions:
    """Choices of :func:`prepare_series`; the defaults are the Processing algorithm's.

    Attributes
    ----------
    valid_min, valid_max : float, optional
        Values outside are masked (after the index is computed).
    quality_values : tuple of int
        Quality values kept (empty = any); ``quality_bits``: bits that must be 0.
    max_gap_days : int
        Gaps are filled linearly between valid values at most this many days before and after
        (0 = no filling). The stacking paper uses 15.
    smooth : bool
        Savitzky–Golay smoothing of each pixel's series, ``half_width`` and ``order`` (paper: 5, 4).
    reflectance_scale : float
        Factor turning the reflectance bands into fractions (0.0001 for raw MODIS / Sentinel-2),
        applied on top of the files' own scale factors.
    block_pixels : int
        Pixel budget of one block over all dates.
    """

    valid_min: Optional[float] = None
    valid_max: Optional[float] = None
    quality_values: tuple[int, ...] = ()
    quality_bits: int = 0
    max_gap_days: int = 15
    smooth: bool = True
    half_width: int = 5
    order: int = 4
    reflectance_scale: float = 1.0
    block_pixels: int = 1 << 22


@dataclass
class SeriesResult:
    """What :func:`prepare_series` wrote, with counts over all pixels and dates."""

    path: str
    dates: list[_dt.date]
    grid: Grid
    masked: int = 0
    filled: int = 0
    smoothed: int = 0
    missing: int = 0
    log: list[str] = field(default_factory=list)


def prepare_series(
    series: Optional[Sequence[BandRef]],
    output: str,
    options: Optional[SeriesOptions] = None,
    index: Optional[str] = None,
    bands: Optional[Mapping[str, Sequence[BandRef]]] = None,
    quality: Sequence[BandRef] = (),
    progress: Optional[Callable[[float, str], None]] = None,
    is_canceled: Optional[Callable[[], bool]] = None,
) -> SeriesResult:
    """Mask, gap-fill and smooth a dated series (or the spectral index of dated bands) into ``output``.

    Parameters
    ----------
    series : sequence of BandRef, optional
        The dated covariate (every ref has a ``date``). Not used when ``index`` is given.
    output : str
        GeoTIFF written atomically.
    options : SeriesOptions, optional
    index : {"ndvi", "evi", "ndwi", "nsdsi"}, optional
        Compute this index from ``bands`` first.
    bands : mapping role → sequence of BandRef, optional
        Dated reflectance bands by role (``red``, ``nir``, ``blue``, ``green``, ``swir1``, ``swir2``).
    quality : sequence of BandRef
        Optional dated quality layer, one per date of the series.
    progress, is_canceled : callables, optional
        A cancel raises :class:`core.errors.Canceled` and leaves no file.

    Raises
    ------
    InputError
        Undated or twice-dated layers, roles or quality layers whose dates differ from the
        series, reflectances that look unscaled, a series too short for the smoothing window.
    """
    opts = options or SeriesOptions()
    if index:
        roles = INDEX_BANDS[index.lower()]
        missing = [r for r in roles if not (bands or {}).get(r)]
        if missing:
            raise InputError(problem=f"{index.upper()} needs the {', '.join(missing)} reflectance layer(s).",
                             fix=f"give the {' and '.join(roles)} bands (one layer or dated band per date).")
        by_role = {r: _by_date(bands[r], r) for r in roles}
        dates = sorted(next(iter(by_role.values())))
        for r, refs in by_role.items():
            if sorted(refs) != dates:
                other = sorted(set(dates) ^ set(refs))
                raise InputError(layer=r, problem=f"its dates differ from the {roles[0]} band's "
                                                  f"({', '.join(d.isoformat() for d in other[:3])}…).",
                                 fix="give every band for the same dates.")
        first = by_role[roles[0]][dates[0]]
    else:
        if not series:
            raise InputError(problem="no covariate series was given.", fix="select the dated layers.")
        by_role = {"value": _by_date(series, "series")}
        dates = sorted(by_role["value"])
        first = by_role["value"][dates[0]]
    qual = _by_date(quality, "quality") if quality else {}
    if qual and sorted(qual) != dates:
        raise InputError(layer="quality", problem="its dates differ from the series' dates.",
                         fix="give one quality layer per date of the series (the same dates).")
    weights = savitzky_golay_weights(_days(dates), opts.half_width, opts.order) if opts.smooth else None

    grid = source_grid(first)
    readers = {r: [AlignedBand(refs[d], grid) for d in dates] for r, refs in by_role.items()}
    qreaders = [AlignedBand(qual[d], grid, categorical=True) for d in dates] if qual else []
    days = _days(dates)
    result = SeriesResult(output, dates, grid)
    names = [d.isoformat() for d in dates]
    windows = list(grid.windows(max(grid.width, opts.block_pixels // max(1, len(dates)))))
    with RasterWriter(output, grid, names, {"TIMES": ",".join(names)}) as writer:
        for k, win in enumerate(windows):
            if is_canceled is not None and is_canceled():
                raise Canceled()
            stack = _read_block(readers, win, index, opts)
            if qreaders:
                keep = np.stack([quality_mask(q.read(win), opts.quality_values, opts.quality_bits) for q in qreaders])
                result.masked += int((np.isfinite(stack) & ~keep).sum())
                stack[~keep] = np.nan
            before = np.isfinite(stack)
            stack = clip_range(stack, opts.valid_min, opts.valid_max)
            result.masked += int((before & ~np.isfinite(stack)).sum())
            gaps = ~np.isfinite(stack)
            stack = fill_gaps(stack, days, opts.max_gap_days)
            result.filled += int((gaps & np.isfinite(stack)).sum())
            if weights is not None:
                stack, applied = smooth(stack, weights)
                result.smoothed += int(applied.sum())
            result.missing += int((~np.isfinite(stack)).sum())
            for b in range(len(dates)):
                writer.write(b, win, stack[b])
            if progress is not None:
                progress((k + 1) / len(windows), "")
        writer.commit()
    total = grid.size * len(dates)
    result.log.append(f"{len(dates)} dates ({dates[0].isoformat()} … {dates[-1].isoformat()}) on a "
                      f"{grid.width}×{grid.height} grid; of {total} pixel-dates: {result.masked} masked, "
                      f"{result.filled} filled (gaps ≤ {opts.max_gap_days} days each side), "
                      f"{result.smoothed} smoothed, {result.missing} left empty")
    return result


def _read_block(readers: Mapping[str, Sequence[AlignedBand]], win, index: Optional[str], opts: SeriesOptions) -> np.ndarray:
    if not index:
        return np.stack([r.read(win) for r in readers["value"]]).astype(np.float64)
    n = len(next(iter(readers.values())))
    planes = []
    for t in range(n):
        refl = {}
        for role, rs in readers.items():
            a = rs[t].read(win).astype(np.float64) * opts.reflectance_scale
            top = np.nanmax(a) if np.isfinite(a).any() else 0.0
            if top > _MAX_REFLECTANCE:
                raise InputError(layer=rs[t].ref.label,
                                 problem=f"reflectance values up to {top:g}: these look like scaled integers, not fractions.",
                                 fix="set the reflectance scale factor (0.0001 for MODIS and Sentinel-2 surface reflectance).")
            refl[role] = a
        planes.append(spectral_index(index, refl))
    return np.stack(planes).astype(np.float64)


def _by_date(refs: Sequence[BandRef], what: str) -> dict[_dt.date, BandRef]:
    out: dict[_dt.date, BandRef] = {}
    for r in refs:
        if r.date is None:
            raise InputError(layer=r.label, problem=f"this {what} layer has no date.",
                             fix="put the date in the file name (…_20180105.tif) or in the band description (YYYY-MM-DD).")
        if r.date in out:
            raise InputError(layer=r.label, problem=f"its date {r.date.isoformat()} is also the date of '{out[r.date].label}'.",
                             fix="give each date once.")
        out[r.date] = r
    return out


def _days(dates: Sequence[_dt.date]) -> np.ndarray:
    return np.array([d.toordinal() for d in dates], dtype=np.float64)
