"""Parameters of the cross-scale network that training and downscaling share, and their options."""
from __future__ import annotations

from ..core.methods.cross_scale import SCHEMES, CrossScaleOptions
from . import spec_params as ps
from . import specs

SCHEME = "SCHEME"
HIDDEN = "HIDDEN_UNITS"
MEMBERS = "MEMBERS"
RATIO = "RATIO"
SEED = "SEED"
MAX_EPOCHS = "MAX_EPOCHS"
SCHEME_NAMES: tuple[str, ...] = tuple(SCHEMES)


def add_network_params(alg, self_supervised_only: bool = False) -> None:
    """Scheme, training ratio, hidden units, members, seed and epochs (``self_supervised_only``: say that
    they apply only when no trained model is given)."""
    ps.add_specs(alg, *specs.cross_scale_network_specs(self_supervised_only))


def network_options(alg, parameters, context, **extra) -> CrossScaleOptions:
    return specs.cross_scale_options(ps.spec_values(alg, parameters, context, specs.cross_scale_network_specs()),
                                     **extra)
