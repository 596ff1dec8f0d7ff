"""PartedVAE's objective, each term a plain function (minimised; batch means; natural logarithms).

``L = Rec + g_z |C_z(t) - KL_z| + g_u |C_u(t) - KL_u| + g_c KL(qbar(c) || p(c)) + g_h H(q(c|x))
     + g_bc sum_{k<l} relu(BC(k, l) - tau)``

- ``KL_u = sum_k q(c=k|x) KL(q(u|x) || N(m_k, s_k))`` (:func:`mixture_kl`), per categorical variable;
- ``qbar(c)`` the batch mean of ``q(c|x)``, ``p(c)`` uniform (:func:`marginal_kl`);
- ``BC`` the Bhattacharyya coefficient between two prior components (:func:`bhattacharyya_coefficient`);
- ``C(t) = min(C_max, C_min + (C_max - C_min) t / N)`` (:func:`capacity`).

Example:
    >>> bhattacharyya_coefficient(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1))
    tensor(1.)
    >>> capacity(150, 0.0, 30.0, 300)
    15.0
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from ..vae_losses import bernoulli_reconstruction, gaussian_kl
from .nets import Posterior, split_softmax

EPS = 1e-12


def capacity(step: int, c_min: float, c_max: float, steps: int) -> float:
    """The capacity at ``step``: linear from ``c_min`` to ``c_max`` over ``steps``, then ``c_max``."""
    return min(c_max, c_min + (c_max - c_min) * step / steps)


def capacity_term(kl: torch.Tensor, target: float, gamma: float) -> torch.Tensor:
    """``gamma * |target - kl|``: the KL is pushed towards the capacity, from either side."""
    return gamma * (target - kl).abs()


def attention_slope(step: int, start: float, cap: float, steps: int) -> float:
    """The gate's slope at ``step``: linear from ``start`` to ``cap`` over ``steps``, then ``cap``."""
    return min(cap, start + (cap - start) * step / steps)


def gaussian_kl_to(mean: torch.Tensor, logvar: torch.Tensor, p_mean: torch.Tensor,
                   p_logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, e^logvar) || N(p_mean, e^p_logvar))`` of diagonal Gaussians, summed over the last
    dimension (broadcasting the rest)."""
    return 0.5 * (p_logvar - logvar + (logvar.exp() + (mean - p_mean) ** 2) / p_logvar.exp() - 1.0).sum(-1)


def mixture_kl(u_mean: torch.Tensor, u_logvar: torch.Tensor, probs: list[torch.Tensor],
               prior_means: torch.Tensor, prior_logvars: torch.Tensor) -> torch.Tensor:
    """``KL_u``: per variable ``i`` (``u_i`` = columns ``i*d .. (i+1)*d``, its components the rows
    of the prior for its classes), ``sum_k q(c_i=k|x) KL(q(u_i|x) || N(m_k, s_k))``; summed over the
    variables, averaged over the batch."""
    d = u_mean.shape[1] // len(probs)
    total, row = u_mean.new_zeros(()), 0
    for i, p in enumerate(probs):
        k = p.shape[1]
        kl = gaussian_kl_to(u_mean[:, None, i * d:(i + 1) * d], u_logvar[:, None, i * d:(i + 1) * d],
                            prior_means[row:row + k], prior_logvars[row:row + k])  # [n, k]
        total = total + (p * kl).sum(1).mean()
        row += k
    return total


def marginal_kl(probs: list[torch.Tensor]) -> torch.Tensor:
    """``sum_i KL(qbar(c_i) || U(K_i))`` with ``qbar`` the batch mean of ``q(c_i|x)``."""
    total = probs[0].new_zeros(())
    for p in probs:
        q = p.mean(0)
        total = total + (q * (torch.log(q + EPS) + torch.log(torch.tensor(float(q.numel()))))).sum()
    return total


def entropy(probs: list[torch.Tensor]) -> torch.Tensor:
    """``sum_i H(q(c_i|x))``, averaged over the batch."""
    return sum(-(p * torch.log(p + EPS)).sum(1).mean() for p in probs)


def bhattacharyya_coefficient(m1: torch.Tensor, logvar1: torch.Tensor, m2: torch.Tensor,
                              logvar2: torch.Tensor) -> torch.Tensor:
    """``exp(-D_B)`` between diagonal Gaussians (last dimension),
    ``D_B = 1/8 dm^T S^-1 dm + 1/2 ln(det S / sqrt(det S_1 det S_2))``, ``S = (S_1 + S_2) / 2``."""
    s = 0.5 * (logvar1.exp() + logvar2.exp())
    d_b = 0.125 * ((m1 - m2) ** 2 / s).sum(-1) + 0.5 * (s.log().sum(-1) - 0.5 * (logvar1.sum(-1) + logvar2.sum(-1)))
    return torch.exp(-d_b)


def pairwise_bc(means: torch.Tensor, logvars: torch.Tensor, class_sizes: list[int]) -> list[torch.Tensor]:
    """The BC of every pair ``k < l`` of components of one variable, all variables' pairs in a list."""
    out, row = [], 0
    for k in class_sizes:
        for a, b in itertools.combinations(range(row, row + k), 2):
            out.append(bhattacharyya_coefficient(means[a], logvars[a], means[b], logvars[b]))
        row += k
    return out


def overlap_penalty(means: torch.Tensor, logvars: torch.Tensor, class_sizes: list[int], tau: float) -> torch.Tensor:
    """``sum_{k<l} relu(BC(k, l) - tau)`` over every variable's pairs of components."""
    return sum((F.relu(bc - tau) for bc in pairwise_bc(means, logvars, class_sizes)), means.new_zeros(()))


def supervised_loss(c_logits: torch.Tensor, labels: torch.Tensor, class_sizes: list[int]) -> torch.Tensor:
    """Cross-entropy of each variable's logits against its labels ``[n, V]``, summed over variables."""
    return sum(F.cross_entropy(chunk, labels[:, i]) for i, chunk in enumerate(c_logits.split(class_sizes, dim=1)))


def objective(images: torch.Tensor, logits: torch.Tensor, post: Posterior, prior_means: torch.Tensor,
              prior_logvars: torch.Tensor, class_sizes: list[int], cfg, step: int) -> dict[str, torch.Tensor]:
    """Every term of ``L`` at ``step`` (named as in the curves) and ``loss``, their weighted sum."""
    probs = split_softmax(post.c_logits, class_sizes)
    t = {
        "reconstruction": bernoulli_reconstruction(logits, images),
        "kl_z": gaussian_kl(post.z_mean, post.z_logvar),
        "kl_u": mixture_kl(post.u_mean, post.u_logvar, probs, prior_means, prior_logvars),
        "kl_c_marginal": marginal_kl(probs),
        "entropy_c": entropy(probs),
        "bc_penalty": overlap_penalty(prior_means, prior_logvars, class_sizes, cfg.tau),
    }
    c_z = capacity(step, cfg.z_capacity_min, cfg.z_capacity_max, cfg.z_capacity_steps)
    c_u = capacity(step, cfg.u_capacity_min, cfg.u_capacity_max, cfg.u_capacity_steps)
    t["loss"] = (t["reconstruction"] + capacity_term(t["kl_z"], c_z, cfg.gamma_z)
                 + capacity_term(t["kl_u"], c_u, cfg.gamma_u) + cfg.gamma_c * t["kl_c_marginal"]
                 + cfg.gamma_h * t["entropy_c"] + cfg.gamma_bc * t["bc_penalty"])
    return t
