"""Recipe of the bundled ensemble ``insitu_hgb_veg`` — tier 2: + vegetation.

Inputs: those of ``insitu_hgb_dem`` (``sm_coarse``, ``mtpi``, ``lat``, ``doy`` — the season) plus
``ndvi`` of the date (Sentinel-2 in training; any NDVI layer, 0…1, as the *NDVI* role). Members,
weighting and the shipping rule as in ``insitu_hgb_dem.py``.

Tried and left out: NDWI, EVI and NSDSI (the station-table reader derives them from the Sentinel-2
bands) on top of NDVI changed nothing in the station-grouped 10-fold CV (mean station R 0.714 vs
0.715, ubRMSE 0.0430 vs 0.0431 m³/m³) and would need three more layers.

Run: python models/recipes/insitu_hgb_veg.py --table .../station_10day_table.csv --out models/insitu_hgb_veg
"""
from _recipe import run
from insitu_hgb_dem import BOOSTING, FEATURES, LAYERS_DEM, SCHEMES

FEATURES_VEG = [*FEATURES, "ndvi"]
LAYERS_VEG = [*LAYERS_DEM, "NDVI of each date, 0..1 (NDVI layer)"]

if __name__ == "__main__":
    run(name="insitu_hgb_veg",
        description="Boosted-tree ensemble (line on the coarse product + histogram gradient boosting, one member "
                    "per Poehls et al. weighting scheme) from coarse soil moisture, mTPI, latitude, day of year and "
                    "NDVI; trained on ~90 CONUS in-situ stations, 10-day means 2019-2021",
        features=FEATURES_VEG, architectures=["hgb"], schemes=SCHEMES, boosting_config=BOOSTING,
        tier={"name": "vegetation", "rank": 2, "layers": LAYERS_VEG}, require_beating_rescaled=True)
