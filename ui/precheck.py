"""The dock's pre-run check: every problem with the inputs, in plain words, before anything runs.

No widgets and no arithmetic here: the request's parameters go through the chosen algorithm's
own ``checkParameterValues`` and through the same translation into a
:class:`core.inputs.scene.SceneSpec` the algorithm uses (``processing_provider.layer_params``); then
each band is checked by :func:`core.inputs.units.check_layer` and the scene is built by
:class:`core.inputs.scene.Scene`, catching every :class:`core.errors.InputError` instead of stopping
at the first, so the user sees all problems at once.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

from qgis.core import QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingException

from ..core.errors import InputError
from ..core.raster.grid import transform_bounds
from ..core.inputs.roles import ROLE_INFO, Role
from ..core.inputs.scene import Scene
from ..core.inputs.units import check_layer
from .run_request import SOIL_MOISTURE, RunRequest

#: At most this many messages of one kind per role; the rest are counted.
MAX_PER_ROLE = 3
_WGS84 = "EPSG:4326"


@dataclass
class CheckResult:
    """Errors block the run; warnings are shown and the run goes ahead; ``summary`` describes the scene."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


def precheck(request: RunRequest, alg: QgsProcessingAlgorithm, context: QgsProcessingContext,
             model_card: Optional[dict] = None) -> CheckResult:
    """Check ``request`` for ``alg`` (a downscaling algorithm); ``model_card`` is the chosen model's card."""
    res = CheckResult(errors=list(request.problems()))
    if not request.soil_moisture or not any(request.covariates.values()):
        return res  # nothing to look at yet
    names = {p.name() for p in alg.parameterDefinitions()}
    params = request.to_parameters(accepted=names)
    ok, message = alg.checkParameterValues(params, context)
    if not ok:
        res.errors.append(message)
        return res
    if SOIL_MOISTURE not in names:
        return res  # a method with its own kind of inputs: its parameter check is all we know
    from ..processing_provider import layer_params as lp

    try:
        spec = lp.scene_spec(alg, params, context)
    except (QgsProcessingException, InputError) as exc:
        res.errors.append(str(exc))
        return res

    ranges: dict[Role, tuple[float, float]] = {}
    bands = [(Role.SOIL_MOISTURE, b) for b in spec.soil_moisture]
    bands += [(lay.role, b) for lay in spec.covariates for b in lay.bands]
    per_role: dict[Role, list[str]] = {}
    for role, ref in bands:
        try:
            lo, hi = check_layer(role, ref)
        except InputError as exc:
            per_role.setdefault(role, []).append(str(exc))
            continue
        old = ranges.get(role)
        ranges[role] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    for role, messages in per_role.items():
        res.errors.extend(messages[:MAX_PER_ROLE])
        if len(messages) > MAX_PER_ROLE:
            res.errors.append(f"… and {len(messages) - MAX_PER_ROLE} more {ROLE_INFO[role].label} band(s) "
                              "with a problem of the same kind.")
    try:
        scene = Scene(dataclasses.replace(spec, check_units=False, derive_terrain=False))
    except InputError as exc:
        res.errors.append(str(exc))
        return res
    d = scene.describe()
    fine, coarse = scene.fine, scene.coarse
    res.summary = (f"{len(scene.dates)} date(s), {d['dates'][0]} … {d['dates'][-1]}; fine grid {fine.width} × "
                   f"{fine.height} px of {fine.dx:g} in {d['crs']}; {coarse.width} × {coarse.height} coarse cells; "
                   f"covariates: {', '.join(d['covariates'])}"
                   + (" (+ slope, mTPI from the DEM)" if spec.derive_terrain and
                      any(lay.role is Role.DEM for lay in spec.covariates) else ""))
    if fine.width * fine.height * len(scene.dates) > 2e9:
        res.warnings.append(f"The output holds {fine.width * fine.height * len(scene.dates) / 1e9:.1f} billion "
                            "pixel-dates: expect a long run and a large file; a coarser resolution or fewer dates "
                            "make it quicker.")
    if model_card is not None:
        _check_model(model_card, spec, ranges, scene, res)
    _check_stations(request, scene, res)
    return res


def _check_model(card: dict, spec, ranges: dict[Role, tuple[float, float]], scene: Scene, res: CheckResult) -> None:
    """Inputs the model needs, and whether the area and values lie in its training domain."""
    name = card.get("name", "the model")
    given = {lay.role for lay in spec.covariates}
    for inp in card.get("inputs", []):
        feature, role_name, dom = inp.get("name", ""), inp.get("role", ""), inp.get("domain") or {}
        try:
            role = Role(role_name)
        except ValueError:
            role = None  # coordinates and calendar: always available
        if role is not None and role is not Role.SOIL_MOISTURE and role not in given:
            res.errors.append(f"The model '{name}' needs '{feature}' ({ROLE_INFO[role].label}), but no "
                              f"{ROLE_INFO[role].label} layer is given. Fix: choose one in '2 · Fine covariates'.")
            continue
        if role is Role.DEM and feature in ("slope", "mtpi") and not spec.derive_terrain:
            res.errors.append(f"The model '{name}' needs '{feature}', derived from the DEM, but deriving terrain "
                              "covariates is switched off. Fix: tick it in the method's options.")
        lo_hi = None
        if feature == "sm_coarse" or (role is not None and feature == role.value):
            lo_hi = ranges.get(Role.SOIL_MOISTURE if feature == "sm_coarse" else role)
        elif feature in ("lat", "lon"):
            b = transform_bounds(scene.fine.bounds, scene.fine.crs_wkt, _WGS84)
            lo_hi = (b[1], b[3]) if feature == "lat" else (b[0], b[2])
        if lo_hi is None or "min" not in dom or "max" not in dom:
            continue
        lo, hi = lo_hi
        dmin, dmax = float(dom["min"]), float(dom["max"])
        if hi < dmin or lo > dmax:
            res.warnings.append(f"'{feature}' spans {lo:.3g} … {hi:.3g} here, entirely outside the model's training "
                                f"domain {dmin:.3g} … {dmax:.3g}: its predictions will be extrapolations "
                                "(flagged out of domain).")
        elif lo < dmin - 1e-9 or hi > dmax + 1e-9:
            res.warnings.append(f"'{feature}' spans {lo:.3g} … {hi:.3g} here; the model was trained on {dmin:.3g} … "
                                f"{dmax:.3g}: pixels outside are flagged out of domain.")


def _check_stations(request: RunRequest, scene: Scene, res: CheckResult) -> None:
    if not request.wants_report:
        return
    from ..core.evaluation.stations import read_insitu_table, read_station_table, skipped_message

    try:
        insitu = read_insitu_table(request.insitu_csv)
    except (InputError, OSError, ValueError) as exc:
        res.errors.append(f"In-situ table: {exc}")
        return
    if insitu.skipped:
        res.warnings.append(skipped_message(request.insitu_csv, insitu.skipped, f"{len(insitu.dates)} dates kept"))
    if not request.stations_csv:
        return  # a point layer: the report algorithm matches its id field
    try:
        table = read_station_table(request.stations_csv)
    except (InputError, OSError, ValueError) as exc:
        res.errors.append(f"Stations: {exc}")
        return
    if table.skipped:
        res.warnings.append(skipped_message(request.stations_csv, table.skipped,
                                            f"{len(table.stations)} station(s) kept"))
    known = [s for s in table.stations if s.id in insitu.values]
    if not known:
        res.errors.append(f"None of the {len(table.stations)} station ids is a column of the in-situ table. Fix: use "
                          "the station table and in-situ table of the same network.")
        return
    xmin, ymin, xmax, ymax = transform_bounds(scene.fine.bounds, scene.fine.crs_wkt, _WGS84)

    def inside(lat: float, lon: float) -> bool:
        return math.isfinite(lat) and math.isfinite(lon) and xmin <= lon <= xmax and ymin <= lat <= ymax

    out = [s for s in known if not inside(s.lat, s.lon)]
    named = ", ".join(f"{s.id} (lat {s.lat:g}, lon {s.lon:g})" for s in out[:10]) + (" …" if len(out) > 10 else "")
    swapped = sum(inside(s.lon, s.lat) for s in out)
    hint = (f" {swapped} of them would lie inside with latitude and longitude swapped: check the lat/lon columns."
            if swapped else "")
    if len(out) == len(known):
        res.errors.append(f"None of the {len(known)} stations with in-situ data lies inside the downscaled area "
                          f"(lon {xmin:.3f} … {xmax:.3f}, lat {ymin:.3f} … {ymax:.3f}): {named}.{hint}")
    elif out:
        res.warnings.append(f"{len(out)} of {len(known)} stations with in-situ data lie outside the downscaled area "
                            f"and will not be scored: {named}.{hint}")
