"""Geostatistics building blocks: variogram models and fitting, block (area) covariances on a
regular pixel lattice, Goovaerts' deconvolution, and an ordinary-kriging engine.

QGIS-free and grid-agnostic: everything works in *pixel index* space of a regular lattice of
``px`` × ``py`` metres, so the residual models of :mod:`core.methods.residual` can use it for
point kriging, area-to-point and area-to-area kriging alike.
"""
