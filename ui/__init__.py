"""The dock panel: widget state → a typed request → our own Processing algorithms, run as a task.

``guess`` and ``run_request`` are pure Python (no Qt, no QGIS) and unit-tested on their own.
"""
