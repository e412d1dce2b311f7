"""The bundled ensembles in models/ verify (cards, hashes), predict, state their CV scores, and earn
their place: each beats the coarse product linearly rescaled on the training stations."""
from pathlib import Path

import numpy as np
import pytest

from core.methods.insitu_ensemble import Ensemble, list_ensembles

MODELS = Path(__file__).resolve().parents[2] / "models"
BUNDLED = sorted(p for p in MODELS.iterdir() if p.is_dir() and any(p.glob("*.onnx")))


def test_the_bundled_tiers():
    infos = {i.name: i for i in list_ensembles([str(MODELS)])}
    assert {n: i.tier["rank"] for n, i in infos.items()} == {"insitu_hgb_dem": 1, "insitu_hgb_veg": 2,
                                                              "insitu_hgb_full": 3}
    assert infos["insitu_hgb_dem"].inputs == ["sm_coarse", "mtpi", "lat", "doy"]  # runs with a DEM alone
    dem, veg, full = (set(infos[n].inputs) for n in ("insitu_hgb_dem", "insitu_hgb_veg", "insitu_hgb_full"))
    assert dem < veg < full and all(i.valid for i in infos.values())


def _inside_domain(card, n=50):
    """``n`` rows spread across each input's training range (class codes: the first code)."""
    cols = []
    for inp in card["inputs"]:
        d = inp["domain"]
        cols.append(np.full(n, d["codes"][0], float) if "codes" in d else d["min"] + np.linspace(0.1, 0.9, n)
                    * (d["max"] - d["min"]))
    return np.column_stack(cols).astype(np.float32)


@pytest.mark.parametrize("folder", BUNDLED, ids=lambda p: p.name)
def test_bundled_ensemble_loads_predicts_and_beats_the_rescaled_coarse_product(folder):
    ens = Ensemble.load(str(folder), intra_op_threads=1)
    X = _inside_domain(ens.card)
    mean, std, ood = ens.predict(X)
    assert not ood.any() and np.all((mean > 0.0) & (mean < 0.6)) and np.all(std < 0.2)
    # a wetter coarse cell (0.30 vs 0.10 m³/m³, both common in training) gives wetter estimates on average
    j = ens.input_features.index("sm_coarse")
    dry, wet = X.copy(), X.copy()
    dry[:, j], wet[:, j] = 0.10, 0.30
    assert ens.predict(wet)[0].mean() > ens.predict(dry)[0].mean() + 0.05
    for proto in ("cv_10fold", "holdout_80_20"):
        sc = ens.card["scores"][proto]
        e, c, raw = sc["ensemble"]["mean"], sc["coarse_rescaled"]["mean"], sc["coarse"]["mean"]
        assert e["r"] > c["r"] and e["ubrmse"] < c["ubrmse"] < raw["ubrmse"]
        assert 0.85 <= sc["interval"]["coverage"] <= 0.97          # a 90 % interval that holds ~90 %
        assert sc["interval"]["raw_2sd_coverage"] < 0.5            # what mean ± 2 spread would have held
    cv = ens.card["scores"]["cv_10fold"]
    assert cv["n_sites"] >= 80 and ens.card["uncertainty"]["level"] == 0.9
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2 * 1024 * 1024
    assert not list(folder.glob("*.joblib")) and not list(folder.glob("*.csv"))
