#!/usr/bin/env bash
# Builds the release zip from the committed tree (HEAD):
#   <out_dir>/soil_moisture_downscaling-<version>.zip  holding the folder soil_moisture_downscaling/,
# version read from metadata.txt, dev files left out (tests, benchmarks, scripts, .ci, model
# recipes, pytest/pip files). sample_data/ and the bundled models/ go in.
# Usage: scripts/package.sh [out_dir]     (default: dist/); prints the zip's path on its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$(mkdir -p "${1:-$here/dist}" && cd "${1:-$here/dist}" && pwd)"
plugin_id=soil_moisture_downscaling
version=$(sed -n 's/^version=[[:space:]]*//p' "$here/metadata.txt" | tr -d '[:space:]')
[ -n "$version" ] || { echo "[package] no version= in metadata.txt" >&2; exit 1; }
if [ -n "$(git -C "$here" status --porcelain --untracked-files=no)" ]; then
  echo "[package] note: uncommitted changes are not packaged (the zip is built from HEAD)" >&2
fi

stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$plugin_id"
git -C "$here" archive --format=tar HEAD | tar -x -C "$stage/$plugin_id"
( cd "$stage/$plugin_id"
  rm -rf tests benchmarks scripts .ci models/recipes .github \
         .gitignore .gitattributes pytest.ini setup.cfg conftest.py \
         requirements.txt requirements-dev.txt requirements-dev-nodeps.txt constraints.txt pyproject.toml
  find . -name '__pycache__' -prune -exec rm -rf {} + )

zip_path="$out_dir/$plugin_id-$version.zip"
rm -f "$zip_path"
if command -v zip >/dev/null 2>&1; then
  (cd "$stage" && zip -qrX "$zip_path" "$plugin_id")
else
  (cd "$stage" && python3 -m zipfile -c "$zip_path" "$plugin_id")
fi
echo "[package] $(unzip -l "$zip_path" 2>/dev/null | tail -1 | awk '{print $2}') files" >&2
echo "$zip_path"
