"""DiD's losses and Sample Generation Paradigm on tiny tensors, against hand computations."""
import math

import pytest
import torch
from torch import nn

from did_core.models.did.losses import (contrast_loss, critic_loss, distance_loss, encoder_loss,
                                        generator_adv_loss, gradient_penalty, infonce_loss, scale_grad)
from did_core.models.did.sample_generation import sample_moves, traversal_codes


def test_infonce_symmetric_case_by_hand():
    # each anchor: one positive at cosine 1, two negatives at cosine 0 (tau = 1)
    v = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]])
    loss = infonce_loss(v, torch.tensor([0, 1, 0, 1]), tau=1.0)
    assert loss.item() == pytest.approx(math.log(2 + math.e) - 1, abs=1e-6)


def test_infonce_skips_anchors_without_positive():
    v = torch.tensor([[1.0, 0], [0, 1], [0.6, 0.8]])
    loss = infonce_loss(v, torch.tensor([0, 0, 1]), tau=0.5)
    # anchor 0: positive 1 (sim 0), negative 2 (sim 0.6/0.5); anchor 1: positive 0, negative 2 (0.8/0.5)
    expected = (math.log(1 + math.exp(1.2)) + math.log(1 + math.exp(1.6))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_infonce_chance_value_and_no_positive_at_all():
    v = torch.nn.functional.normalize(torch.ones(6, 3), dim=1)
    assert infonce_loss(v, torch.tensor([0, 0, 1, 1, 2, 2]), tau=0.1).item() == pytest.approx(math.log(5), abs=1e-5)
    v = torch.randn(3, 4, requires_grad=True)
    zero = infonce_loss(v, torch.tensor([0, 1, 2]), tau=0.1)
    assert zero.item() == 0.0 and zero.requires_grad


def test_infonce_prefers_grouped_embeddings():
    labels = torch.tensor([0, 0, 1, 1])
    grouped = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    mixed = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]])
    assert infonce_loss(grouped, labels, 0.1) < infonce_loss(mixed, labels, 0.1)


def test_distance_loss_by_hand():
    v = torch.tensor([[[1.0, 0], [0, 1], [-1, 0]]])  # squared distances 2, 4, 2
    assert distance_loss(v).item() == pytest.approx(-8 / 3)
    with pytest.raises(ValueError, match="at least two"):
        distance_loss(torch.ones(2, 1, 3))


def test_contrast_loss_dispatches_on_kind():
    v = torch.nn.functional.normalize(torch.randn(4, 3, 8), dim=-1)
    dims = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]])
    assert contrast_loss("infonce", v, dims, 0.2).item() == pytest.approx(
        infonce_loss(v.reshape(12, 8), dims.reshape(12), 0.2).item())
    assert contrast_loss("distance", v, dims, 0.2).item() == pytest.approx(distance_loss(v).item())
    with pytest.raises(ValueError, match="unknown contrast"):
        contrast_loss("cosine", v, dims, 0.2)


def test_encoder_and_adversarial_losses_by_hand():
    c_hat, c = torch.tensor([[1.0, 2], [0, 0]]), torch.tensor([[0.0, 0], [1, 1]])
    assert encoder_loss(c_hat, c).item() == pytest.approx((1 + 4 + 1 + 1) / 2)
    assert critic_loss(torch.tensor([1.0, 3]), torch.tensor([0.0, 2])).item() == pytest.approx(-1.0)
    assert generator_adv_loss(torch.tensor([1.0, 2])).item() == pytest.approx(-1.5)


def test_gradient_penalty_of_a_linear_critic():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([[1.0, 2, 2, 0]]))  # gradient norm 3 everywhere
    real, fake = torch.rand(5, 1, 2, 2), torch.rand(5, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake, torch.rand(5))
    assert gp.item() == pytest.approx(4.0)
    gp.backward()  # the penalty trains the critic: d/dw (||w|| - 1)^2 = 2 (3 - 1) w / 3
    assert torch.allclose(critic[1].weight.grad, 4 / 3 * torch.tensor([[1.0, 2, 2, 0]]))


def test_scale_grad_scales_only_the_backward():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = scale_grad(x, 0.25)
    assert torch.equal(y, x.detach())
    (y * 3).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([0.75, 0.75]))


@pytest.mark.parametrize("move", ["resample", "shift"])
def test_sample_moves_change_exactly_the_chosen_axes(move):
    gen = torch.Generator().manual_seed(1)
    c, moved, dims = sample_moves(64, 10, 4, move, gen, shift_min=0.5, shift_max=1.0)
    assert c.shape == (64, 10) and moved.shape == (64, 4, 10) and dims.shape == (64, 4)
    assert c.abs().max() <= 1 and moved.abs().max() <= 1
    assert all(len(set(row.tolist())) == 4 for row in dims)  # k distinct axes per base code
    changed = moved != c.unsqueeze(1)
    expected = torch.zeros_like(changed)
    expected.scatter_(2, dims.unsqueeze(2), True)
    assert not (changed & ~expected).any()  # nothing but the chosen axis moves
    if move == "shift":
        delta = (moved - c.unsqueeze(1)).gather(2, dims.unsqueeze(2)).squeeze(2).abs()
        at_edge = moved.gather(2, dims.unsqueeze(2)).squeeze(2).abs() == 1
        assert ((delta >= 0.5 - 1e-6) | at_edge).all()  # clipped only at the boundary
    again = sample_moves(64, 10, 4, move, torch.Generator().manual_seed(1))
    assert torch.equal(again[1], moved) and torch.equal(again[2], dims)


def test_traversal_codes_sweep_one_axis_per_row():
    base = torch.linspace(-0.5, 0.5, 3)
    codes = traversal_codes(3, 5, base).reshape(3, 5, 3)
    for i in range(3):
        assert torch.allclose(codes[i, :, i], torch.linspace(-1, 1, 5))
        others = [j for j in range(3) if j != i]
        assert torch.equal(codes[i][:, others], base[others].expand(5, 2))


def test_the_traversal_holds_the_other_latents_at_a_seeded_prior_code():
    from did_core.models.did import Config
    from did_core.models.did.trainer import traversal

    class Echo(torch.nn.Module):  # an "image" whose first row holds the code itself
        def forward(self, c):
            return torch.nn.functional.pad(c, (0, 64 - c.shape[1]))[:, None, None, :].expand(-1, 1, 64, 64)

    def codes(seed):
        cfg = Config.from_preset("smoke", seed=seed)
        return traversal(Echo(), cfg, torch.device("cpu"))[:, :, 0, 0, :cfg.n_latents], cfg

    x, cfg = codes(3)
    n, steps = cfg.n_latents, cfg.traversal_steps
    base = x[0, 0].clone()
    base[0] = x[1, 0, 0]
    for i in range(n):
        assert torch.allclose(x[i, :, i], torch.linspace(-1, 1, steps))
        others = [j for j in range(n) if j != i]
        assert torch.equal(x[i][:, others], base[others].expand(steps, n - 1))
    assert base.abs().max() <= 1 and base.abs().min() > 0  # a prior draw, not the centre of the cube
    assert torch.equal(codes(3)[0], x) and not torch.equal(codes(4)[0], x)
