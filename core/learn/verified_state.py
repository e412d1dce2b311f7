"""A fitted model saved as a folder this plugin wrote: ``state.joblib`` and ``card.json``, the card
recording the SHA-256 of the joblib bytes. :func:`read_state` hashes the bytes before anything is
unpickled and refuses a file whose hash differs, so a model folder is only ever loaded as written.

For models that are not (yet) ONNX graphs — scikit-learn trend pipelines, kriging set-ups — whose
state is small. ONNX members with cards inside the graph use :mod:`core.learn.model_folder`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Any

from ..io.atomic import atomic_open, atomic_write_text

STATE_FILE = "state.joblib"
CARD_FILE = "card.json"
SCHEMA_VERSION = 1


class StateError(ValueError):
    """A model folder that is missing, damaged or modified after it was written."""


def write_state(folder: str, state: Any, card: dict) -> str:
    """Write ``state`` (joblib) and ``card`` (JSON, with the state's SHA-256) into ``folder``.

    Both files are written atomically; the folder is created if needed. Returns the folder.
    """
    import joblib

    os.makedirs(folder, exist_ok=True)
    buf = io.BytesIO()
    joblib.dump(state, buf, compress=3)
    blob = buf.getvalue()
    with atomic_open(os.path.join(folder, STATE_FILE), "wb") as f:
        f.write(blob)
    full = dict(card, schema_version=SCHEMA_VERSION,
                artifacts=[{"file": STATE_FILE, "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}])
    atomic_write_text(os.path.join(folder, CARD_FILE), json.dumps(full, indent=1, sort_keys=True, default=str))
    return folder


def read_card(folder: str) -> dict:
    """The card of a model folder (no unpickling)."""
    path = os.path.join(folder, CARD_FILE)
    if not os.path.isfile(path):
        raise StateError(f"{folder} is not a saved model folder: it has no {CARD_FILE}")
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{path} cannot be read as a model card ({exc})") from None
    if not isinstance(card, dict) or card.get("schema_version") != SCHEMA_VERSION or "artifacts" not in card:
        raise StateError(f"{path} is not a model card this plugin wrote (schema_version {SCHEMA_VERSION})")
    return card


def read_state(folder: str) -> tuple[Any, dict]:
    """``(state, card)`` of a folder written by :func:`write_state`, after checking the hash."""
    import joblib

    card = read_card(folder)
    art = next((a for a in card["artifacts"] if a.get("file") == STATE_FILE), None)
    if art is None:
        raise StateError(f"{folder}: the card records no {STATE_FILE}")
    path = os.path.join(folder, STATE_FILE)
    if not os.path.isfile(path):
        raise StateError(f"{folder}: {STATE_FILE} is recorded in the card but missing")
    with open(path, "rb") as f:
        blob = f.read()
    if hashlib.sha256(blob).hexdigest() != art.get("sha256"):
        raise StateError(f"{path}: its SHA-256 differs from the one recorded when it was written "
                         "(modified or damaged); it is not loaded")
    return joblib.load(io.BytesIO(blob)), card
