"""The DAGH network (torch): attention blocks, cascade network, hash layer, registry."""

from dagh.model.config import ModelConfig
from dagh.model.dagh_net import HashNet
from dagh.model.hash_layer import binarize, quantization_penalty, sign_straight_through
from dagh.model.registry import create_model, model_config, model_from_config, model_names

__all__ = ["HashNet", "ModelConfig", "binarize", "create_model", "model_config",
           "model_from_config", "model_names", "quantization_penalty", "sign_straight_through"]
