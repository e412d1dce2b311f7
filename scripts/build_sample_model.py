"""Build examples/downscale_and_score.model3, the sample graphical model, with the PyQGIS API.

Run with QGIS's Python (the plugin need not be installed: the model refers to algorithms by id):
    python3 scripts/build_sample_model.py
The model: align the DEM-derived covariates on the target grid (an output to inspect) →
downscale the coarse series (regression + residual) → score downscaled and coarse at stations.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource as Src,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

P = "soil_moisture_downscaling:"


def build() -> QgsProcessingModelAlgorithm:
    m = QgsProcessingModelAlgorithm("Downscale and score (sample)", "Soil Moisture Downscaling")
    m.setHelpContent({"ALG_DESC": "Aligns DEM covariates, downscales a coarse soil-moisture series with a random "
                                  "forest trend + bilinear residual, and scores downscaled and coarse products at "
                                  "in-situ stations. Built by scripts/build_sample_model.py."})
    params = [
        ("sm", QgsProcessingParameterMultipleLayers("sm", "Coarse soil moisture (m³/m³)", QgsProcessing.TypeRaster)),
        ("dem", QgsProcessingParameterMultipleLayers("dem", "DEM (m)", QgsProcessing.TypeRaster)),
        ("stations", QgsProcessingParameterFile("stations", "Stations CSV (id, lat, lon)", extension="csv")),
        ("insitu", QgsProcessingParameterFile("insitu", "In-situ soil moisture CSV", extension="csv")),
    ]
    for i, (name, definition) in enumerate(params):
        mp = QgsProcessingModelParameter(name)
        mp.setPosition(QPointF(120 + 220 * i, 60))
        m.addModelParameter(definition, mp)

    def child(cid: str, alg: str, x: float, y: float, sources: dict, outputs: dict) -> None:
        c = QgsProcessingModelChildAlgorithm(P + alg)
        c.setChildId(cid)
        c.setDescription(cid.replace("_", " ").capitalize())
        c.setPosition(QPointF(x, y))
        for key, src in sources.items():
            c.addParameterSources(key, src if isinstance(src, list) else [src])
        mo = {}
        for out_name, (child_output, label) in outputs.items():
            o = QgsProcessingModelOutput(out_name, label)
            o.setChildId(cid)
            o.setChildOutputName(child_output)
            o.setPosition(QPointF(x + 200, y + 60))
            mo[out_name] = o
        c.setModelOutputs(mo)
        m.addChildAlgorithm(c)

    child("align", "align_covariates", 200, 200,
          {"DEM": Src.fromModelParameter("dem"), "SOIL_MOISTURE": Src.fromModelParameter("sm"),
           "DERIVE_TERRAIN": Src.fromStaticValue(True)},
          {"aligned": ("OUTPUT", "Aligned covariates")})
    child("downscale", "downscale_regression", 400, 320,
          {"SOIL_MOISTURE": Src.fromModelParameter("sm"), "DEM": Src.fromModelParameter("dem"),
           "REGRESSOR": Src.fromStaticValue(1), "DERIVE_TERRAIN": Src.fromStaticValue(True)},
          {"downscaled": ("OUTPUT", "Downscaled soil moisture")})
    child("score", "score_stations", 600, 440,
          {"PRODUCT": Src.fromChildOutput("downscale", "OUTPUT"), "COARSE": Src.fromModelParameter("sm"),
           "PRODUCT_NAME": Src.fromStaticValue("downscaled"), "COARSE_NAME": Src.fromStaticValue("coarse"),
           "STATIONS_CSV": Src.fromModelParameter("stations"), "INSITU_CSV": Src.fromModelParameter("insitu")},
          {"scores": ("SCORES", "Station scores"), "scores_csv": ("SCORES_CSV", "Station scores (CSV)")})
    return m


def main(path: str) -> None:
    app = QgsApplication([], False)
    app.initQgis()
    model = build()
    if not model.toFile(path):
        sys.exit(f"could not write {path}")
    print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "examples",
                                                            "downscale_and_score.model3"))
