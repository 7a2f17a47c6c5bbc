import math

import pytest
import torch
import torch.nn.functional as F

from dagh.errors import ConfigError
from dagh.train.losses import (
    DiscreteIdentityLoss,
    LossConfig,
    center_loss,
    default_loss_config,
    margin_logits,
)


def test_margin_logits_on_hand_made_codes():
    codes = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    weight = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
    logits = margin_logits(codes, weight, torch.tensor([0]), scale=10.0, margin=0.3)
    # cos with class 0 is 1, with class 1 is 0; the margin comes off the true class only
    assert torch.allclose(logits, torch.tensor([[10.0 * (1 - 0.3), 0.0]]))
    no_label = margin_logits(codes, weight, None, scale=10.0, margin=0.3)
    assert torch.allclose(no_label, torch.tensor([[10.0, 0.0]]))


def test_margin_makes_the_loss_larger():
    codes = torch.tensor([[1.0, -1.0, 1.0, 1.0]])
    weight = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([2])
    plain = F.cross_entropy(margin_logits(codes, weight, y, 16.0, 0.0), y)
    margined = F.cross_entropy(margin_logits(codes, weight, y, 16.0, 0.35), y)
    assert margined > plain


def test_center_loss_hand_made():
    centers = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    labels = torch.tensor([0, 1])
    assert center_loss(centers.clone(), centers, labels).item() == 0.0
    codes = torch.tensor([[1.0, 1.0, 1.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    # one flipped bit: ||diff||^2 = 4, /2K = 4/8 = 0.5, batch mean 0.25
    assert center_loss(codes, centers, labels).item() == pytest.approx(0.25)


def test_centers_follow_the_identity_mean():
    loss = DiscreteIdentityLoss(LossConfig(), num_identities=3, bits=4)
    codes = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, -1.0]])
    loss.update_centers(codes, torch.tensor([2, 2]))
    assert torch.allclose(loss.centers[2], torch.tensor([1.0, 0.0, -1.0, -1.0]))  # first sight: the mean
    assert torch.equal(loss.centers[0], torch.zeros(4))  # unseen identities untouched
    loss.update_centers(torch.tensor([[-1.0, -1.0, -1.0, -1.0]]), torch.tensor([2]))
    assert torch.allclose(loss.centers[2], torch.tensor([0.0, -0.5, -1.0, -1.0]))  # momentum 0.5


def test_terms_with_zero_weight_are_zero_and_weights_combine():
    torch.manual_seed(0)
    h = torch.randn(8, 12)
    b = torch.where(h >= 0, 1.0, -1.0)
    y = torch.arange(8) % 4
    full = DiscreteIdentityLoss(LossConfig(center_weight=0.5, quant_weight=0.2), 4, 12).eval()
    terms = full(h, b, y)
    expected = terms["identity"] + 0.5 * terms["center"] + 0.2 * terms["quant"]
    assert torch.allclose(terms["total"], expected)
    assert terms["quant"] > 0 and terms["identity"] > 0
    off = DiscreteIdentityLoss(LossConfig(center_weight=0.0, quant_weight=0.0), 4, 12)
    off.load_state_dict(full.state_dict())
    terms_off = off.eval()(h, b, y)
    assert terms_off["center"] == 0 and terms_off["quant"] == 0
    assert torch.allclose(terms_off["total"], terms["identity"])


def test_identity_loss_prefers_codes_near_their_class_weight():
    loss = DiscreteIdentityLoss(LossConfig(center_weight=0, quant_weight=0), 2, 4).eval()
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]]))
    good = torch.ones(1, 4)
    y = torch.tensor([0])
    assert loss(good, good, y)["identity"] < loss(-good, -good, y)["identity"]
    assert math.isfinite(loss(good, good, y)["total"].item())


def test_ddh_default_loss_is_plain_softmax():
    cfg = default_loss_config("ddh")
    assert cfg.classifier == "softmax" and cfg.center_weight == 0 and cfg.quant_weight == 0
    assert default_loss_config("dagh").classifier == "margin"


@pytest.mark.parametrize("bad", [dict(classifier="arc"), dict(scale=0), dict(margin=1.5),
                                 dict(center_weight=-1)])
def test_bad_loss_config(bad):
    with pytest.raises(ConfigError):
        LossConfig(**bad)
