"""Screenshot of the dock in a real QGIS desktop after a downscaling run on the Delaware sample.

    xvfb-run -a <venv python> tests/screenshot_dock.py OUT.png

The launcher (this file, run by the venv's Python) starts its own virtual screen of 1600 × 1200
(``xvfb-run``'s default screen is 640 × 480 × 8, too small to show anything; the outer display is
not needed), then the real ``qgis`` binary with a fresh profile, the checkout linked as the plugin
``soil_moisture_downscaling`` and this same file as its startup script (``--code``). Inside QGIS
the script loads the Delaware sample (31 days of ESA CCI SM 0.25°, the 1 km elevation, the DEOS
stations), opens the dock, ticks 8 days, picks the regression method with a random forest,
sets the station and in-situ tables, clicks Run, waits for the run and the site report, and
grabs the screen with ImageMagick's ``import -window root``. It writes OUT.png and, beside it,
the site report of that run (``OUT_report.html``). Exit status 0 = screenshot written.
"""
from __future__ import annotations

import os
import sys

PLUGIN_ID = "soil_moisture_downscaling"
STAGE_ENV = "SMDS_SCREENSHOT_OUT"
SCREEN = (1600, 1200)


# ---------------------------------------------------------------------------------- launcher
def launch(out_png: str) -> int:
    import shutil
    import site
    import subprocess
    import tempfile
    import time

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    qgis = shutil.which("qgis.bin") or shutil.which("qgis")
    xvfb = shutil.which("Xvfb")
    if not qgis or not xvfb or not shutil.which("import"):
        print("needs qgis, Xvfb and ImageMagick's import (apt-get install qgis xvfb imagemagick)", file=sys.stderr)
        return 2
    out_png = os.path.abspath(out_png)
    os.makedirs(os.path.dirname(out_png), exist_ok=True)
    if os.path.exists(out_png):
        os.remove(out_png)
    tmp = tempfile.mkdtemp(prefix="smds-shot-")
    try:
        plugins = os.path.join(tmp, "plugins")
        os.makedirs(plugins)
        os.symlink(root, os.path.join(plugins, PLUGIN_ID))
        profile = os.path.join(tmp, "profiles", "default", "QGIS")
        os.makedirs(profile)
        with open(os.path.join(profile, "QGIS3.ini"), "w", encoding="utf-8") as f:
            f.write("[PythonPlugins]\nsoil_moisture_downscaling=true\n"
                    "[qgis]\ncheckVersion=false\nallowVersionCheck=false\nshowTips=false\n"
                    "[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n")
        runtime = os.path.join(tmp, "runtime")
        os.makedirs(runtime, mode=0o700)
        # our own screen, large enough for QGIS and the dock
        r, w = os.pipe()
        server = subprocess.Popen([xvfb, "-displayfd", str(w), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                                   "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        os.close(w)
        number = b""
        while not number.endswith(b"\n"):  # Xvfb writes its display number once it accepts clients
            chunk = os.read(r, 16)
            if not chunk:
                print("Xvfb did not start", file=sys.stderr)
                return 1
            number += chunk
        display = ":" + number.decode().strip()  # keep the pipe open: Xvfb fails on a closed one
        env = dict(os.environ, DISPLAY=display, QGIS_PLUGINPATH=plugins, XDG_RUNTIME_DIR=runtime,
                   SOIL_MOISTURE_DOWNSCALING_NO_BROWSER="1", **{STAGE_ENV: out_png})
        env.pop("QT_QPA_PLATFORM", None)
        env.pop("XAUTHORITY", None)  # xvfb-run's cookie is for its own display, not ours
        if sys.prefix != sys.base_prefix:  # QGIS's Python must see the venv's scikit-learn and onnxruntime
            sites = [p for p in site.getsitepackages() if p.startswith(sys.prefix)]
            env["PYTHONPATH"] = os.pathsep.join(sites + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        t0 = time.time()
        try:
            proc = subprocess.run([qgis, "--nologo", "--noversioncheck", "--profiles-path",
                                   os.path.join(tmp, "profiles"), "--code", os.path.abspath(__file__)],
                                  env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        finally:
            server.terminate()
            server.wait(10)
            os.close(r)
        log = os.path.join(tmp, "shot.log")
        if not os.path.exists(out_png):
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            if os.path.exists(log):
                sys.stderr.write(open(log, encoding="utf-8").read())
            print(f"no screenshot written (qgis exit {proc.returncode})", file=sys.stderr)
            return 1
        if os.path.exists(log):
            print(open(log, encoding="utf-8").read().strip())
        print(f"screenshot: {out_png} ({os.path.getsize(out_png) / 1024:.0f} KiB) in {time.time() - t0:.0f} s")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- inside QGIS
def inside_qgis(out_png: str) -> None:
    import glob
    import shutil
    import subprocess
    import time

    import qgis.utils
    from qgis.core import (QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer)
    from qgis.PyQt.QtCore import Qt, QTimer

    iface = qgis.utils.iface
    checkout = os.path.realpath(os.path.join(os.environ["QGIS_PLUGINPATH"], PLUGIN_ID))
    sample = os.path.join(checkout, "sample_data", "delaware")
    log_path = os.path.join(os.path.dirname(os.environ["QGIS_PLUGINPATH"]), "shot.log")
    log = open(log_path, "w", encoding="utf-8")
    state = {"t0": time.time()}

    def say(text: str) -> None:
        log.write(text + "\n")
        log.flush()

    def fail(text: str) -> None:
        say("FAILED: " + text)
        QgsApplication.exit(1)

    def step_load() -> None:
        from qgis.PyQt.QtWidgets import QDockWidget
        win = iface.mainWindow()
        win.setGeometry(0, 0, *SCREEN)
        win.showMaximized()
        for d in win.findChildren(QDockWidget):  # room for the layer tree
            if d.objectName() == "Browser" or d.windowTitle() == "Browser":
                d.hide()
        if PLUGIN_ID not in qgis.utils.active_plugins:
            qgis.utils.loadPlugin(PLUGIN_ID)
            qgis.utils.startPlugin(PLUGIN_ID)
        project = QgsProject.instance()
        tree = project.layerTreeRoot()
        stations = QgsVectorLayer(
            "file://" + os.path.join(sample, "deos_stations.csv") + "?type=csv&xField=lon&yField=lat&crs=EPSG:4326",
            "DEOS stations", "delimitedtext")
        dem = QgsRasterLayer(os.path.join(sample, "elevation_1km.tif"), "elevation_1km")
        project.addMapLayers([stations, dem])
        group = tree.addGroup("ESA CCI SM v4.5 (0.25°)")
        for path in sorted(glob.glob(os.path.join(sample, "esa_cci_sm", "*.tif"))):
            lay = QgsRasterLayer(path, os.path.splitext(os.path.basename(path))[0])
            project.addMapLayer(lay, False)
            group.addLayer(lay).setItemVisibilityChecked(False)
        group.setExpanded(False)
        iface.mapCanvas().setExtent(dem.extent())
        say(f"loaded {len(project.mapLayers())} layers")
        QTimer.singleShot(1500, step_open_dock)

    def step_open_dock() -> None:
        plugin = qgis.utils.plugins.get(PLUGIN_ID)
        if plugin is None or plugin.action is None:
            return fail("the plugin did not load")
        plugin.action.trigger()
        dock = plugin.dock
        if dock is None:
            return fail("the dock did not open")
        state["dock"] = dock
        dock.setMinimumWidth(430)
        dock._check_all_sm(True)  # the whole month
        alg = "soil_moisture_downscaling:downscale_regression"
        dock.methodCombo.setCurrentIndex(dock.methodCombo.findData(alg))
        dock.set_option("REGRESSOR", 1)
        dock.set_option("N_ESTIMATORS", 100)
        dock.stationsLayerCombo.setLayer(None)
        dock.stationsCsv.setFilePath(os.path.join(sample, "deos_stations.csv"))
        dock.insituCsv.setFilePath(os.path.join(sample, "deos_daily_vwc.csv"))
        dock.outputFolder.setFilePath(os.path.join(os.path.dirname(os.environ["QGIS_PLUGINPATH"]), "runs"))
        dock.gridGroup.setCollapsed(True)
        dock.stationsGroup.setCollapsed(True)
        dock.runFinished.connect(step_done)
        state["t_run"] = time.time()
        if not dock.run():
            return fail("the pre-run check refused: " + dock.messages.toPlainText())
        say("run started")
        QTimer.singleShot(300_000, lambda: fail("the run did not finish in 5 minutes"))

    def step_done(ok: bool, info: dict) -> None:
        dock = state["dock"]
        say(f"run finished ok={ok} in {time.time() - state['t_run']:.1f} s")
        if not ok:
            return fail(dock.messages.toPlainText())
        project = QgsProject.instance()
        group = project.layerTreeRoot().findGroup(info["group"])
        for node in group.children():  # dated sub-groups: tick every date of the soil moisture
            if node.name().startswith("Soil moisture"):
                for child in node.children():
                    child.setItemVisibilityChecked(True)
        for name in ("DEOS stations", "elevation_1km"):  # the run's styled stations replace the plain ones
            for lay in project.mapLayersByName(name):
                project.layerTreeRoot().findLayer(lay.id()).setItemVisibilityChecked(False)
        state["group"] = group
        if info.get("report"):
            shutil.copy(info["report"], os.path.splitext(out_png)[0] + "_report.html")
        say(f"report: {info.get('report')}")
        sm = project.mapLayer(next(i for i in info["layers"] if project.mapLayer(i).name().startswith("Soil")))
        iface.mapCanvas().setExtent(sm.extent())
        show_date(27)  # 2018-01-28, the day with the most ESA CCI cells
        iface.mapCanvas().refresh()
        dock.scrollArea.verticalScrollBar().setValue(0)
        QTimer.singleShot(3000, step_arrange)

    def step_arrange() -> None:
        """Layer tree: the run's group and its soil-moisture dates open, the rest closed."""
        from qgis.PyQt.QtWidgets import QDockWidget
        view = iface.layerTreeView()
        project = QgsProject.instance()
        view.expandAll()
        for node in state["group"].children():
            if node.name().startswith("Soil moisture"):  # one colour ramp is enough: fold the other dates
                for k, child in enumerate(node.children()):
                    if k > 0:
                        view.collapse(view.node2index(child))
            elif node.name().startswith(("Conservation", "Heterogeneity")):
                view.collapse(view.node2index(node))
        for name in ("ESA CCI SM v4.5 (0.25°)",):
            g = project.layerTreeRoot().findGroup(name)
            if g is not None:
                view.collapse(view.node2index(g))
        for lay in project.mapLayersByName("elevation_1km") + project.mapLayersByName("DEOS stations"):
            view.collapse(view.node2index(project.layerTreeRoot().findLayer(lay.id())))
        win = iface.mainWindow()
        layers_dock = next((d for d in win.findChildren(QDockWidget) if d.windowTitle() == "Layers"), None)
        if layers_dock is not None:
            win.resizeDocks([layers_dock], [400], Qt.Horizontal)
        iface.messageBar().clearWidgets()
        QTimer.singleShot(2500, step_shoot)

    def show_date(frame: int) -> None:
        """Open the temporal controller, animated by day over the project's range, at ``frame``."""
        from qgis.core import QgsUnitTypes
        from qgis.PyQt.QtWidgets import QAbstractButton, QComboBox, QDateTimeEdit, QDockWidget, QDoubleSpinBox, QSlider

        win = iface.mainWindow()
        panel = next((d for d in win.findChildren(QDockWidget) if "Temporal" in d.windowTitle()), None)
        if panel is None:
            return say("no temporal controller panel")
        panel.show()
        panel.raise_()
        w = panel.widget()

        def child(cls, name):
            return w.findChild(cls, name)

        animated = child(QAbstractButton, "mNavigationAnimated")
        if animated is not None:
            animated.click()
        rng = QgsProject.instance().timeSettings().temporalRange()
        start, end = child(QDateTimeEdit, "mStartDateTime"), child(QDateTimeEdit, "mEndDateTime")
        if start is not None and end is not None and rng.begin().isValid():
            start.setDateTime(rng.begin())
            end.setDateTime(rng.end())
        units = child(QComboBox, "mTimeStepsComboBox")
        if units is not None:
            units.setCurrentIndex(units.findData(QgsUnitTypes.TemporalDays))
        step = child(QDoubleSpinBox, "mStepSpinBox")
        if step is not None:
            step.setValue(1.0)
        slider = child(QSlider, "mSlider")
        if slider is not None:
            slider.setValue(frame)
        say(f"temporal controller: range {rng.begin().toString('yyyy-MM-dd')} … {rng.end().toString('yyyy-MM-dd')}, "
            f"frame {frame}: " + ", ".join(f"{n}={'ok' if x is not None else 'missing'}" for n, x in
                                           (("animated", animated), ("range", start), ("units", units),
                                            ("step", step), ("slider", slider))))

    def step_shoot() -> None:
        subprocess.run(["import", "-window", "root", out_png], check=False)
        say(f"screenshot after {time.time() - state['t0']:.0f} s")
        log.close()
        QTimer.singleShot(200, lambda: QgsApplication.exit(0))

    QTimer.singleShot(2000, step_load)


if __name__ == "__main__" and os.environ.get(STAGE_ENV) and "qgis.utils" in sys.modules \
        and getattr(sys.modules["qgis.utils"], "iface", None) is not None:
    inside_qgis(os.environ[STAGE_ENV])
elif __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(launch(sys.argv[1]))
