"""Recipe of the bundled ensemble ``insitu_hgb_full`` — tier 3: + backscatter, soil and land cover.

Inputs: those of ``insitu_hgb_veg`` plus Sentinel-1 ``vv_db`` and ``vh_db`` (dB, of the date), soil
``field_capacity`` (volumetric %) and NLCD ``land_cover``. Members, weighting and the shipping rule as
in ``insitu_hgb_dem.py``.

Run: python models/recipes/insitu_hgb_full.py --table .../station_10day_table.csv --out models/insitu_hgb_full
"""
from _recipe import run
from insitu_hgb_dem import BOOSTING, SCHEMES
from insitu_hgb_veg import FEATURES_VEG, LAYERS_VEG

if __name__ == "__main__":
    run(name="insitu_hgb_full",
        description="Boosted-tree ensemble (line on the coarse product + histogram gradient boosting, one member "
                    "per Poehls et al. weighting scheme) from coarse soil moisture, mTPI, latitude, day of year, "
                    "NDVI, Sentinel-1 VV/VH, field capacity and NLCD land cover; trained on ~90 CONUS "
                    "in-situ stations, 10-day means 2019-2021",
        features=[*FEATURES_VEG, "vv_db", "vh_db", "field_capacity", "land_cover"], architectures=["hgb"],
        schemes=SCHEMES, boosting_config=BOOSTING,
        tier={"name": "full", "rank": 3,
              "layers": [*LAYERS_VEG, "Sentinel-1 VV and VH backscatter, dB (Other covariates vv_db, vh_db)",
                         "field capacity, % (Other covariate field_capacity)", "NLCD land cover (land-cover layer)"]},
        require_beating_rescaled=True)
