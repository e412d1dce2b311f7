"""Recipe of the bundled ensemble ``poehls_rf_dem`` (RF ensemble of Poehls et al. / Abbaszadeh et al.).

Same inputs as ``poehls_dense_dem`` (``sm_coarse``, ``mtpi``, ``lat``). One random forest per soil
class — terciles (over stations) of field capacity stand in for the paper's texture classes — each
trained on its class's stations only, all averaged everywhere. Field capacity is used to split the
training stations only: it is not an input, so the ensemble runs from a DEM and a coarse product.
Forests are capped (30 trees, depth 8, leaves ≥ 20 samples) to keep the files small.

Run: python models/recipes/poehls_rf_dem.py --table .../station_10day_table.csv --out models/poehls_rf_dem
"""
from _recipe import ForestConfig, run

if __name__ == "__main__":
    run(name="poehls_rf_dem",
        description="Random-forest ensemble (one forest per field-capacity tercile, Poehls et al. / Abbaszadeh "
                    "et al.) from coarse soil moisture and DEM-derived inputs only; trained on ~90 CONUS in-situ "
                    "stations (USCRN, TxSON, ARM), 10-day means 2019-2021",
        features=["sm_coarse", "mtpi", "lat"],
        architectures=["rf"],
        schemes=[],
        forest_config=ForestConfig(n_estimators=30, max_depth=8, min_samples_leaf=20, max_features=0.6))
