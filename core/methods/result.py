"""What every method returns, and the progress helpers its fit and predict steps share."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..inputs.scene import IsCanceled, Progress


@dataclass
class DownscaleResult:
    """One run's outputs: the main raster, its run log (JSON), the dates, per-date conservation
    figures (may be empty for methods that do not conserve the coarse value), what was fitted and
    how long it took; ``extra`` holds method-specific outputs (e.g. a spread or kriging-SD raster)."""
    path: str
    log_path: str
    dates: list[_dt.date]
    conservation: list[dict[str, float]]
    training: dict[str, Any]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def progress_span(progress: Optional[Progress], start: float, end: float) -> Progress:
    """A progress callback mapping 0…1 onto ``start``…``end`` of ``progress`` (a no-op if None)."""
    if progress is None:
        return lambda f, m: None
    return lambda f, m: progress(start + (end - start) * f, m)


def never_canceled() -> bool:
    return False


def canceled_fn(is_canceled: Optional[IsCanceled]) -> Callable[[], bool]:
    return is_canceled or never_canceled
