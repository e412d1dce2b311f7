"""The bundled ensembles in models/ verify (cards, hashes), predict, and state their CV scores."""
from pathlib import Path

import numpy as np
import pytest

from core.methods.insitu_ensemble import Ensemble, list_ensembles

MODELS = Path(__file__).resolve().parents[2] / "models"
BUNDLED = sorted(p for p in MODELS.iterdir() if p.is_dir() and any(p.glob("*.onnx")))


def test_there_is_a_dem_only_bundle():
    assert "poehls_dense_dem" in [p.name for p in BUNDLED]


@pytest.mark.parametrize("folder", BUNDLED, ids=lambda p: p.name)
def test_bundled_ensemble_loads_and_predicts(folder):
    ens = Ensemble.load(str(folder), intra_op_threads=1)
    assert set(ens.input_features) <= {"sm_coarse", "doy", "lat", "lon", "mtpi", "slope", "dem"}
    dom = [i["domain"] for i in ens.card["inputs"]]
    lo, hi = np.array([d["min"] for d in dom]), np.array([d["max"] for d in dom])
    X = (lo + np.linspace(0.1, 0.9, 50)[:, None] * (hi - lo)).astype(np.float32)
    mean, std, ood = ens.predict(X)
    assert not ood.any() and np.all((mean > 0.0) & (mean < 0.6)) and np.all(std < 0.2)
    # wetter coarse cells give wetter estimates on average
    wet = X.copy()
    wet[:, ens.input_features.index("sm_coarse")] = hi[ens.input_features.index("sm_coarse")]
    assert ens.predict(wet)[0].mean() > mean.mean()
    cv = ens.card["scores"]["cv_10fold"]
    assert cv["n_sites"] >= 80 and cv["coarse"]["mean"]["ubrmse"] > 0
    assert sum(f.stat().st_size for f in folder.iterdir()) < 4 * 1024 * 1024
    assert not list(folder.glob("*.joblib")) and not list(folder.glob("*.csv"))


def test_list_bundled():
    infos = {i.name: i for i in list_ensembles([str(MODELS)])}
    assert infos["poehls_dense_dem"].valid and infos["poehls_dense_dem"].inputs == ["sm_coarse", "mtpi", "lat"]
