"""The config base class: presets, unknown fields, type coercion from command-line strings."""
from dataclasses import dataclass
from typing import ClassVar

import pytest

from did_core.models import ConfigError, available_models, get_model
from did_core.models.base import TrainConfig, TrainingDiverged


@dataclass
class ToyConfig(TrainConfig):
    model: ClassVar[str] = "toy"
    width: int = 8
    lr: float = 1e-3
    norm: bool = True
    note: str | None = None


def test_preset_applies_overrides_on_top_of_defaults():
    cfg = ToyConfig.from_preset("smoke", width=3)
    assert cfg.steps == TrainConfig.PRESETS["smoke"]["steps"]
    assert cfg.width == 3 and cfg.lr == 1e-3


def test_strings_from_the_command_line_are_coerced_to_field_types():
    cfg = ToyConfig.from_dict({"width": "16", "lr": "2e-4", "norm": "false", "note": "None"})
    assert (cfg.width, cfg.lr, cfg.norm, cfg.note) == (16, 2e-4, False, None)


@pytest.mark.parametrize(
    "values, field",
    [({"widht": 3}, "widht"), ({"width": "abc"}, "width"), ({"width": 2.5}, "width"), ({"norm": "maybe"}, "norm")],
)
def test_bad_fields_are_named_in_the_error(values, field):
    with pytest.raises(ConfigError, match=field):
        ToyConfig.from_dict(values)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="smoke"):
        ToyConfig.from_preset("huge")


def test_replace_validates_and_keeps_the_rest():
    cfg = ToyConfig(width=5).replace(seed=7)
    assert (cfg.width, cfg.seed) == (5, 7)
    with pytest.raises(ConfigError):
        cfg.replace(nope=1)


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(ConfigError, match="did"):
        get_model("no-such-model")
    assert "did" in available_models()


def test_divergence_error_says_step_and_loss():
    err = TrainingDiverged(12, "L_H", float("nan"))
    assert "step 12" in str(err) and "L_H" in str(err)
