import torch

from dagh.model import binarize, quantization_penalty, sign_straight_through


def test_sign_of_zero_is_plus_one():
    h = torch.tensor([-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0])
    assert binarize(h).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    assert sign_straight_through(h).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    assert (sign_straight_through(torch.zeros(5)) == 1).all()


def test_straight_through_gradient_equals_upstream_gradient():
    torch.manual_seed(0)
    h = torch.randn(6, 12, requires_grad=True)
    upstream = torch.randn(6, 12)
    b = sign_straight_through(h)
    b.backward(upstream)
    assert torch.equal(h.grad, upstream)


def test_quantization_penalty_values():
    assert quantization_penalty(torch.tensor([1.0, -1.0, 1.0])).item() == 0.0
    # | |0| - 1 |^3 = 1 and | |2| - 1 |^3 = 1, | |-0.5| - 1 |^3 = 0.125
    value = quantization_penalty(torch.tensor([0.0, 2.0, -0.5])).item()
    assert abs(value - (1 + 1 + 0.125) / 3) < 1e-6


def test_quantization_penalty_pulls_towards_unit_magnitude():
    h = torch.tensor([0.5, -1.5], requires_grad=True)
    quantization_penalty(h).backward()
    # gradient descent moves 0.5 up (grad < 0) and -1.5 up towards -1 (grad < 0)
    assert h.grad[0] < 0 and h.grad[1] < 0
