"""Errors the engine raises for bad input, worded for a hydrologist."""
from __future__ import annotations

from typing import Optional


class InputError(ValueError):
    """A problem with one input layer, with the fix a user can apply.

    ``str(err)`` reads "Layer 'NDVI_2018': values up to 9000 ... Fix: set its scale factor to 0.0001".
    """

    def __init__(self, problem: str, layer: Optional[str] = None, fix: Optional[str] = None) -> None:
        self.problem = problem
        self.layer = layer
        self.fix = fix
        text = f"Layer '{layer}': {problem}" if layer else problem
        if fix:
            text += f" Fix: {fix}"
        super().__init__(text)


class Canceled(Exception):
    """The caller asked the run to stop; nothing was written."""
