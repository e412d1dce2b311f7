"""Run this checkout's algorithms in ``qgis_process`` headless, as a user's QGIS would.

QGIS knows a plugin by its folder name, and a checkout's folder name is arbitrary: the checkout
is linked into a temporary plugins folder as ``soil_moisture_downscaling``. Debian 12's
``/usr/bin/qgis_process`` wrapper is broken, so ``qgis_process.bin`` is preferred.
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tempfile
from typing import Any

PLUGIN_ID = "soil_moisture_downscaling"


class QgisProcess:
    """``with QgisProcess(checkout) as qp: qp.run("downscale_regression", PARAM=value, ...)``."""

    def __init__(self, checkout: str) -> None:
        self.checkout = os.path.abspath(checkout)
        self.binary = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
        if self.binary is None:
            raise SystemExit("qgis_process is not installed (apt-get install qgis)")

    def __enter__(self) -> "QgisProcess":
        self.tmp = tempfile.mkdtemp(prefix="smds-qgis-")
        plugins = os.path.join(self.tmp, "plugins")
        os.makedirs(plugins)
        os.symlink(self.checkout, os.path.join(plugins, PLUGIN_ID))
        runtime = os.path.join(self.tmp, "runtime")
        os.makedirs(runtime, mode=0o700)
        self.env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=os.path.join(self.tmp, "cfg"),
                        QGIS_PLUGINPATH=plugins, XDG_RUNTIME_DIR=runtime)
        if sys.prefix != sys.base_prefix:  # QGIS's embedded Python must see this venv's packages
            sites = [p for p in site.getsitepackages() if p.startswith(sys.prefix)]
            self.env["PYTHONPATH"] = os.pathsep.join(sites + [self.env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self._call(["plugins", "enable", PLUGIN_ID])
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _call(self, args: list[str], echo: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"qgis_process {' '.join(args[:2])} failed (exit {proc.returncode})")
        return proc

    def run(self, algorithm: str, **params: Any) -> subprocess.CompletedProcess:
        """Run ``soil_moisture_downscaling:<algorithm>`` (or a ``.model3`` path); lists repeat the parameter."""
        alg = algorithm if algorithm.endswith(".model3") or ":" in algorithm else f"{PLUGIN_ID}:{algorithm}"
        args = ["run", alg]
        for key, value in params.items():
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                args.append(f"--{key}={v}")
        return self._call(args)
