#!/usr/bin/env bash
# The demo (README's first command): installs what is missing, then downscales the bundled
# Delaware sample (ESA CCI SM 0.25°, January 2018) to 1 km with the plugin's algorithms run by
# qgis_process, scores it at the DEOS stations next to ESA CCI, and writes a GeoTIFF, the scores,
# a PNG quick-look and an HTML report into output/demo (or the folder given).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=$(bash scripts/setup.sh | tail -1)
exec "$py" scripts/demo.py --out "${1:-output/demo}"
