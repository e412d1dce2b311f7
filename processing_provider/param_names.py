"""Names of the parameters several algorithms share — the contract between the algorithms and the
dock (``ui/run_request.py``), which builds their parameter dictionaries. QGIS-free on purpose."""

# Coarse soil moisture, target grid (layer_params.py)
SOIL_MOISTURE = "SOIL_MOISTURE"
SM_DATES = "SM_DATES"
TARGET_CRS = "TARGET_CRS"
RESOLUTION = "RESOLUTION"
EXTENT = "EXTENT"
DERIVE_TERRAIN = "DERIVE_TERRAIN"
TOLERANCE_DAYS = "TOLERANCE_DAYS"
MAX_PIXELS = "MAX_PIXELS"
OUTPUT = "OUTPUT"

# Stations and scores (station_params.py)
STATIONS = "STATIONS"
STATION_ID_FIELD = "STATION_ID_FIELD"
STATIONS_CSV = "STATIONS_CSV"
INSITU_CSV = "INSITU_CSV"
SCORES = "SCORES"
SCORES_CSV = "SCORES_CSV"
