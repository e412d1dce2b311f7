"""Recipe of the bundled ensemble ``poehls_dense_dem`` (Dense ensemble of Poehls et al.).

Inputs: ``sm_coarse`` (coarse soil moisture, m³/m³), ``mtpi`` (multi-scale topographic position
index from a DEM, m) and ``lat`` — all available anywhere a DEM and a coarse product are.
Six Dense members (32-16 ReLU), one per weighting scheme (free, field capacity ≈ texture,
NLCD land cover, two Köppen proxies, network); prediction = their mean, spread = their std.

Choices, from station-grouped 10-fold CV on the CONUS table (mean site R / ubRMSE; SMAP 0.719 / 0.085):
``doy`` as an input lowered R in every variant (0.704 with sm_coarse, doy, mtpi; 0.713 with lat
added), so it is left out; ``lat`` helped (0.723); Sentinel-2 NDVI and Sentinel-1 backscatter
overfitted across the ~90 stations (R 0.67–0.69); widths 8 … 64-32 and weight decay 1e-4 … 1e-2
changed little; learning rate 5e-4 gave the lowest ubRMSE.

Run: python models/recipes/poehls_dense_dem.py --table .../station_10day_table.csv --out models/poehls_dense_dem
"""
from _recipe import MLPConfig, run

if __name__ == "__main__":
    run(name="poehls_dense_dem",
        description="Dense ensemble (Poehls et al.) from coarse soil moisture and DEM-derived inputs only; "
                    "trained on ~90 CONUS in-situ stations (USCRN, TxSON, ARM), 10-day means 2019-2021",
        features=["sm_coarse", "mtpi", "lat"],
        architectures=["dense"],
        schemes=["free", "field_capacity", "land_cover", "climate_lat", "climate_wetness", "network"],
        mlp_config=MLPConfig(hidden=(32, 16), learning_rate=5e-4, weight_decay=1e-4, max_epochs=300, patience=25))
