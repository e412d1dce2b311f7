#!/usr/bin/env bash
# Installs what the plugin needs on Debian 12 / Ubuntu, idempotently:
#   Debian's QGIS, GDAL and matplotlib (apt), then a venv on Debian's Python with
#   --system-site-packages and the pinned packages of requirements*.txt, numpy pinned to the
#   version of /usr/bin/python3 (the one QGIS loads).
# Usage: scripts/setup.sh [dev]      prints the venv's python path on its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SMDS_VENV:-$HOME/.cache/soil_moisture_downscaling/venv}"
need_apt=()
apt_pkgs="qgis python3-qgis python3-gdal python3-matplotlib python3-scipy python3-h5py python3-venv xvfb qgis-providers"
# optional packages tested in CI: CatBoost imports pandas, shap needs numba — Debian builds match its numpy
[ "${1:-}" = "dev" ] && apt_pkgs="$apt_pkgs python3-pandas python3-numba"
for pkg in $apt_pkgs; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${need_apt[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >&2
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating venv $venv (system site packages: QGIS, GDAL, numpy)" >&2
  /usr/bin/python3 -m venv --system-site-packages "$venv" >&2
fi
reqs="$here/requirements.txt"; [ "${1:-}" = "dev" ] && reqs="$here/requirements-dev.txt"
# QGIS loads the distribution's numpy before any plugin code: pin pip to exactly that version
# (Debian 12: 1.24.2, Ubuntu 24.04: 1.26.4), so nothing pip installs needs another one.
sys_numpy="$(/usr/bin/python3 -I -c 'import numpy; print(numpy.__version__)')"
numpy_pins="numpy==$sys_numpy"
stamp="$venv/.smds-$( (cat "$here/constraints.txt" "$here/requirements.txt" "$here/requirements-dev.txt" \
  "$here/requirements-dev-nodeps.txt"; echo "$numpy_pins") | sha256sum | cut -c1-16)-${1:-user}"
if [ ! -f "$stamp" ]; then
  constraints="$venv/constraints-qgis.txt"
  # constraints.txt without its generic numpy line (numpy<2 would contradict a numpy 2 distribution)
  { grep -v '^numpy' "$here/constraints.txt"; echo "$numpy_pins"; } > "$constraints"
  echo "[setup] pip install -r $(basename "$reqs") -c constraints.txt ($numpy_pins)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs" -c "$constraints" >&2
  if [ "${1:-}" = "dev" ]; then
    echo "[setup] pip install --no-deps -r requirements-dev-nodeps.txt (test oracles)" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
      -r "$here/requirements-dev-nodeps.txt" -c "$constraints" >&2
  fi
  SMDS_SYSTEM_NUMPY="$sys_numpy" "$venv/bin/python" - <<'PY' >&2
import os
import numpy
from osgeo import gdal_array  # fails loudly if another numpy slipped in
assert numpy.__version__ == os.environ["SMDS_SYSTEM_NUMPY"], (numpy.__version__, numpy.__file__)
PY
  touch "$stamp"
fi
echo "$venv/bin/python"
