"""Checks before training: which weighting schemes the samples support, and whether the plan fits.

:func:`core.methods.insitu_ensemble.training.train_ensemble` raises plain ``ValueError`` deep inside a run
(after minutes of training, for a fold with too few stations); these checks say the same
thing up front, in words a hydrologist can act on, as :class:`core.errors.InputError`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ...errors import InputError
from ...learn.features import FEATURES
from ...learn.mlp import ARCHITECTURES_NN
from .samples import Samples
from .schemes import SCHEMES
from ...learn.weights import MISSING_CLASS, _labels, quantile_classes

#: Architectures :func:`core.methods.insitu_ensemble.training.train_ensemble` knows.
ARCHITECTURES: tuple[str, ...] = (*ARCHITECTURES_NN, "rf", "hgb")
#: Architectures with one member per weighting scheme.
PER_SCHEME: tuple[str, ...] = (*ARCHITECTURES_NN, "hgb")

#: Scheme whose classes split the ``rf`` forests and stratify the holdout split.
SOIL_CLASS_SCHEME = "field_capacity"


def scheme_support(samples: Samples) -> dict[str, str]:
    """For each scheme of :data:`core.methods.insitu_ensemble.schemes.SCHEMES`: ``""`` when the samples support it,
    else the reason it would weight every sample alike.

    A scheme is supported when its class attribute exists and gives at least two classes
    (not counting "missing") over the stations — quantile schemes need two distinct station values.
    """
    out: dict[str, str] = {}
    for name, scheme in SCHEMES.items():
        if scheme.attribute is None:
            out[name] = ""
            continue
        if scheme.attribute not in samples.attributes:
            out[name] = f"needs the class attribute '{scheme.attribute}', which the samples do not have"
            continue
        values = np.asarray(samples.attributes[scheme.attribute])
        if scheme.binning == "quantile":
            classes = quantile_classes(values.astype(np.float64), scheme.n_bins, groups=samples.site_id)
            labels = {int(c) for c in classes if c >= 0}
        else:
            labels = {c for c in _labels(values) if c != MISSING_CLASS}
        if len(labels) < 2:
            what = "no station has a value" if not labels else "all stations fall in one class"
            out[name] = f"'{scheme.attribute}': {what}"
        else:
            out[name] = ""
    return out


def supported_schemes(samples: Samples) -> list[str]:
    """Names of the schemes :func:`scheme_support` accepts, in :data:`SCHEMES` order."""
    return [k for k, why in scheme_support(samples).items() if not why]


def check_training_plan(samples: Samples, feature_names: Sequence[str], architectures: Sequence[str],
                        schemes: Sequence[str], cv_folds: int, holdout_fraction: float = 0.0,
                        soil_class_scheme: str = SOIL_CLASS_SCHEME) -> None:
    """Raise :class:`core.errors.InputError` unless ``train_ensemble`` can run this plan.

    Checks: at least one architecture, and a scheme for network members; known names; each
    feature a column of the samples with finite values; enough stations for the folds (one
    per fold and three in all, so that every training fold keeps two); a soil class with two or
    more stations for ``rf`` (forests are one per soil class); three stations for a holdout.
    """
    if not architectures:
        raise InputError(problem="no architecture was chosen.", fix="choose at least one of dense, prob, wdl, rf, hgb.")
    bad = [a for a in architectures if a not in ARCHITECTURES]
    if bad:
        raise InputError(problem=f"unknown architecture(s) {bad}.", fix=f"choose among {', '.join(ARCHITECTURES)}.")
    if any(a in PER_SCHEME for a in architectures) and not schemes:
        raise InputError(problem="network and boosted members (dense, prob, wdl, hgb) are one per weighting scheme, "
                                 "and no scheme was chosen.", fix="choose at least the 'free' (unweighted) scheme.")
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise InputError(problem=f"unknown weighting scheme(s) {unknown}.", fix=f"choose among {', '.join(SCHEMES)}.")
    for f in feature_names:
        if f not in FEATURES:
            raise InputError(problem=f"'{f}' is not an input feature the ensembles know.",
                             fix=f"choose among {', '.join(FEATURES)}.")
        if f not in samples.feature_names:
            raise InputError(problem=f"the training samples have no '{f}'.", fix="remove it from the input features.")
        col = samples.X[:, samples.feature_names.index(f)]
        if not np.isfinite(col).any():
            raise InputError(problem=f"the input feature '{f}' has no value at any station.",
                             fix="remove it from the input features, or give a layer that covers the stations.")
    n_sites = int(samples.sites.size)
    if n_sites < 2:
        raise InputError(problem=f"only {n_sites} station has usable samples; training and scoring need "
                                 "stations to learn from and others to test on.",
                         fix="add stations (at least 2, better 10 or more).")
    if cv_folds and cv_folds > 1 and n_sites < max(cv_folds, 3):
        raise InputError(problem=f"{cv_folds}-fold station-grouped cross-validation needs at least "
                                 f"{max(cv_folds, 3)} stations (whole stations per fold), and only {n_sites} "
                                 "have usable samples.",
                         fix=(f"choose at most {n_sites} folds" if n_sites >= 3 else "set the folds to 0")
                             + " (0 skips the cross-validation), or add stations.")
    if holdout_fraction and holdout_fraction > 0 and n_sites < 3:
        raise InputError(problem=f"a station holdout needs at least 3 stations; {n_sites} have usable samples.",
                         fix="set the holdout fraction to 0.")
    support = scheme_support(samples)
    unsupported = {s: support[s] for s in schemes if support.get(s)}
    if unsupported and any(a in PER_SCHEME for a in architectures):
        raise InputError(problem="these weighting schemes would weight every sample alike: "
                                 + "; ".join(f"{s} ({why})" for s, why in unsupported.items()) + ".",
                         fix="leave them out (schemes the data support: "
                             f"{', '.join(k for k, v in support.items() if not v)}).")
    if "rf" in architectures:
        classes = _soil_classes(samples, soil_class_scheme)
        if classes is None:
            raise InputError(problem="random-forest members are one per soil class (terciles of field capacity), "
                                     "and no station has a field capacity.",
                             fix="give sand and clay layers, or a field_capacity column in the station table; "
                                 "or train networks only.")
        if not classes:
            raise InputError(problem="random-forest members are one per soil class (terciles of field capacity), "
                                     "and no soil class has two or more stations.", fix="add stations.")


def _soil_classes(samples: Samples, scheme_name: str) -> Optional[list[int]]:
    """Soil classes with at least two stations; None when the attribute is absent or all missing."""
    scheme = SCHEMES[scheme_name]
    values = samples.attributes.get(scheme.attribute)
    if values is None or not np.isfinite(np.asarray(values, dtype=np.float64)).any():
        return None
    cls = scheme.classes(samples.attributes, samples.site_id)
    out = []
    for k in sorted({int(c) for c in cls if c >= 0}):
        if np.unique(samples.site_id[cls == k]).size >= 2:
            out.append(k)
    return out


#: Columns of the CONUS station table (``station_10day_table.csv``) every training run reads.
TABLE_REQUIRED_COLUMNS: tuple[str, ...] = ("network", "station", "lat", "lon", "start_date", "end_date",
                                           "smap10km_ssm_mm", "insitu_sm")

#: Columns each input feature is read from in that table.
TABLE_FEATURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sm_coarse": ("smap10km_ssm_mm",), "doy": ("start_date", "end_date"), "lat": ("lat",), "lon": ("lon",),
    "mtpi": ("mtpi",), "ndvi": ("B4", "B8"), "ndwi": ("B3", "B8"), "evi": ("B2", "B4", "B8"),
    "nsdsi": ("B11", "B12"), "land_cover": ("nlcd_landcover",),
    "field_capacity": ("field_capacity",), "vv_db": ("vv_db",), "vh_db": ("vh_db",),
}


def check_station_table(path: str, feature_names: Sequence[str]) -> None:
    """Raise :class:`core.errors.InputError` unless the table at ``path`` has the columns a training
    run with ``feature_names`` reads (its header only is read).

    The layout is that of the CONUS ``station_10day_table.csv``: one row per station and window,
    see :func:`core.methods.insitu_ensemble.samples.samples_from_station_table`.
    """
    import csv
    import os

    name = os.path.basename(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except OSError as e:
        raise InputError(problem=f"it cannot be read ({e.strerror}).", layer=name, fix="check the path.") from None
    except UnicodeDecodeError:
        raise InputError(problem="it is not a UTF-8 text (CSV) file.", layer=name,
                         fix="give the station table as a comma-separated CSV file.") from None
    have = {h.strip() for h in header}
    missing = [c for c in TABLE_REQUIRED_COLUMNS if c not in have]
    if missing:
        raise InputError(problem=f"the station table lacks the column(s) {', '.join(missing)} "
                                 f"(it has {', '.join(sorted(have)[:12]) or 'no header'}"
                                 f"{'…' if len(have) > 12 else ''}).", layer=name,
                         fix="give a table in the layout of station_10day_table.csv: network, station, lat, lon, "
                             "start_date, end_date, smap10km_ssm_mm (coarse SMAP, mm), insitu_sm (m³/m³) and one "
                             "column per covariate.")
    for f in feature_names:
        if f not in TABLE_FEATURE_COLUMNS:
            raise InputError(problem=f"the input feature '{f}' cannot be read from a station table.", layer=name,
                             fix=f"choose among {', '.join(TABLE_FEATURE_COLUMNS)}, or train on rasters "
                                 "(coarse soil moisture, covariates, stations and an in-situ table) instead.")
        lacking = [c for c in TABLE_FEATURE_COLUMNS[f] if c not in have]
        if lacking:
            raise InputError(problem=f"the input feature '{f}' needs the column(s) {', '.join(lacking)}, which the "
                                     "station table lacks.", layer=name,
                             fix="remove the feature from the input features, or add the column.")
