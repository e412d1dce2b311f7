"""Drought anomaly of a soil-moisture series (Jin et al. §4)."""
from __future__ import annotations

import csv
import os

import numpy as np
from osgeo import gdal
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.errors import InputError
from ..core.evaluation import drought
from ..core.evaluation.stations import raster_dates
from ..core.inputs.dates import format_date
from ..core.io.atomic import atomic_open
from ..core.io.output import RasterWriter, qml_pseudocolor, write_text_atomic
from ..core.raster.grid import Grid, Window
from .base import CoreFeedback, SmAlgorithm, core_errors, raster_source
from .output_layers import load_on_completion

gdal.UseExceptions()

#: Standardised anomaly: red = drier than usual, blue = wetter.
ANOMALY_RAMP = ((-2.5, "#b2182b"), (-1.0, "#ef8a62"), (0.0, "#f7f7f7"), (1.0, "#67a9cf"), (2.5, "#2166ac"))


class DroughtAnomaly(SmAlgorithm):
    NAME = "drought_anomaly"
    DISPLAY_NAME = "Drought anomaly (standardised, against the other years)"
    GROUP_ID = "evaluation"
    GROUP = "Evaluation"
    HELP = (
        "For a dated soil-moisture series (e.g. a downscaled product, one band per date), the standardised "
        "anomaly of every pixel and date: (value − mean) / standard deviation of the same pixel in the same "
        "calendar period of the <i>other</i> years (or of all years of a given climatology series), and the share "
        "of pixels below −1σ per date — the relative drought indicator of Jin et al. A calendar period is the day "
        "of year divided into periods of the series' spacing (e.g. 8 or 10 days); 29 February counts as 28 "
        "February. A pixel needs at least two reference years."
    )

    INPUT = "INPUT"
    CLIMATOLOGY = "CLIMATOLOGY"
    PERIOD_DAYS = "PERIOD_DAYS"
    OUTPUT = "OUTPUT"
    SHARES_CSV = "SHARES_CSV"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_param(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Soil-moisture series")),
                       "One raster, one band per date (band descriptions YYYY-MM-DD), spanning several years.")
        self.add_param(QgsProcessingParameterRasterLayer(self.CLIMATOLOGY, self.tr("Climatology series"),
                                                         optional=True),
                       "Another dated series on the same grid to compare with (all its years); by default each date "
                       "is compared with the other years of the series itself.")
        self.add_param(QgsProcessingParameterNumber(self.PERIOD_DAYS, self.tr("Calendar period (days)"),
                                                    QgsProcessingParameterNumber.Integer, 0, minValue=0, maxValue=366),
                       "Length of a calendar period; 0 = the series' typical spacing between dates.", advanced=True)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Standardised anomaly")),
                       "One band per date (σ units; below −1 = dry).")
        self.add_param(QgsProcessingParameterFileDestination(self.SHARES_CSV, self.tr("Share of pixels below −1σ (CSV)"),
                                                             self.tr("CSV files (*.csv)")),
                       "date, period, pixels with an anomaly, share of them below −1σ.")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        src, _ = raster_source(self.parameterAsRasterLayer(parameters, self.INPUT, context), self.tr("soil-moisture"))
        clim_layer = self.parameterAsRasterLayer(parameters, self.CLIMATOLOGY, context)
        clim = raster_source(clim_layer, self.tr("climatology"))[0] if clim_layer is not None else None
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        out = out if out.lower().endswith((".tif", ".tiff")) else os.path.splitext(out)[0] + ".tif"
        csv_path = self.parameterAsFileOutput(parameters, self.SHARES_CSV, context)
        period = self.parameterAsInt(parameters, self.PERIOD_DAYS, context) or None
        with core_errors():
            ds = gdal.Open(src)
            dates = raster_dates(ds, src)
            grid = Grid.from_dataset(ds, src)
            cds = gdal.Open(clim) if clim else None
            if cds is not None and (cds.RasterXSize, cds.RasterYSize) != (ds.RasterXSize, ds.RasterYSize):
                raise QgsProcessingException(self.tr("The climatology is not on the grid of the series. Fix: give a "
                                                     "climatology with the same extent and resolution."))
            plan = drought.plan(dates, period, raster_dates(cds, clim) if cds is not None else None)
            usable = sum(len(r) >= 2 for r in plan.references)
            if usable == 0:
                raise InputError(problem="no date has two reference years in its calendar period.", layer=src,
                                 fix="give a series spanning at least three years, or a climatology series.")
            feedback.pushInfo(self.tr(f"{len(dates)} dates, calendar periods of {plan.period_days} days; "
                                      f"{usable} dates have ≥ 2 reference years"))
            cf = CoreFeedback(feedback)
            names = [format_date(d) for d in dates]
            with RasterWriter(out, grid, names, metadata={"QUANTITY": "standardised soil-moisture anomaly",
                                                          "TIMES": ",".join(names)}) as w:
                def write(r0, block):
                    for t in range(block.shape[0]):
                        w.write(t, Window(r0, block.shape[1]), block[t])

                shares = drought.stream_anomalies(
                    lambda r0, n: _read(ds, r0, n), grid.height, grid.width, plan, write,
                    (lambda r0, n: _read(cds, r0, n)) if cds is not None else None,
                    is_canceled=cf.is_canceled, progress=cf.progress)
                w.commit(overviews=True)
            write_text_atomic(os.path.splitext(out)[0] + ".qml", qml_pseudocolor(ANOMALY_RAMP, label_units="σ"))
            with atomic_open(csv_path, "w", newline="") as f:
                wr = csv.writer(f)
                wr.writerow(["date", "period", "share_below_minus_1sd"])
                for d, k, s in zip(dates, plan.periods, shares):
                    wr.writerow([format_date(d), k, "" if not np.isfinite(s) else f"{s:.4f}"])
            worst = int(np.nanargmax(shares)) if np.isfinite(shares).any() else None
            if worst is not None:
                feedback.pushInfo(self.tr(f"Driest date: {dates[worst]} with {shares[worst]:.1%} of pixels below −1σ"))
        load_on_completion(context, out, dates, os.path.splitext(out)[0] + ".qml")
        return {self.OUTPUT: out, self.SHARES_CSV: csv_path}


def _read(ds, r0: int, n: int) -> np.ndarray:
    a = ds.ReadAsArray(0, r0, ds.RasterXSize, n).astype(np.float64).reshape(ds.RasterCount, n, ds.RasterXSize)
    for b in range(ds.RasterCount):
        nd = ds.GetRasterBand(b + 1).GetNoDataValue()
        if nd is not None and np.isfinite(nd):
            a[b][a[b] == nd] = np.nan
    return a
