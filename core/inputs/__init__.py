"""What the user gives: layer roles and their units, dates in band descriptions and file names,
unit checks with the fix a hydrologist can apply, and the :class:`~.scene.Scene` — every input on
the fine grid and on the coarse grid (training view), read in blocks. Built on :mod:`core.raster`."""
