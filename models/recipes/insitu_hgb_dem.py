"""Recipe of the bundled ensemble ``insitu_hgb_dem`` — tier 1: runs anywhere.

Inputs: ``sm_coarse`` (coarse soil moisture of the pixel's cell, m³/m³), ``mtpi`` (multi-scale
topographic position index from a DEM, m), ``lat`` (from the pixel) and ``doy`` (the date's day of
year): a coarse product and a DEM are all it needs. Six boosted members, one per weighting scheme
(free, field capacity ≈ texture, NLCD land cover, two Köppen proxies, network; balanced sample
weights, Poehls et al.); each member is a straight line on the coarse product fitted to its
training stations plus histogram gradient boosting of what the line leaves
(:mod:`core.learn.boosting`). Prediction = mean of the members; the interval is calibrated on the
station-grouped CV residuals.

The recipe writes nothing unless the ensemble beats the coarse product linearly rescaled on the
training stations of each CV fold on both mean station R and ubRMSE.

Run: python models/recipes/insitu_hgb_dem.py --table .../station_10day_table.csv --out models/insitu_hgb_dem
"""
from _recipe import BoostingConfig, run

FEATURES = ["sm_coarse", "mtpi", "lat", "doy"]
SCHEMES = ["free", "field_capacity", "land_cover", "climate_lat", "climate_wetness", "network"]
BOOSTING = BoostingConfig(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
                          l2_regularization=1.0)
LAYERS_DEM = ["coarse soil moisture (m3/m3)", "DEM (m) with 'Derive terrain covariates' on"]

if __name__ == "__main__":
    run(name="insitu_hgb_dem",
        description="Boosted-tree ensemble (line on the coarse product + histogram gradient boosting, one member "
                    "per Poehls et al. weighting scheme) from coarse soil moisture, DEM-derived mTPI, latitude and "
                    "day of year; trained on ~90 CONUS in-situ stations (USCRN, TxSON, ARM), 10-day means 2019-2021",
        features=FEATURES, architectures=["hgb"], schemes=SCHEMES, boosting_config=BOOSTING,
        tier={"name": "dem", "rank": 1, "layers": LAYERS_DEM}, require_beating_rescaled=True)
