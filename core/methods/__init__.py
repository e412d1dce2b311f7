"""Downscaling methods. Each module is one method; they share :mod:`core.scene` and :mod:`core.output`."""
