#!/usr/bin/env bash
# Runs every test the way CI does (CI: .ci/run):
#   1. tests/unit without QGIS (-p no:qgis); "no test collected" (exit 5) counts as a failure;
#   2. tests/qgis in real QGIS, headless (--qgis_disable_gui, offscreen), except tests marked gui;
#   3. tests marked gui under a virtual display (xvfb-run), if there are any.
# To run a subset: "$(scripts/setup.sh dev | tail -1)" -m pytest tests/qgis --qgis_disable_gui -k check_inputs
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=$(scripts/setup.sh dev | tail -1) || { echo "[test] scripts/setup.sh failed" >&2; exit 1; }
export QT_QPA_PLATFORM=offscreen
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d); export XDG_RUNTIME_DIR
  trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT
fi
failed=()

echo "[test] unit tests (no QGIS)"
"$venv" -m pytest tests/unit -p no:qgis
rc=$?; [ $rc -eq 0 ] || failed+=("unit (exit $rc$([ $rc -eq 5 ] && echo ': no test collected'))")

echo "[test] QGIS tests (headless)"
"$venv" -m pytest tests/qgis --qgis_disable_gui -m "not gui"
rc=$?; [ $rc -eq 0 ] || failed+=("qgis (exit $rc)")

# Only start a virtual display when some test is marked gui (collection exits 5 when none is).
"$venv" -m pytest tests/qgis -p no:qgis -m gui --collect-only -q >/dev/null 2>&1
rc=$?
if [ $rc -eq 5 ]; then
  echo "[test] no test marked gui"
elif ! command -v xvfb-run >/dev/null 2>&1; then
  failed+=("gui (xvfb-run not found: scripts/setup.sh installs xvfb)")
else
  echo "[test] GUI tests (xvfb)"
  env -u QT_QPA_PLATFORM xvfb-run -a "$venv" -m pytest tests/qgis -m gui
  rc=$?; [ $rc -eq 0 ] || failed+=("gui (exit $rc)")
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '[test] FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "[test] all test runs passed"
