"""Weighting schemes: one ensemble member per static site attribute (Poehls et al., Table 1).

The paper weights its members by soil texture, sand content, clay content, Köppen climate
class, MODIS land cover, pH, and one unweighted ("free") member. The CONUS training table
of this project has none of texture, sand, clay, pH or Köppen class, so the schemes map
onto what it has:

===================  ==========================================  ===============================
scheme               classes                                     paper scheme it stands for
===================  ==========================================  ===============================
``free``             none (all weights 1)                        Free
``field_capacity``   terciles (over sites) of field capacity     Texture / Sand / Clay
``land_cover``       NLCD class code; averaged codes → missing   MCD12 land cover
``climate_lat``      terciles (over sites) of latitude           Köppen climate (thermal proxy)
``climate_wetness``  terciles (over sites) of the site's mean    Köppen climate (aridity proxy)
                     coarse soil moisture
``network``          in-situ network (USCRN, TxSON, ARM, ...)    — (balances the networks)
===================  ==========================================  ===============================

Quantile edges are computed on the *training* sites each time a member is trained, one
value per site, so each tercile holds about a third of the sites. A missing attribute
forms its own class. Weights are :func:`core.learn.weights.balanced_weights`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

from ...learn.weights import balanced_weights, quantile_classes


@dataclass(frozen=True)
class WeightingScheme:
    """How one member's sample weights are made.

    Parameters
    ----------
    name : str
        Member scheme name (used in file names and model cards).
    attribute : str or None
        Key of the class attribute in :attr:`core.methods.insitu_ensemble.samples.Samples.attributes`;
        None for the unweighted member.
    binning : {"none", "categorical", "quantile"}
    n_bins : int
        Number of quantile bins (``quantile`` only).
    paper_scheme : str
        The Poehls et al. weighting this one stands for.
    """

    name: str
    attribute: Optional[str]
    binning: str
    n_bins: int = 3
    paper_scheme: str = ""

    def classes(self, attributes: Mapping[str, np.ndarray], site_id: np.ndarray) -> np.ndarray:
        """Class label of each sample (quantile bins are computed over the given sites)."""
        if self.attribute is None:
            return np.zeros(len(site_id), dtype=np.int64)
        if self.attribute not in attributes:
            raise ValueError(f"Weighting scheme '{self.name}' needs the class attribute "
                             f"'{self.attribute}', which the samples do not have "
                             f"(they have {sorted(attributes)})")
        values = np.asarray(attributes[self.attribute])
        if self.binning == "quantile":
            return quantile_classes(values.astype(np.float64), self.n_bins, groups=site_id)
        return values

    def weights(self, attributes: Mapping[str, np.ndarray], site_id: np.ndarray) -> np.ndarray:
        """Balanced sample weights of this scheme (all ones for ``free``)."""
        if self.attribute is None:
            return np.ones(len(site_id), dtype=np.float64)
        return balanced_weights(self.classes(attributes, site_id))

    def describe(self) -> str:
        if self.attribute is None:
            return "unweighted"
        how = f"quantile classes ({self.n_bins} bins over sites)" if self.binning == "quantile" else "classes"
        return f"balanced weights over {how} of '{self.attribute}'"


#: The schemes known by name.
SCHEMES: dict[str, WeightingScheme] = {
    s.name: s for s in (
        WeightingScheme("free", None, "none", paper_scheme="Free (unweighted)"),
        WeightingScheme("field_capacity", "field_capacity", "quantile", 3, "Texture / Sand / Clay"),
        WeightingScheme("land_cover", "land_cover", "categorical", paper_scheme="MCD12 land cover"),
        WeightingScheme("climate_lat", "lat", "quantile", 3, "Koppen climate (latitude proxy)"),
        WeightingScheme("climate_wetness", "wetness", "quantile", 3, "Koppen climate (aridity proxy)"),
        WeightingScheme("network", "network", "categorical", paper_scheme="none (network balance)"),
    )
}


def get_scheme(name: str) -> WeightingScheme:
    """The scheme called ``name`` (see :data:`SCHEMES`)."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"Unknown weighting scheme '{name}'; known: {sorted(SCHEMES)}") from None
