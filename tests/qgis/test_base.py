"""SmAlgorithm and the helpers every algorithm shares (help, advanced flag, packages, errors, feedback)."""
from __future__ import annotations

import pytest
from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
)

from soil_moisture_downscaling.core.errors import Canceled, InputError
from soil_moisture_downscaling.processing_provider.base import (
    CoreFeedback,
    SmAlgorithm,
    core_errors,
    steps,
)


class Dummy(SmAlgorithm):
    NAME = "dummy"
    DISPLAY_NAME = "Dummy"
    GROUP_ID = "tests"
    GROUP = "Tests"
    HELP = "Does nothing."
    REQUIRED_PACKAGES = ("json", "surely_absent_pkg_for_smds")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_param(QgsProcessingParameterNumber("N", "Number", defaultValue=1), "How many.")
        self.add_param(QgsProcessingParameterNumber("SEED", "Seed", defaultValue=0), "Random seed.", advanced=True)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        return {}


@pytest.fixture
def dummy():
    alg = Dummy().create()  # create() = createInstance() + initAlgorithm()
    assert isinstance(alg, Dummy)
    return alg


def test_identity_and_help_render_parameter_help(dummy):
    assert (dummy.name(), dummy.displayName(), dummy.group(), dummy.groupId()) == ("dummy", "Dummy", "Tests", "tests")
    text = dummy.shortHelpString()
    assert text.startswith("Does nothing.")
    assert "<dt><b>Number</b></dt><dd>How many.</dd>" in text
    assert "<dt><b>Seed</b></dt><dd>Random seed.</dd>" in text
    assert dummy.helpUrl() == ""


def test_advanced_flag_only_where_asked(dummy):
    advanced = QgsProcessingParameterDefinition.FlagAdvanced
    assert not dummy.parameterDefinition("N").flags() & advanced
    assert dummy.parameterDefinition("SEED").flags() & advanced


def test_missing_package_blocks_the_run_with_install_hint(dummy):
    ok, message = dummy.checkParameterValues({"N": 1, "SEED": 0}, QgsProcessingContext())
    assert not ok
    assert "surely_absent_pkg_for_smds" in message and "-m pip install" in message
    assert dummy.require_packages(("json",)) == (True, "")


def test_core_errors_become_processing_exceptions():
    with pytest.raises(QgsProcessingException) as info:
        with core_errors():
            raise InputError("values up to 9000", layer="NDVI", fix="set its scale factor to 0.0001")
    assert str(info.value) == str(InputError("values up to 9000", layer="NDVI", fix="set its scale factor to 0.0001"))
    assert "Layer 'NDVI'" in str(info.value)
    with pytest.raises(QgsProcessingException, match="Canceled"):
        with core_errors():
            raise Canceled()
    with pytest.raises(ZeroDivisionError):  # bugs are not disguised as input problems
        with core_errors():
            1 / 0


def test_core_feedback_maps_fractions_and_cancel(feedback):
    adapter = CoreFeedback(feedback, 20, 60)
    adapter.progress(0.5, "half way")
    adapter.progress(0.75, "half way")  # same message: pushed once
    adapter.sub(0.5, 1.0).progress(1.0)
    assert feedback.progress_values == pytest.approx([40.0, 50.0, 60.0])
    assert feedback.infos == ["half way"]
    callback = adapter.gdal_callback
    assert callback(0.0, "", None) == 1
    feedback.cancel()
    assert adapter.is_canceled() and callback(0.5, "", None) == 0
    assert not CoreFeedback(None).is_canceled()


def test_steps_pushes_labels_and_stops_on_cancel(feedback):
    seen = []
    for i, fb in steps(feedback, ["Reading", "Training"]):
        fb.setProgress(50)
        seen.append(i)
    assert seen == [0, 1] and feedback.infos == ["Reading", "Training"]
    assert feedback.progress_values[-1] == pytest.approx(100.0)

    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Canceled"):
        for _ in steps(feedback, ["Reading"]):
            pass
