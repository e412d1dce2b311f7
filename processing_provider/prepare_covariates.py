"""Prepare a dated covariate series: spectral index, quality mask, gap filling, Savitzky–Golay smoothing."""
from __future__ import annotations

import re

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..core.inputs.indices import BAND_ROLES, INDEX_BANDS
from ..core.io.covariate_series import SeriesOptions, prepare_series
from .base import TYPE_RASTER, CoreFeedback, SmAlgorithm, core_errors
from .site_report import dated_refs

#: Enum order of the INDEX parameter; "" = the input series as it is.
INDEXES = ("", "ndvi", "evi", "ndwi", "nsdsi")
_ROLE_LABELS = {"red": "Red", "nir": "Near infrared (NIR)", "blue": "Blue", "green": "Green",
                "swir1": "Shortwave infrared 1 (≈1.6 µm)", "swir2": "Shortwave infrared 2 (≈2.1 µm)"}


class PrepareCovariates(SmAlgorithm):
    NAME = "prepare_covariates"
    DISPLAY_NAME = "Prepare a covariate series (mask, fill gaps, smooth, spectral indices)"
    GROUP_ID = "inputs"
    GROUP = "Inputs"
    HELP = (
        "Makes a dated covariate series (one layer per date, or dated bands) ready for downscaling, as the "
        "stacking paper prepares MODIS: optionally computes a spectral index from reflectance bands given by role "
        "(NDVI = (NIR−red)/(NIR+red); EVI = 2.5 (NIR−red)/(NIR + 6 red − 7.5 blue + 1); "
        "NDWI = (green−NIR)/(green+NIR); NSDSI = (SWIR1−SWIR2)/SWIR1), masks pixels by a quality layer and a "
        "value range, fills gaps by linear interpolation in time between valid values at most N days before and "
        "after (default 15), and smooths each pixel's series with a Savitzky–Golay filter (half-width 5, order 4 "
        "by default). A pixel never gets a value farther than N days from real data on both sides.<br>"
        "Output: one float32 GeoTIFF on the grid of the first layer, one band per date (band description = ISO "
        "date), which the downscaling algorithms take as a dated covariate."
    )

    INPUT = "INPUT"
    INDEX = "INDEX"
    REFLECTANCE_SCALE = "REFLECTANCE_SCALE"
    QUALITY = "QUALITY"
    QUALITY_VALUES = "QUALITY_VALUES"
    QUALITY_BITS = "QUALITY_BITS"
    VALID_MIN = "VALID_MIN"
    VALID_MAX = "VALID_MAX"
    MAX_GAP_DAYS = "MAX_GAP_DAYS"
    SMOOTH = "SMOOTH"
    SG_HALF_WIDTH = "SG_HALF_WIDTH"
    SG_ORDER = "SG_ORDER"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_param(QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Covariate series"), TYPE_RASTER,
                                                            optional=True),
                       "The dated covariate (NDVI, LST, albedo…): one layer per date with the date in its name, or "
                       "a multi-band layer with dated band descriptions. Not needed when an index is computed.")
        self.add_param(QgsProcessingParameterEnum(self.INDEX, self.tr("Spectral index from reflectance bands"),
                                                  [self.tr("None: use the covariate series"), "NDVI", "EVI", "NDWI",
                                                   "NSDSI"], defaultValue=0),
                       "Compute this index from the reflectance bands below (dated like the series) instead.")
        for role in BAND_ROLES:
            needs = ", ".join(k.upper() for k, v in INDEX_BANDS.items() if role in v)
            self.add_param(QgsProcessingParameterMultipleLayers(role.upper(), self.tr(f"{_ROLE_LABELS[role]} reflectance"),
                                                                TYPE_RASTER, optional=True),
                           f"Dated {_ROLE_LABELS[role].lower()} surface reflectance (for {needs}).")
        self.add_param(QgsProcessingParameterNumber(self.REFLECTANCE_SCALE, self.tr("Reflectance scale factor"),
                                                    QgsProcessingParameterNumber.Double, 1.0, minValue=0.0),
                       "Multiplies the reflectance bands into fractions (0–1): 0.0001 for raw MODIS or Sentinel-2 "
                       "integers; 1 when the files already carry a scale factor.")
        self.add_param(QgsProcessingParameterMultipleLayers(self.QUALITY, self.tr("Quality layer series"), TYPE_RASTER,
                                                            optional=True),
                       "Optional: a quality (QA) layer per date, the same dates as the series.")
        self.add_param(QgsProcessingParameterString(self.QUALITY_VALUES, self.tr("Quality values to keep"), optional=True),
                       "Comma-separated quality values that are good (e.g. 0,1 for MOD13 pixel reliability); empty = any.")
        self.add_param(QgsProcessingParameterNumber(self.QUALITY_BITS, self.tr("Quality bits that must be 0"),
                                                    QgsProcessingParameterNumber.Integer, 0, minValue=0),
                       "A bit mask: pixels whose quality value has any of these bits set are masked (e.g. 3 for the "
                       "MOD11 QC bits 0–1). 0 = no bit test.", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.VALID_MIN, self.tr("Valid minimum"),
                                                    QgsProcessingParameterNumber.Double, None, optional=True),
                       "Values below are masked (after the index is computed).")
        self.add_param(QgsProcessingParameterNumber(self.VALID_MAX, self.tr("Valid maximum"),
                                                    QgsProcessingParameterNumber.Double, None, optional=True),
                       "Values above are masked.")
        self.add_param(QgsProcessingParameterNumber(self.MAX_GAP_DAYS, self.tr("Fill gaps up to (days each side)"),
                                                    QgsProcessingParameterNumber.Integer, 15, minValue=0),
                       "A missing value is interpolated linearly between the nearest valid values when both lie at "
                       "most this many days before and after it (the stacking paper: 15). 0 = no filling.")
        self.add_param(QgsProcessingParameterBoolean(self.SMOOTH, self.tr("Savitzky–Golay smoothing"), True),
                       "Smooth each pixel's series with a Savitzky–Golay filter on the actual dates (dates whose "
                       "window still holds a gap are left as they are).")
        self.add_param(QgsProcessingParameterNumber(self.SG_HALF_WIDTH, self.tr("Savitzky–Golay half-width (dates)"),
                                                    QgsProcessingParameterNumber.Integer, 5, minValue=1, maxValue=50),
                       "m: the window holds 2m + 1 dates (the stacking paper: 5).", advanced=True)
        self.add_param(QgsProcessingParameterNumber(self.SG_ORDER, self.tr("Savitzky–Golay polynomial order"),
                                                    QgsProcessingParameterNumber.Integer, 4, minValue=0, maxValue=10),
                       "d: order of the local polynomial (the stacking paper: 4); below 2m + 1.", advanced=True)
        self.add_param(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Prepared covariate series")),
                       "One float32 band per date, band description = ISO date.")

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        index = INDEXES[self.parameterAsEnum(parameters, self.INDEX, context)]
        if not index and not self.parameterAsLayerList(parameters, self.INPUT, context):
            return False, self.tr("No covariate series was given. Fix: select the dated layers, or pick a spectral "
                                  "index and give its reflectance bands.")
        if index:
            missing = [r for r in INDEX_BANDS[index] if not self.parameterAsLayerList(parameters, r.upper(), context)]
            if missing:
                return False, self.tr(f"{index.upper()} needs the {', '.join(_ROLE_LABELS[r] for r in missing)} "
                                      "reflectance layers. Fix: give them (dated like the series).")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        index = INDEXES[self.parameterAsEnum(parameters, self.INDEX, context)] or None
        series = dated_refs(self, self.parameterAsLayerList(parameters, self.INPUT, context), "covariate series")
        bands = {r: dated_refs(self, self.parameterAsLayerList(parameters, r.upper(), context), r)
                 for r in BAND_ROLES} if index else None
        quality = dated_refs(self, self.parameterAsLayerList(parameters, self.QUALITY, context), "quality")
        text = self.parameterAsString(parameters, self.QUALITY_VALUES, context)
        try:
            good = tuple(int(v) for v in re.split(r"[,;\s]+", text.strip()) if v)
        except ValueError:
            raise QgsProcessingException(self.tr(f"'{text}' is not a list of integers. Fix: write quality values "
                                                 "as 0,1")) from None

        def number(key):
            return self.parameterAsDouble(parameters, key, context) if parameters.get(key) not in (None, "") else None

        options = SeriesOptions(
            valid_min=number(self.VALID_MIN), valid_max=number(self.VALID_MAX), quality_values=good,
            quality_bits=self.parameterAsInt(parameters, self.QUALITY_BITS, context),
            max_gap_days=self.parameterAsInt(parameters, self.MAX_GAP_DAYS, context),
            smooth=self.parameterAsBoolean(parameters, self.SMOOTH, context),
            half_width=self.parameterAsInt(parameters, self.SG_HALF_WIDTH, context),
            order=self.parameterAsInt(parameters, self.SG_ORDER, context),
            reflectance_scale=self.parameterAsDouble(parameters, self.REFLECTANCE_SCALE, context),
        )
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        cf = CoreFeedback(feedback)
        with core_errors():
            result = prepare_series(series, out, options, index, bands, quality, cf.progress, cf.is_canceled)
        for line in result.log:
            feedback.pushInfo(line)
        return {self.OUTPUT: out}
