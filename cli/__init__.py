"""The command line (``python -m soil_moisture_downscaling``, ``smds``): the Processing algorithms'
parameters (:mod:`processing_provider.specs`) as options, on the same engine, without QGIS."""
