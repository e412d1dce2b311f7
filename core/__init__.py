"""QGIS-free engine of the soil-moisture downscaling plugin.

Everything here works on numpy arrays, GDAL datasets and plain files, so a script,
a CLI or a cluster worker can call it without QGIS. Nothing in this package may
import ``qgis`` or ``PyQt`` (a unit test walks the AST to keep it so).
"""

import os as _os

# OpenMP threads that spin while waiting (libgomp's default) make scikit-learn's gradient
# boosting 5–10× slower whenever anything else uses the CPU — a QGIS desktop, a second run, a
# cluster neighbour. Passive waiting costs nothing when the machine is idle. Only a default:
# an explicit setting wins, and it takes effect if set before the OpenMP runtime loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
