"""Every bundled ensemble is reproduced by its committed recipe from the declared station table.

The recipe is run without CV (``--folds 0``, the final fit is the same) and each member's graph
hash — the SHA-256 of the model without its card, as recorded in the card — must equal the
bundled member's. Needs the CONUS table from ../shared/data (skips without it).
"""
import os
import subprocess
import sys

import pytest

from core.learn.model_folder import Ensemble

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "models", "recipes"))
                 if f.endswith(".py") and not f.startswith("_"))


def test_every_bundled_ensemble_has_a_recipe():
    bundled = sorted(d for d in os.listdir(os.path.join(ROOT, "models"))
                     if d != "recipes" and os.path.isdir(os.path.join(ROOT, "models", d)))
    assert bundled and bundled == RECIPES


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_rebuilds_the_bundled_members(name, shared_data, tmp_path):
    table = shared_data / "conus_stations" / "station_10day_table.csv"
    out = tmp_path / name
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "models", "recipes", f"{name}.py"),
                           "--table", str(table), "--out", str(out), "--folds", "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    bundled = Ensemble.load(os.path.join(ROOT, "models", name))
    rebuilt = Ensemble.load(str(out))
    hashes = lambda e: sorted((m["file"], m["sha256"]) for m in e.card["members"])  # noqa: E731
    assert hashes(rebuilt) == hashes(bundled)
    assert rebuilt.card["training_data"]["n_samples"] == bundled.card["training_data"]["n_samples"]
