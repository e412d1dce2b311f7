"""Parameters of the cross-scale network that training and downscaling share, and their options."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterEnum, QgsProcessingParameterNumber

from ..core.methods.cross_scale import SCHEMES, CrossScaleOptions

SCHEME = "SCHEME"
HIDDEN = "HIDDEN_UNITS"
MEMBERS = "MEMBERS"
RATIO = "RATIO"
SEED = "SEED"
MAX_EPOCHS = "MAX_EPOCHS"
SCHEME_NAMES: tuple[str, ...] = tuple(SCHEMES)
_DEFAULTS = CrossScaleOptions()


def add_network_params(alg, self_supervised_only: bool = False) -> None:
    """Scheme, training ratio, hidden units, members, seed and epochs (``self_supervised_only``: say that
    they apply only when no trained model is given)."""
    when = "Without a model folder: " if self_supervised_only else ""
    alg.add_param(QgsProcessingParameterEnum(SCHEME, alg.tr("Scheme (inputs)"), [
        "R0: window soil moisture only", "R1: + window and pixel NDVI", "R2: R1 + σ of NDVI in the window",
        "R3: R1 + window and pixel topographic index (mTPI)", "R4: R1 + R2 + R3"],
        defaultValue=SCHEME_NAMES.index(_DEFAULTS.scheme)),
        when + "Inputs of the network (Alemohammad et al.): the coarse soil moisture averaged over a window 1.25 "
        "coarse cells wide centred on the pixel (area weighted), and, by scheme, NDVI over the window and at the "
        "pixel, its σ in the window, the topographic index (mTPI of the DEM). Without NDVI its inputs are replaced "
        "by the topographic ones (with a DEM) or left out; the log says so.")
    alg.add_param(QgsProcessingParameterNumber(RATIO, alg.tr("Self-supervised training ratio"),
                                               QgsProcessingParameterNumber.Integer, _DEFAULTS.ratio, minValue=2,
                                               maxValue=8),
                  when + "Without a finer product, the coarse product averaged over ratio × ratio cells is the "
                  "training input and the product itself the target; the output resolution defaults to the "
                  "product's cell ÷ this ratio (the paper: 36 km → 9 km, ratio 4).")
    alg.add_param(QgsProcessingParameterNumber(HIDDEN, alg.tr("Hidden tanh units"), QgsProcessingParameterNumber.Integer,
                                               _DEFAULTS.hidden, minValue=1, maxValue=64),
                  when + "Neurons of the one hidden layer (tanh; linear output). The paper's choice: 5.", advanced=True)
    alg.add_param(QgsProcessingParameterNumber(MEMBERS, alg.tr("Members (seeds)"), QgsProcessingParameterNumber.Integer,
                                               _DEFAULTS.members, minValue=1, maxValue=50),
                  when + "Networks trained with different seeds; the estimate is their mean, the spread their σ.",
                  advanced=True)
    alg.add_param(QgsProcessingParameterNumber(MAX_EPOCHS, alg.tr("Maximum epochs"), QgsProcessingParameterNumber.Integer,
                                               _DEFAULTS.max_epochs, minValue=1),
                  when + "Upper bound of training passes; training stops earlier when the loss on the 20 % "
                  "early-stopping cells stops improving.", advanced=True)
    alg.add_param(QgsProcessingParameterNumber(SEED, alg.tr("Random seed"), QgsProcessingParameterNumber.Integer,
                                               _DEFAULTS.seed),
                  when + "Seed of the held-out cells and of member k (seed + k): same inputs, same network.",
                  advanced=True)


def network_options(alg, parameters, context, **extra) -> CrossScaleOptions:
    return CrossScaleOptions(
        scheme=SCHEME_NAMES[alg.parameterAsEnum(parameters, SCHEME, context)],
        ratio=alg.parameterAsInt(parameters, RATIO, context),
        hidden=alg.parameterAsInt(parameters, HIDDEN, context),
        members=alg.parameterAsInt(parameters, MEMBERS, context),
        max_epochs=alg.parameterAsInt(parameters, MAX_EPOCHS, context),
        seed=alg.parameterAsInt(parameters, SEED, context), **extra)
