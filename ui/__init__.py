"""The dock panel: widget state → a typed request → our own Processing algorithms, run as a task.

``run_request`` is pure Python (no Qt, no QGIS) and unit-tested on its own; the role guesser is ``core.inputs.guess``.
"""
