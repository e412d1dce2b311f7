"""Guess which role each raster layer plays, from its name, file name, metadata and values.

QGIS-free: the dock describes each layer as :class:`LayerFacts` and pre-fills its pickers with
:func:`guess_roles` (the user corrects what is wrong); *Check soil-moisture inputs* (toolbox and
``smds check``) guesses the role of an unassigned layer with :func:`guess_role` for its unit checks.

Cues, in order (first match wins):

* coarse soil moisture — ``SMAP``, ``ESA CCI``, ``SMOS``, ``ASCAT``, ``AMSR``, a ``sm`` word
  (``…_sm_…``), "soil moisture" — but only for coarse pixels (≥ 3 km) and never for a product
  this plugin wrote (its GeoTIFF metadata has ``METHOD``);
* land cover — ``landcover``/``land_cover``, ``nlcd``, ``lc``, ``lulc``, ``corine``, ``worldcover``, ``mcd12``;
* NDVI — ``ndvi``, ``mod13``/``myd13``; LST — ``lst``, ``mod11``/``myd11``, "land surface temperature";
* ET — ``et``, ``eta``, ``evapotranspiration``, ``mod16``; precipitation — ``precip…``, ``prcp``,
  ``rain…``, ``chirps``, ``imerg``, ``gpm``, ``ppt``;
* sand, clay, pH (``ph``, ``phh2o``);
* DEM — ``dem``, ``dtm``, ``elev…``, ``srtm``, ``gmted``, ``altitude``, ``height``;
  failing any name cue, one single-band layer whose values look like elevations in metres
  (between −500 and 9000, spanning more than 5 m, with at least one value above 100).

Example
-------
>>> guess_role(LayerFacts("ESA_CCI_SM_v45_Delaware_20180101", pixel_size=0.25, geographic=True))
<Role.SOIL_MOISTURE: 'soil_moisture'>
>>> guess_role(LayerFacts("srtm_30m")).value
'dem'
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from .dates import parse_date
from .roles import Role

#: Roles that take several layers (a time series, or several "other" covariates).
MULTI_LAYER_ROLES: frozenset[Role] = frozenset(
    {Role.SOIL_MOISTURE, Role.NDVI, Role.LST, Role.ET, Role.PRECIPITATION, Role.OTHER})

_DATE_RE = re.compile(r"(?<!\d)\d{4}[-_]?\d{2}[-_]?\d{2}(?!\d)")

#: Coarse soil moisture has pixels at least this large (metres); finer layers are not guessed as it.
MIN_COARSE_PIXEL_M = 3000.0

_WORD_CUES: tuple[tuple[Role, frozenset[str]], ...] = (
    (Role.SOIL_MOISTURE, frozenset({"sm", "smap", "smos", "ascat", "amsr", "amsr2", "soilmoisture", "esacci", "ssm"})),
    (Role.LAND_COVER, frozenset({"landcover", "nlcd", "lc", "lulc", "corine", "worldcover", "mcd12q1", "mcd12",
                                 "cdl"})),
    (Role.NDVI, frozenset({"ndvi", "mod13a1", "mod13a2", "mod13q1", "myd13a1", "myd13a2", "myd13q1", "mod13",
                           "myd13"})),
    (Role.LST, frozenset({"lst", "mod11a1", "mod11a2", "myd11a1", "myd11a2", "mod11", "myd11"})),
    (Role.ET, frozenset({"et", "eta", "evapotranspiration", "mod16a2", "mod16"})),
    (Role.PRECIPITATION, frozenset({"precip", "precipitation", "prcp", "rain", "rainfall", "chirps", "imerg",
                                    "gpm", "ppt"})),
    (Role.SAND, frozenset({"sand"})),
    (Role.CLAY, frozenset({"clay"})),
    (Role.PH, frozenset({"ph", "phh2o"})),
    (Role.DEM, frozenset({"dem", "dtm", "elev", "elevation", "srtm", "gmted", "altitude", "height", "copdem",
                          "nasadem"})),
)
#: Pairs of consecutive words that name a role.
_PAIR_CUES: tuple[tuple[Role, tuple[str, str]], ...] = (
    (Role.SOIL_MOISTURE, ("soil", "moisture")),
    (Role.SOIL_MOISTURE, ("esa", "cci")),
    (Role.LAND_COVER, ("land", "cover")),
    (Role.LAND_COVER, ("land", "use")),
    (Role.LST, ("surface", "temperature")),
)
#: Word prefixes that name a role (``elevation_1km`` → ``elevation``).
_PREFIX_CUES: tuple[tuple[Role, str], ...] = (
    (Role.PRECIPITATION, "precip"), (Role.PRECIPITATION, "rain"), (Role.DEM, "elev"),
)


@dataclass(frozen=True)
class LayerFacts:
    """What the dock knows about a raster layer, without opening it again.

    Attributes
    ----------
    name : str
        Layer name in the project.
    source : str
        File path (or GDAL source string).
    band_count : int
    band_descriptions : tuple of str
    pixel_size : float, optional
        Pixel width in CRS units (degrees when ``geographic``).
    geographic : bool
        The CRS is in degrees.
    value_range : (float, float), optional
        Minimum and maximum of band 1 (scale/offset applied), if known.
    keywords : str
        Title, abstract and keywords of the layer metadata, as free text.
    metadata : mapping
        GDAL dataset metadata (``METHOD`` marks a product this plugin wrote).
    """

    name: str
    source: str = ""
    band_count: int = 1
    band_descriptions: tuple[str, ...] = ()
    pixel_size: Optional[float] = None
    geographic: bool = False
    value_range: Optional[tuple[float, float]] = None
    keywords: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def pixel_size_m(self) -> Optional[float]:
        if self.pixel_size is None:
            return None
        return self.pixel_size * 111_000.0 if self.geographic else self.pixel_size

    @property
    def is_our_product(self) -> bool:
        return "METHOD" in self.metadata


def words(text: str) -> list[str]:
    """Lower-case words of a name: split at non-letters/digits and camelCase; dates dropped.

    >>> words("ESA_CCI_SM_v45_Delaware_20180101.tif")
    ['esa', 'cci', 'sm', 'v45', 'delaware', 'tif']
    >>> words("NDVI-MOD13A2 2018")
    ['ndvi', 'mod13a2', '2018']
    """
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text or "")
    out = []
    for w in re.split(r"[^0-9A-Za-z]+", spaced):
        w = w.lower()
        if w and not (len(w) == 8 and w.isdigit() and parse_date(w)):
            out.append(w)
    return out


def _name_role(text: str) -> Optional[Role]:
    ws = words(text)
    for role, pair in _PAIR_CUES:
        if any(ws[i:i + 2] == list(pair) for i in range(len(ws) - 1)):
            return role
    found = set(ws)
    for role, cues in _WORD_CUES:
        if found & cues:
            return role
    for role, prefix in _PREFIX_CUES:
        if any(w.startswith(prefix) for w in ws):
            return role
    return None


def guess_role(facts: LayerFacts) -> Optional[Role]:
    """The role its name, file name or metadata suggest, or ``None`` (values are judged by
    :func:`guess_roles`, which sees all layers)."""
    base = os.path.splitext(os.path.basename(facts.source))[0] if facts.source else ""
    for text in (facts.name, base, facts.keywords):
        role = _name_role(text)
        if role is Role.SOIL_MOISTURE and (facts.is_our_product or
                                           (facts.pixel_size_m is not None and facts.pixel_size_m < MIN_COARSE_PIXEL_M)):
            continue  # a fine soil-moisture product, not the coarse input
        if role is not None:
            return role
    return None


def looks_like_elevation(facts: LayerFacts) -> bool:
    """Single band with values like elevations in metres (−500 … 9000, some above 100 m)."""
    if facts.band_count != 1 or facts.value_range is None:
        return False
    lo, hi = facts.value_range
    return -500.0 <= lo and hi <= 9000.0 and hi - lo > 5.0 and hi > 100.0


def guess_roles(layers: Sequence[LayerFacts]) -> dict[Role, list[int]]:
    """Indices of ``layers`` to pre-select for each role.

    Roles of :data:`MULTI_LAYER_ROLES` get every layer that matches; the others the first
    match only. A layer gets at most one role. Without a named DEM, the first single-band
    layer whose values look like elevations is taken as the DEM.

    >>> layers = [LayerFacts("SMAP_20180101", pixel_size=9000), LayerFacts("SMAP_20180102", pixel_size=9000),
    ...           LayerFacts("NDVI_2018"), LayerFacts("unnamed", value_range=(0.0, 310.0))]
    >>> {r.value: i for r, i in guess_roles(layers).items()}
    {'soil_moisture': [0, 1], 'ndvi': [2], 'dem': [3]}
    """
    out: dict[Role, list[int]] = {}
    taken: set[int] = set()
    for i, facts in enumerate(layers):
        role = guess_role(facts)
        if role is None or (role not in MULTI_LAYER_ROLES and role in out):
            continue
        out.setdefault(role, []).append(i)
        taken.add(i)
    if Role.DEM not in out:
        for i, facts in enumerate(layers):
            if i not in taken and guess_role(facts) is None and looks_like_elevation(facts):
                out[Role.DEM] = [i]
                break
    return out


def layer_dates(facts: LayerFacts) -> list[_dt.date]:
    """Dates a layer carries: one per band from the band descriptions, or for a single band the
    file or layer name; ``[]`` for a static layer.

    >>> layer_dates(LayerFacts("sm", "/d/ESA_CCI_SM_20180131.tif"))
    [datetime.date(2018, 1, 31)]
    >>> layer_dates(LayerFacts("series", band_count=2, band_descriptions=("2018-01-01", "2018-01-02")))
    [datetime.date(2018, 1, 1), datetime.date(2018, 1, 2)]
    """
    dated = [parse_date(d) for d in facts.band_descriptions]
    if dated and all(dated):
        return [d for d in dated if d is not None]
    if facts.band_count == 1:
        d = parse_date(os.path.basename(facts.source)) or parse_date(facts.name)
        return [d] if d else []
    return []


def series_name(names: Sequence[str], default: str = "coarse") -> str:
    """A product's name from its layers' names: the first name without its date.

    >>> series_name(["ESA_CCI_SM_v45_Delaware_20180101", "ESA_CCI_SM_v45_Delaware_20180102"])
    'ESA_CCI_SM_v45_Delaware'
    >>> series_name(["20180101"])
    'coarse'
    """
    if not names:
        return default
    stripped = _DATE_RE.sub("", names[0])
    return re.sub(r"[_\-. ]{2,}", "_", stripped).strip("_-. ") or default


def describe_dates(dates: Sequence[_dt.date], undated: int = 0) -> str:
    """One line for the dock: "31 dates, 2018-01-01 … 2018-01-31 (daily)".

    >>> describe_dates([_dt.date(2018, 1, 1), _dt.date(2018, 1, 3)], undated=1)
    '2 dates, 2018-01-01 … 2018-01-03 (every 2 days); 1 layer without a date'
    """
    ds = sorted(set(dates))
    if not ds:
        text = "no dates found"
    elif len(ds) == 1:
        text = f"1 date, {ds[0].isoformat()}"
    else:
        gaps = {(b - a).days for a, b in zip(ds, ds[1:])}
        step = "daily" if gaps == {1} else (f"every {gaps.pop()} days" if len(gaps) == 1 else "irregular")
        text = f"{len(ds)} dates, {ds[0].isoformat()} … {ds[-1].isoformat()} ({step})"
    if undated:
        text += f"; {undated} layer{'s' if undated > 1 else ''} without a date"
    return text
