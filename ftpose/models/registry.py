"""The model registry: names -> model classes, and option parsing for the command line.

Models register themselves with :func:`register_model`; :func:`create_model` builds one
by name, checks its options against the constructor's signature (so a typo is a clear
error, not a silently ignored keyword) and records the name and the full option set on
the model, which is what :func:`ftpose.models.save_weights` stores beside the weights.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

_MODELS: dict[str, type[nn.Module]] = {}

# How "no value" is written for an option in every text form: the command line
# (``-o transfer_from=none``, ``--set model_options.transfer_from=none``), TOML configs
# (``transfer_from = "none"``; TOML has no null) and JSON metadata.  It means ``None``.
NONE = "none"


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make ``cls`` buildable as ``create_model(name, **options)``."""

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered by {_MODELS[name].__name__}")
        _MODELS[name] = cls
        return cls

    return decorate


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_MODELS)


def create_model(name: str, **options: Any) -> nn.Module:
    """Build the registered model ``name`` with keyword ``options``.

    The model gets two attributes: ``model_name`` and ``model_options`` (every option,
    defaults included, so the model can be rebuilt exactly).
    """
    signature = _signature(name)
    options = {key: None if isinstance(value, str) and value.lower() == NONE else value
               for key, value in options.items()}
    unknown = sorted(set(options) - set(signature.parameters))
    if unknown:
        raise ValueError(f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
                         f"its options are: {', '.join(signature.parameters)}")
    bound = signature.bind(**options)
    bound.apply_defaults()
    model = _MODELS[name](**bound.arguments)
    model.model_name = name
    model.model_options = dict(bound.arguments)
    return model


def option_names(name: str) -> list[str]:
    """The options :func:`create_model` accepts for model ``name``."""
    return list(_signature(name).parameters)


def parse_options(pairs) -> dict[str, Any]:
    """Parse command-line ``KEY=VALUE`` strings into model options.

    Values read as Python literals where that is unambiguous: ``true``/``false`` ->
    bool, ``none`` (:data:`NONE`, the one spelling of "no value") -> None, integers,
    floats; anything else stays a string (so ``transfer_from=conv3`` gives ``"conv3"``).
    """
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"model option {pair!r} is not of the form KEY=VALUE")
        options[key] = _parse_value(value.strip())
    return options


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == NONE:
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _signature(name: str) -> inspect.Signature:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(list_models())}")
    return inspect.signature(_MODELS[name])
