"""Forms: one name that selects a model's method options, composing with the budget presets.

A model whose Config has a ``form`` field lists its forms in ``FORMS``: each a recipe of field values
(a value may be a function of the other resolved fields, e.g. ``contrast_start`` a quarter of
``steps``). Every form of a model names the same fields, so switching forms is well defined. A
recipe applies beneath whatever is given explicitly: a preset's budget fields, then a study's or the
command line's fields, win over it.

Example:
    >>> cfg = DiDConfig.from_preset("quick", form="broadcast", lambda_h=0.0)
    >>> cfg.g_arch, cfg.lambda_rec, cfg.lambda_h, cfg.contrast_start
    ('broadcast', 1.0, 0.0, 375)
    >>> cfg.replace(form="paper").g_arch        # the recipe's fields follow the form, lambda_h stays 0
    'dcgan'
"""
from __future__ import annotations

from typing import Any, Callable, Union

from .config_error import ConfigError

Recipe = dict[str, Union[Any, Callable[[dict[str, Any]], Any]]]  # field -> value, or value of the resolved fields


def form_values(cls, form: str, resolved: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``form`` for a config whose other fields are ``resolved``."""
    if form not in cls.FORMS:
        raise ConfigError.invalid(cls.__name__, "form", f"unknown form {form!r}; choose one of {sorted(cls.FORMS)}")
    return {k: v(resolved) if callable(v) else v for k, v in cls.FORMS[form].items()}


def with_form(cls, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with its form's fields beneath them (unchanged for a model without forms)."""
    if not cls.FORMS:
        return values
    resolved = {**cls.defaults(), **values}
    recipe = form_values(cls, resolved["form"], resolved)
    return {**{k: v for k, v in recipe.items() if k not in values}, **values}


def switch_form(config, overrides: dict[str, Any]) -> dict[str, Any]:
    """The field values of ``config.replace(**overrides)``: when ``overrides`` names another form,
    each field the old form set and that still holds the old form's value takes the new form's."""
    current = config.to_dict()
    values = {**current, **overrides}
    cls = type(config)
    if not cls.FORMS or overrides.get("form", config.form) == config.form:
        return values
    old = form_values(cls, config.form, current)
    new = form_values(cls, values["form"], values)
    for k, v in new.items():
        if k not in overrides and current[k] == old[k]:
            values[k] = v
    return values
