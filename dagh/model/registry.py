"""Registered model constructors: ``create_model("dagh", bits=48)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagh.errors import ConfigError
from dagh.model.config import ModelConfig
from dagh.model.dagh_net import HashNet

_REGISTRY: dict[str, Callable[..., ModelConfig]] = {}


def register(name: str):
    """Register a function returning the default ModelConfig of a named model."""
    def wrap(fn: Callable[..., ModelConfig]) -> Callable[..., ModelConfig]:
        _REGISTRY[name] = fn
        return fn
    return wrap


@register("dagh")
def dagh_config(**overrides: Any) -> ModelConfig:
    """DAGH: input attention, channel + spatial attention per stage, fusion, sign layer."""
    return ModelConfig(name="dagh", **overrides)


@register("ddh")
def ddh_config(**overrides: Any) -> ModelConfig:
    """DDH-style baseline: narrower conv trunk, no attention, tanh relaxation."""
    defaults = dict(widths=(20, 40, 60, 80), input_attention=False, channel_attention=False,
                    spatial_attention=False, multiscale_fusion=True, hash_activation="tanh",
                    fc_dim=256)
    defaults.update(overrides)
    return ModelConfig(name="ddh", **defaults)


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The ModelConfig of a registered model with ``overrides`` applied."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of {model_names()}")
    try:
        return _REGISTRY[name](**overrides)
    except TypeError as exc:
        raise ConfigError(f"bad option for model {name!r}: {exc}") from exc


def create_model(name: str = "dagh", **overrides: Any) -> HashNet:
    """Build a registered network, e.g. ``create_model("dagh", bits=12, input_size=64)``."""
    return HashNet(model_config(name, **overrides))


def model_from_config(config: ModelConfig) -> HashNet:
    return HashNet(config)
