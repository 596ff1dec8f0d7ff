"""DiD's losses as plain functions of tensors.

- critic (WGAN-GP):  ``L_D = E[D(G(c))] - E[D(x)] + lambda_gp * GP``
- generator:         ``L_G = -E[D(G(c))] + lambda_h * L_H + lambda_enc * L_enc``
- difference encoder ``L_H``: ``infonce`` (pairs moved along the same axis are positives) or
  ``distance`` (``-||v_i - v_j||^2`` between moves of one base code along different axes)
- samples encoder:   ``L_enc = mean_n ||E(G(c_n)) - c_n||^2``, and with ``lambda_rec > 0`` (not in the
  paper) ``L_rec = BCE(G(E(x)), x)`` on real images ``x`` with G frozen: E inverts G on real data

Example:
    >>> v = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    >>> float(infonce_loss(v, torch.tensor([0, 0, 1, 1, 2, 2]), tau=0.1)) > 0
    True
"""
from __future__ import annotations

import torch
from torch import nn


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss (to minimise): ``mean D(fake) - mean D(real)``."""
    return d_fake.float().mean() - d_real.float().mean()


def generator_adv_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return -d_fake.float().mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``mean (||grad_x D(x_hat)||_2 - 1)^2`` at ``x_hat = eps * real + (1 - eps) * fake``, ``eps [B]``."""
    eps = eps.reshape(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).float().sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).float().norm(dim=1) - 1) ** 2).mean()


def infonce_loss(v: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """Supervised InfoNCE over embeddings ``v [N, m]`` (L2-normalised) labelled by moved axis ``[N]``.

    For anchor ``i`` with positives ``P(i) = {p != i : label_p = label_i}``:
    ``l_i = -1/|P(i)| sum_p log( exp(v_i.v_p / tau) / sum_{a != i} exp(v_i.v_a / tau) )``;
    the loss is the mean of ``l_i`` over anchors with at least one positive. When all embeddings
    coincide it equals ``log(N - 1)`` (chance).
    """
    n = v.shape[0]
    with torch.autocast(v.device.type, enabled=False):  # similarities in float32 even under autocast
        sim = (v.float() @ v.float().T) / tau
    self_mask = torch.eye(n, dtype=torch.bool, device=v.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~self_mask
    n_pos = pos.sum(dim=1)
    has_pos = n_pos > 0
    # anchors without a positive count 0 (and 0 overall when none has one): no host sync to ask
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(dim=1) / n_pos.clamp(min=1))
    return (per_anchor * has_pos).sum() / has_pos.sum().clamp(min=1)


def distance_loss(v: torch.Tensor) -> torch.Tensor:
    """``-mean ||v_i - v_j||^2`` over pairs ``i < j`` of the ``k`` moves of each base code; ``v [B, k, m]``."""
    k = v.shape[1]
    if k < 2:
        raise ValueError("distance_loss needs at least two moved axes per base code")
    d2 = (v.float().unsqueeze(1) - v.float().unsqueeze(2)).pow(2).sum(-1)  # [B, k, k]
    i, j = torch.triu_indices(k, k, offset=1, device=v.device)
    return -d2[:, i, j].mean()


def contrast_loss(kind: str, v: torch.Tensor, dims: torch.Tensor, tau: float) -> torch.Tensor:
    """``L_H`` of either kind from embeddings ``v [B, k, m]`` and moved axes ``dims [B, k]``."""
    if kind == "infonce":
        return infonce_loss(v.reshape(-1, v.shape[-1]), dims.reshape(-1), tau)
    if kind == "distance":
        return distance_loss(v)
    raise ValueError(f"unknown contrast {kind!r}")


def encoder_loss(c_hat: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``mean_n ||c_hat_n - c_n||^2`` (squared error summed over latents, averaged over samples)."""
    return (c_hat.float() - c.float()).pow(2).sum(dim=1).mean()


def inversion_loss(reconstruction: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``L_rec``: binary cross-entropy per pixel (mean) of ``G(E(x))`` against the real image ``x``,
    both in ``[0, 1]`` (G's output is clamped there first, as ``g_out="none"`` is unbounded)."""
    return nn.functional.binary_cross_entropy(reconstruction.float().clamp(0, 1), real.float())


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient flowing back into ``x`` by ``scale``.

    With it one backward pass trains H and E on their own, unweighted losses while G receives
    ``lambda_h * dL_H`` and ``lambda_enc * dL_enc`` (and nothing when a weight is 0).
    """
    return _ScaleGrad.apply(x, scale)
