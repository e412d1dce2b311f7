"""Grids and pixels: the target grid and its blocks, reading any GDAL layer onto it (warped VRTs,
resampling by role), cell aggregation (mean / majority per coarse cell) and terrain derivatives
(slope, TPI, mTPI). Knows nothing about soil moisture, dates or methods."""
