"""Harness for tests that need real QGIS (run with ``--qgis_disable_gui``; see scripts/test.sh).

The checkout is linked into a temporary plugins folder as ``soil_moisture_downscaling`` (QGIS
knows a plugin by its folder name; the checkout's own name is arbitrary), and that folder is put
on ``sys.path`` when this conftest is imported, so test modules may import
``soil_moisture_downscaling.…`` at their top. Always import plugin code through that package
name, never as top-level ``core``/``processing_provider``: two copies of a module mean two
``InputError`` classes.

Fixtures (all session-scoped unless said otherwise):

``plugin_dir``       the temporary plugins folder holding the link.
``plugin_package``   the imported ``soil_moisture_downscaling`` package.
``plugin``           ``classFactory(None)`` after ``initProcessing()`` — exactly what
                     ``qgis_process`` does; its provider sits in pytest-qgis's
                     ``QgsApplication.processingRegistry()``; unloaded at the end.
``provider``         that registered ``QgsProcessingProvider``.
``run_alg``          ``run_alg(alg_id, params, *, feedback=None, context=None) -> dict``: runs
                     through ``processing.run`` (Processing initialised once); ``alg_id`` may omit
                     the ``soil_moisture_downscaling:`` prefix. Failures raise
                     ``QgsProcessingException`` carrying the algorithm's message.
``feedback``         (per test) a ``QgsProcessingFeedback`` that records ``infos``, ``warnings``,
                     ``errors`` and the last ``progress`` for assertions.
``qgis_process``     ``qgis_process(*args, check=True, timeout=300) -> CompletedProcess``: runs
                     ``qgis_process.bin`` headless with its own config folder and
                     ``QGIS_PLUGINPATH`` = ``plugin_dir``, after ``plugins enable
                     soil_moisture_downscaling``; ``check`` fails the test on a non-zero exit,
                     showing stdout and stderr. It sees the test venv's site-packages
                     (scikit-learn, onnxruntime) on top of Debian's.
"""
from __future__ import annotations

import atexit
import importlib
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

import pytest
from qgis.core import QgsApplication, QgsProcessingFeedback

PLUGIN_ID = "soil_moisture_downscaling"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _link_plugin() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="smds-plugins-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # removes the link, not the checkout
    (folder / PLUGIN_ID).symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(folder))
    return folder


_PLUGIN_DIR = _link_plugin()


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qgis)


@pytest.fixture(scope="session")
def plugin_dir() -> Path:
    return _PLUGIN_DIR


@pytest.fixture(scope="session")
def plugin_package(plugin_dir):
    package = importlib.import_module(PLUGIN_ID)
    assert Path(package.__file__).resolve().parent == REPO_ROOT, package.__file__
    return package


@pytest.fixture(scope="session")
def plugin(plugin_package, qgis_processing):
    instance = plugin_package.classFactory(None)
    instance.initProcessing()
    yield instance
    instance.unload()


@pytest.fixture(scope="session")
def provider(plugin):
    registered = QgsApplication.processingRegistry().providerById(PLUGIN_ID)
    assert registered is not None, f"provider '{PLUGIN_ID}' is not in the processing registry"
    return registered


class RecordingFeedback(QgsProcessingFeedback):
    """Feedback that keeps what the algorithm reported."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.progress_values: list[float] = []
        self.progressChanged.connect(self.progress_values.append)

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning):  # noqa: N802
        self.warnings.append(warning)
        super().pushWarning(warning)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        self.errors.append(error)
        super().reportError(error, fatalError)


@pytest.fixture
def feedback() -> RecordingFeedback:
    return RecordingFeedback()


@pytest.fixture(scope="session")
def run_alg(provider) -> Callable[..., dict]:
    import processing
    from processing.core.Processing import Processing

    Processing.initialize()  # idempotent; pytest-qgis's qgis_processing already did it

    def run(alg_id: str, params: dict, *, feedback: Optional[QgsProcessingFeedback] = None, context=None) -> dict:
        if ":" not in alg_id:
            alg_id = f"{PLUGIN_ID}:{alg_id}"
        return processing.run(alg_id, params, feedback=feedback or QgsProcessingFeedback(), context=context)

    return run


def _qgis_process_binary() -> Optional[str]:
    # Debian 12's /usr/bin/qgis_process wrapper is broken; the real binary is qgis_process.bin.
    return shutil.which("qgis_process.bin") or shutil.which("qgis_process")


@pytest.fixture(scope="session")
def qgis_process(plugin_dir, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    binary = _qgis_process_binary()
    if binary is None:
        pytest.skip("qgis_process is not installed")
    config = tmp_path_factory.mktemp("qgis_process_config")
    runtime = tmp_path_factory.mktemp("xdg_runtime")
    runtime.chmod(0o700)
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        QGIS_OPTIONS_PATH=str(config),
        QGIS_PLUGINPATH=str(plugin_dir),
        XDG_RUNTIME_DIR=str(runtime),
    )
    if sys.prefix != sys.base_prefix:  # let QGIS's embedded Python see the test venv's packages
        venv_sites = [p for p in site.getsitepackages() if p.startswith(sys.prefix) and os.path.isdir(p)]
        env["PYTHONPATH"] = os.pathsep.join([*venv_sites, *filter(None, [env.get("PYTHONPATH")])])

    def run(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [binary, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"qgis_process {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    run("plugins", "enable", PLUGIN_ID)
    return run
