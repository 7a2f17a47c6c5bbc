import pytest
import torch

from dagh.errors import ConfigError
from dagh.model import ModelConfig, create_model, model_config, model_from_config

ABLATIONS = [
    {},
    dict(input_attention=False),
    dict(channel_attention=False),
    dict(spatial_attention=False),
    dict(multiscale_fusion=False),
    dict(input_attention=False, channel_attention=False, spatial_attention=False),
    dict(hash_activation="tanh"),
]


@pytest.mark.parametrize("overrides", ABLATIONS, ids=lambda o: ",".join(o) or "full")
@pytest.mark.parametrize("bits", [8, 12, 48, 64, 256])
def test_dagh_output_shapes(bits, overrides):
    model = create_model("dagh", bits=bits, widths=(8, 16, 16, 32), fc_dim=32, **overrides)
    h, b = model(torch.randn(3, 3, 32, 32))
    assert h.shape == b.shape == (3, bits)
    codes = model.eval().encode(torch.randn(2, 3, 32, 32))
    assert codes.shape == (2, bits)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize("size", [32, 64, 112])
def test_input_sizes(size):
    model = create_model("dagh", bits=24, input_size=size, widths=(8, 16, 16), fc_dim=16)
    h, b = model(torch.randn(2, 3, size, size))
    assert h.shape == (2, 24)


def test_sign_layer_gives_binary_codes_in_training_and_tanh_does_not():
    x = torch.randn(4, 3, 32, 32)
    _, b = create_model("dagh", bits=16, widths=(8, 16), fc_dim=16)(x)
    assert set(b.unique().tolist()) <= {-1.0, 1.0}
    _, t = create_model("dagh", bits=16, widths=(8, 16), fc_dim=16, hash_activation="tanh")(x)
    assert (t.abs() < 1).all()


def test_ddh_baseline_has_no_attention_and_tanh():
    cfg = model_config("ddh", bits=12)
    assert not (cfg.input_attention or cfg.channel_attention or cfg.spatial_attention)
    assert cfg.hash_activation == "tanh"
    model = create_model("ddh", bits=12)
    attention = {"InputSpatialAttention", "ChannelAttention", "SpatialAttention"}
    assert not attention & {type(m).__name__ for m in model.modules()}
    h, _ = model(torch.randn(2, 3, 32, 32))
    assert h.shape == (2, 12)


def test_attention_switches_remove_modules():
    full = create_model("dagh", bits=12, widths=(8, 16), fc_dim=16)
    bare = create_model("dagh", bits=12, widths=(8, 16), fc_dim=16, input_attention=False,
                        channel_attention=False, spatial_attention=False)
    names = lambda m: {type(x).__name__ for x in m.modules()}  # noqa: E731
    assert {"InputSpatialAttention", "ChannelAttention", "SpatialAttention"} <= names(full)
    assert not {"InputSpatialAttention", "ChannelAttention", "SpatialAttention"} & names(bare)


@pytest.mark.parametrize("bad", [dict(bits=7), dict(bits=257), dict(input_size=48),
                                 dict(hash_activation="relu"), dict(widths=(8,))])
def test_bad_config_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        model_config("dagh", **bad)


def test_unknown_model_name():
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("resnet")


def test_config_round_trip():
    cfg = model_config("dagh", bits=36, input_size=64, spatial_attention=False)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    model_from_config(cfg)
