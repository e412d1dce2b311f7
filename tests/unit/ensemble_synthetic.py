"""Synthetic in-situ stations whose fine-scale soil moisture is a known function of the inputs.

Truth at station s and date t:

    sm = 0.05 + 0.6 · sm_coarse − 0.004 · mtpi + 0.03 · sin(2π·doy/365.25) + 0.02 · [land_cover == 81]

plus N(0, 0.005) noise. The coarse product is the same field seen through a biased, stretched
lens (``1.6 · sm − 0.02``), so a model that learns the relationship beats it in ubRMSE and bias,
and its temporal R at unseen stations is close to 1.
"""
from __future__ import annotations

import numpy as np

from core.methods.insitu_ensemble.samples import Samples


def truth(sm_coarse, doy, mtpi, land_cover):
    return (0.05 + 0.6 * sm_coarse - 0.004 * mtpi + 0.03 * np.sin(2 * np.pi * doy / 365.25)
            + 0.02 * (land_cover == 81))


def synthetic_samples(n_sites: int = 24, n_dates: int = 40, seed: int = 0,
                      features=("sm_coarse", "doy", "mtpi", "land_cover")) -> Samples:
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2020-01-05") + np.arange(n_dates) * 9
    doy = np.array([(d - d.astype("datetime64[Y]")).astype(int) + 1 for d in dates], dtype=float)
    site_mtpi = rng.normal(0, 6, n_sites)
    site_lc = rng.choice([41.0, 52.0, 81.0], n_sites)
    site_fc = rng.uniform(10, 35, n_sites)
    site_lat = rng.uniform(30, 48, n_sites)
    rows = {k: [] for k in ("X", "y", "site", "date", "coarse", "fc", "lc", "lat")}
    for s in range(n_sites):
        regional = np.clip(0.12 + 0.1 * np.sin(np.arange(n_dates) / 4 + s) + rng.normal(0, 0.02, n_dates), 0.02, 0.45)
        y = truth(regional, doy, site_mtpi[s], site_lc[s]) + rng.normal(0, 0.005, n_dates)
        cols = {"sm_coarse": regional, "doy": doy, "mtpi": np.full(n_dates, site_mtpi[s]),
                "land_cover": np.full(n_dates, site_lc[s]), "lat": np.full(n_dates, site_lat[s])}
        rows["X"].append(np.stack([cols[f] for f in features], axis=1))
        rows["y"].append(y)
        rows["site"] += [f"SYN:{s:02d}"] * n_dates
        rows["date"].append(dates)
        rows["coarse"].append(1.6 * y - 0.02)
        rows["fc"].append(np.full(n_dates, site_fc[s]))
        rows["lc"].append(np.full(n_dates, site_lc[s]))
        rows["lat"].append(np.full(n_dates, site_lat[s]))
    attributes = {"field_capacity": np.concatenate(rows["fc"]), "land_cover": np.concatenate(rows["lc"]),
                  "lat": np.concatenate(rows["lat"]),
                  "network": np.array(["A" if i % 3 else "B" for i in range(len(rows["site"]))])}
    source = {"description": "synthetic stations (tests/unit/ensemble_synthetic.py)", "file": "",
              "networks": ["SYN"], "citations": ["synthetic"], "coarse_product": "synthetic coarse"}
    return Samples(np.concatenate(rows["X"]), np.concatenate(rows["y"]), np.array(rows["site"]),
                   np.concatenate(rows["date"]), np.concatenate(rows["coarse"]), list(features), attributes, source)
