"""The model card stored in each member's ONNX ``metadata_props``: one schema, validated both ways.

Each key of the card is one ``metadata_props`` entry whose value is JSON. Every member file of
an ensemble carries the same ensemble-level card plus its own ``member`` entry; the card lists
all members with the SHA-256 of each (see :func:`core.learn.onnx_export.model_sha256`,
computed without ``metadata_props``), so every file vouches for its siblings.

Schema (``schema_version`` 1); unknown keys are refused, so keys cannot drift:

* ``schema_version`` — 1
* ``name``, ``description`` — text
* ``member`` — ``{name, file, architecture, scheme, scheme_description, paper_scheme, hyperparameters}``
* ``members`` — list of ``{name, file, architecture, scheme, sha256}``
* ``inputs`` — list, in input-column order, of ``{name, role, units, encoding, domain}``: ``name``
  is a name of :data:`core.learn.features.MODEL_INPUTS`; ``encoding`` the scaling applied
  inside the graph; ``domain`` the training ``{min, max}`` or ``{codes}``
* ``outputs`` — list of ``{name, units, description}``; the first is ``sm`` in ``m3/m3``
* ``aggregation`` — text (prediction = mean of members, spread = their standard deviation)
* ``training_data`` — ``{description, file, period, n_sites, n_samples, networks, coarse_product}``
* ``citations`` — list of text
* ``scores`` — ``{protocol: {protocol, n_sites, ensemble, coarse, members}}`` where each score is
  ``{mean: {n, r, ubrmse, bias, rmse}, median: {...}}``; metric values may be null
* ``artifacts`` — list of ``{file, kind, sha256}`` (joblib files written for retraining)
* ``software`` — ``{package, onnx_opset}``

Optional keys (:data:`OPTIONAL_SCHEMA`; absent in older cards, which stay valid; schema_version stays 1):

* ``cross_scale`` — the cross-scale network's settings and held-out validation
  (:mod:`core.methods.cross_scale`): scheme, inputs, scales, ratio, window, baselines' scores
* ``uncertainty`` — ``{method, level, scale, floor, half_width, coverage}``: the calibrated
  interval ``mean ± scale · (spread + floor)`` of an in-situ ensemble and the share of held-out
  station values it held per protocol (:mod:`core.learn.calibration`)
* ``tier`` — ``{name, rank, layers}``: the bundled feature tier (higher rank = richer inputs) and
  the layers a user needs, in words
* ``coarse_level`` — ``{station_mean_min, station_mean_p05, station_mean_median, station_mean_p95,
  station_mean_max}``: distribution over the training stations of their mean coarse soil moisture
  (m³/m³), for the level check of the domain mask
* in each ``scores`` protocol: ``coarse_rescaled`` (stats of the coarse product linearly rescaled on
  the training stations) and ``interval`` (the interval's coverage figures)
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

import onnx

from .features import MODEL_INPUTS

SCHEMA_VERSION = 1
ARCHITECTURES: tuple[str, ...] = ("dense", "prob", "wdl", "rf", "hgb")
_SHA = re.compile(r"^[0-9a-f]{64}$")


class CardError(ValueError):
    """A model card that does not follow the schema (or a member that does not match it)."""


# --- the schema, as nested specs --------------------------------------------------------------
_TEXT, _INT = "text", "int"

SCHEMA: dict[str, Any] = {
    "schema_version": _INT,
    "name": _TEXT,
    "description": _TEXT,
    "member": {"name": _TEXT, "file": _TEXT, "architecture": _TEXT, "scheme": _TEXT,
               "scheme_description": _TEXT, "paper_scheme": _TEXT, "hyperparameters": "dict"},
    "members": [{"name": _TEXT, "file": _TEXT, "architecture": _TEXT, "scheme": _TEXT, "sha256": _TEXT}],
    "inputs": [{"name": _TEXT, "role": _TEXT, "units": _TEXT, "encoding": "dict", "domain": "dict"}],
    "outputs": [{"name": _TEXT, "units": _TEXT, "description": _TEXT}],
    "aggregation": _TEXT,
    "training_data": {"description": _TEXT, "file": _TEXT, "period": [_TEXT], "n_sites": _INT,
                      "n_samples": _INT, "networks": [_TEXT], "coarse_product": _TEXT},
    "citations": [_TEXT],
    "scores": "scores",
    "artifacts": [{"file": _TEXT, "kind": _TEXT, "sha256": _TEXT}],
    "software": {"package": _TEXT, "onnx_opset": _INT},
}

#: Keys a card may carry or not; validated like :data:`SCHEMA` when present (see the module docstring).
OPTIONAL_SCHEMA: dict[str, Any] = {
    "cross_scale": "dict",
    "uncertainty": {"method": _TEXT, "level": "number", "scale": "number", "floor": "number", "half_width": _TEXT,
                    "coverage": "dict"},
    "tier": {"name": _TEXT, "rank": _INT, "layers": [_TEXT]},
    "coarse_level": {k: "number" for k in ("station_mean_min", "station_mean_p05", "station_mean_median",
                                           "station_mean_p95", "station_mean_max")},
}


def validate_card(card: Mapping[str, Any]) -> None:
    """Raise :class:`CardError` unless ``card`` follows the schema (see the module docstring)."""
    if not isinstance(card, Mapping):
        raise CardError("The model card is not a mapping")
    missing = sorted(set(SCHEMA) - set(card))
    extra = sorted(set(card) - set(SCHEMA) - set(OPTIONAL_SCHEMA))
    if missing:
        raise CardError(f"Model card lacks {missing}")
    if extra:
        raise CardError(f"Model card has unknown keys {extra} (schema_version {SCHEMA_VERSION})")
    if card["schema_version"] != SCHEMA_VERSION:
        raise CardError(f"Model card schema_version {card['schema_version']!r} is not {SCHEMA_VERSION}")
    for key, spec in SCHEMA.items():
        _check(card[key], spec, key)
    for key, spec in OPTIONAL_SCHEMA.items():
        if key in card:
            _check(card[key], spec, key)
    # semantic checks
    names = [m["name"] for m in card["members"]]
    if not names or len(set(names)) != len(names):
        raise CardError("members must list at least one member, each name once")
    for m in card["members"]:
        if m["architecture"] not in ARCHITECTURES:
            raise CardError(f"members: architecture {m['architecture']!r} is not one of {ARCHITECTURES}")
        if not _SHA.match(m["sha256"]):
            raise CardError(f"members: {m['name']} has no valid sha256 (64 lowercase hex digits)")
    if card["member"]["name"] not in names:
        raise CardError(f"member {card['member']['name']!r} is not listed in members")
    if card["member"]["architecture"] not in ARCHITECTURES:
        raise CardError(f"member: architecture {card['member']['architecture']!r} is not one of {ARCHITECTURES}")
    if not card["inputs"]:
        raise CardError("inputs must list at least one input")
    seen = set()
    for i, inp in enumerate(card["inputs"]):
        if inp["name"] not in MODEL_INPUTS:
            raise CardError(f"inputs[{i}]: {inp['name']!r} is not a feature the raster pipeline provides "
                            f"({sorted(MODEL_INPUTS)})")
        if inp["name"] in seen:
            raise CardError(f"inputs[{i}]: {inp['name']!r} is listed twice")
        seen.add(inp["name"])
        d = inp["domain"]
        if "codes" in d:
            if not isinstance(d["codes"], list) or not d["codes"] or not all(
                    isinstance(c, int) and not isinstance(c, bool) for c in d["codes"]):
                raise CardError(f"inputs[{i}].domain.codes must be a non-empty list of integers")
        elif not (_is_num(d.get("min")) and _is_num(d.get("max")) and d["min"] <= d["max"]):
            raise CardError(f"inputs[{i}].domain must be {{min, max}} with min <= max, or {{codes}}")
        if inp["encoding"].get("encoding") not in ("standardize", "cyclic", "one_hot"):
            raise CardError(f"inputs[{i}].encoding.encoding must be standardize, cyclic or one_hot")
    if not card["outputs"] or card["outputs"][0]["name"] != "sm" or card["outputs"][0]["units"] != "m3/m3":
        raise CardError("outputs[0] must be 'sm' in m3/m3")
    for a in card["artifacts"]:
        if not _SHA.match(a["sha256"]):
            raise CardError(f"artifacts: {a['file']} has no valid sha256")
        if "/" in a["file"] or "\\" in a["file"] or a["file"].startswith("."):
            raise CardError(f"artifacts: {a['file']!r} must be a plain file name in the ensemble folder")
    for m in [card["member"], *card["members"]]:
        if "/" in m["file"] or "\\" in m["file"] or not m["file"].endswith(".onnx"):
            raise CardError(f"member file {m['file']!r} must be a plain .onnx file name")


def write_card(model: onnx.ModelProto, card: Mapping[str, Any]) -> None:
    """Validate ``card`` and store it in ``model.metadata_props`` (replacing what was there)."""
    validate_card(card)
    del model.metadata_props[:]
    for key in [*SCHEMA, *(k for k in OPTIONAL_SCHEMA if k in card)]:
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(_json_safe(card[key]), sort_keys=True, allow_nan=False, ensure_ascii=False)


def read_card(model: onnx.ModelProto) -> dict[str, Any]:
    """The validated card of ``model``; :class:`CardError` if absent, not JSON or off-schema."""
    if not model.metadata_props:
        raise CardError("The ONNX file carries no model card (metadata_props is empty)")
    card: dict[str, Any] = {}
    for entry in model.metadata_props:
        if entry.key in card:
            raise CardError(f"Model card key {entry.key!r} appears twice")
        try:
            card[entry.key] = json.loads(entry.value)
        except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8 (a damaged file)
            raise CardError(f"Model card value of {entry.key!r} is not JSON: {e}") from None
    validate_card(card)
    return card


def ensemble_part(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card without its ``member`` entry: identical in all members of one ensemble."""
    return {k: v for k, v in card.items() if k != "member"}


def _json_safe(x: Any) -> Any:
    """NaN/inf → None (JSON has no NaN), tuples → lists, recursively."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalar
        return _json_safe(x.item())
    return x


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check(value: Any, spec: Any, where: str) -> None:
    if spec == _TEXT:
        if not isinstance(value, str):
            raise CardError(f"{where} must be text, not {type(value).__name__}")
    elif spec == _INT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise CardError(f"{where} must be an integer")
    elif spec == "dict":
        if not isinstance(value, dict):
            raise CardError(f"{where} must be a mapping")
    elif spec == "number":
        if not _is_num(value):
            raise CardError(f"{where} must be a finite number")
    elif spec == "scores":
        if not isinstance(value, dict):
            raise CardError(f"{where} must be a mapping of protocol → scores")
        for proto, sc in value.items():
            if not isinstance(sc, dict):
                raise CardError(f"{where}.{proto} must be a mapping")
            optional = {"coarse_rescaled": "stats", "interval": "dict"}
            _check({k: v for k, v in sc.items() if k not in optional},
                   {"protocol": _TEXT, "n_sites": _INT, "ensemble": "stats", "coarse": "stats", "members": "dict"},
                   f"{where}.{proto}")
            for k, spec_k in optional.items():
                if k in sc:
                    _check(sc[k], spec_k, f"{where}.{proto}.{k}")
            for mname, ms in sc["members"].items():
                _check(ms, "stats", f"{where}.{proto}.members.{mname}")
    elif spec == "stats":
        if not isinstance(value, dict) or set(value) != {"mean", "median"}:
            raise CardError(f"{where} must be {{mean, median}}")
        for stat in ("mean", "median"):
            if not isinstance(value[stat], dict):
                raise CardError(f"{where}.{stat} must be a mapping of metric → number")
            for k, v in value[stat].items():
                if v is not None and not _is_num(v):
                    raise CardError(f"{where}.{stat}.{k} must be a number or null")
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise CardError(f"{where} must be a list")
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]")
    elif isinstance(spec, dict):
        if not isinstance(value, dict):
            raise CardError(f"{where} must be a mapping")
        missing = sorted(set(spec) - set(value))
        extra = sorted(set(value) - set(spec))
        if missing or extra:
            raise CardError(f"{where}: missing {missing}, unknown {extra}" if extra else f"{where} lacks {missing}")
        for k, s in spec.items():
            _check(value[k], s, f"{where}.{k}")
    else:  # pragma: no cover - schema bug
        raise AssertionError(spec)
