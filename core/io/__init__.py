"""What the engine writes: atomic files (temporary name, then rename), dated GeoTIFFs with QGIS
styles and JSON run logs, stacks of aligned covariates, quick-look PNGs and the HTML page shell."""
