"""Pick the richest bundled feature tier a scene's layers satisfy.

Bundled ensembles carry a ``tier`` in their card (``{name, rank, layers}``; higher rank = richer
inputs, e.g. 1 = coarse soil moisture + DEM, 2 = + NDVI, 3 = + backscatter, soil and land cover).
:func:`pick_tier` returns the highest-ranked one whose every input the scene supplies
(:func:`core.methods.insitu_ensemble.apply.missing_inputs`), with one line per richer tier saying
what it would have needed — so the choice can be stated to the user.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ...errors import InputError
from ...inputs.scene import TERRAIN_FEATURES, Scene
from .apply import missing_inputs


@dataclass(frozen=True)
class LayerRoles:
    """Stand-in for a :class:`~core.inputs.scene.Scene` before one is built (the dock): the
    covariate feature names that layers of the given roles will give, named as the scene names
    them (``<role>``, ``<role>_2`` for a second layer; ``slope`` and ``mtpi`` from a DEM)."""

    covariate_names: tuple[str, ...]

    @classmethod
    def of(cls, role_counts: dict, derive_terrain: bool = True) -> "LayerRoles":
        """``role_counts``: role name (e.g. ``"dem"``, ``"ndvi"``) → number of layers given."""
        names = []
        for role, n in role_counts.items():
            names += [role if k == 0 else f"{role}_{k + 1}" for k in range(int(n))]
        if derive_terrain and role_counts.get("dem"):
            names += list(TERRAIN_FEATURES)
        return cls(tuple(names))


@dataclass(frozen=True)
class TierChoice:
    """The chosen ensemble and why: ``notes`` name the richer tiers left out and what they lack."""

    name: str
    folder: str
    rank: int
    notes: tuple[str, ...]

    def message(self) -> str:
        head = f"Chose the bundled tier '{self.name}' (rank {self.rank}): the richest one your layers satisfy."
        return " ".join([head, *self.notes])


def pick_tier(infos: Sequence, scene: "Scene | LayerRoles") -> TierChoice:
    """The richest tier among ``infos`` (objects with ``name``, ``folder``, ``inputs``, ``tier``,
    ``valid`` — :class:`core.learn.model_folder.EnsembleInfo`) that ``scene`` (or the
    :class:`LayerRoles` of the layers about to be given) can feed.

    Raises
    ------
    InputError
        When no tiered ensemble's inputs are all available (the message lists what each lacks).
    """
    tiered = sorted((i for i in infos if i.valid and i.tier), key=lambda i: -int(i.tier["rank"]))
    if not tiered:
        raise InputError(problem="no bundled ensemble declares a feature tier.", layer="Ensemble",
                         fix="choose an ensemble from the list or give an ensemble folder.")
    notes = []
    for info in tiered:
        _, missing = missing_inputs(info.inputs, scene)
        if not missing:
            return TierChoice(info.name, info.folder, int(info.tier["rank"]), tuple(notes))
        notes.append(f"'{info.name}' (rank {info.tier['rank']}) would also need {'; '.join(missing)}.")
    raise InputError(problem="no bundled tier can run on the given layers: " + " ".join(notes), layer="Ensemble",
                     fix="give at least the coarse soil moisture and a DEM with 'Derive terrain covariates' on.")
