"""The four DiD nets: generator G, WGAN-GP critic D, Difference Encoder H, Samples Encoder E.

All are DCGAN-style stacks of 4x4 stride-2 convolutions that follow the dataset's image size
(64x64: four stages with ``width x (1, 2, 4, 8)`` channels; 32x32: three with ``width x (1, 2, 4)``),
except G with ``g_arch="broadcast"``: a spatial broadcast decoder (not the paper's G).
D, H and E share one convolutional trunk design and differ in their input and head (with
``encoder="critic_head"`` E is a second head on the critic's trunk); only G may carry a normalisation layer (the critic's gradient penalty is per sample, so
batch statistics in D would break it).

Example:
    >>> g, e = Generator(10, channels=1, width=8), SamplesEncoder(1, 10, width=8)
    >>> e(g(torch.rand(4, 10) * 2 - 1)).shape
    torch.Size([4, 10])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "layer":  # one group = normalise over (C, H, W) of each sample
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown normalisation {kind!r}")


def n_stages(image_size: int) -> int:
    """Stride-2 stages between 4x4 and ``image_size`` (4 for 64x64, 3 for 32x32)."""
    stages = (image_size // 4).bit_length() - 1
    if image_size < 8 or 4 * 2 ** stages != image_size:
        raise ValueError(f"image_size must be 4 * 2^s with s >= 1 (8, 16, 32, 64, ...), got {image_size}")
    return stages


class Generator(nn.Module):
    """``c [n, n_latents] -> image [n, channels, S, S]``; ``S = 4 * 2^s``, channels ``width x 2^(s-1) .. 1``."""

    def __init__(self, n_latents: int, channels: int, width: int, norm: str = "batch", out: str = "sigmoid",
                 image_size: int = 64):
        super().__init__()
        mults = [2 ** i for i in reversed(range(n_stages(image_size)))]  # 64x64: 8, 4, 2, 1
        top = mults[0] * width
        self.fc = nn.Linear(n_latents, top * 4 * 4)
        layers: list[nn.Module] = [nn.Unflatten(1, (top, 4, 4)), norm_layer(norm, top), nn.ReLU()]
        for m_in, m_out in zip(mults, mults[1:]):  # 4 -> 8 -> ... -> S/2
            layers += [nn.ConvTranspose2d(m_in * width, m_out * width, 4, 2, 1), norm_layer(norm, m_out * width),
                       nn.ReLU()]
        layers.append(nn.ConvTranspose2d(width, channels, 4, 2, 1))  # S/2 -> S
        self.body = nn.Sequential(*layers)
        self.out = out

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return activate(self.body(self.fc(c)), self.out)


class BroadcastGenerator(nn.Module):
    """``c -> image``, a spatial broadcast decoder (Watters et al. 2019): ``c`` is copied to every pixel
    next to the pixel's own coordinates (x, y in [-1, 1]), a per-pixel MLP (two layers of
    ``2 x width`` units) turns them into features, and one 3x3 convolution draws the image.
    A square's edge is then one unit comparing a coordinate with a function of ``c``, so moving a
    latent moves the drawing along an image axis at no cost; a DCGAN stack must learn that mapping.
    ``upsample`` > 1 draws on a grid that many times coarser and upsamples the drawing bilinearly to
    ``image_size``: the per-pixel MLP, the memory-bound part of G, costs ``1 / upsample^2`` as much."""

    def __init__(self, n_latents: int, channels: int, width: int, norm: str = "batch", out: str = "sigmoid",
                 image_size: int = 64, upsample: int = 1):
        super().__init__()
        if image_size % upsample:
            raise ValueError(f"upsample must divide the image size {image_size}, got {upsample}")
        self.image_size = image_size
        axis = torch.linspace(-1, 1, image_size // upsample)
        self.register_buffer("coords", torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1), persistent=False)
        hidden = 2 * width
        self.mlp = nn.ModuleList([nn.Linear(n_latents + 2, hidden), nn.Linear(hidden, hidden)])
        self.norms = nn.ModuleList([norm_layer(norm, hidden) for _ in self.mlp])
        self.draw = nn.Conv2d(hidden, channels, 3, padding=1)
        self.out = out

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        # Every pixel is a row of one contiguous [n * S * S, hidden] matrix: the MLP is two matmuls and
        # batch norm a per-column statistic over rows (the statistic BatchNorm2d takes over
        # [n, hidden, S, S]); the image is that matrix seen as NCHW in channels-last memory.
        n, size = c.shape[0], self.coords.shape[0]
        first, k = self.mlp[0], c.shape[1]
        # The first layer on [code, x, y] in two parts, the code's once per image and the coordinates'
        # once per pixel: its pre-activation is per_image[i] + per_pixel[p] (no [n, S, S, latents + 2] input).
        per_image = nn.functional.linear(c, first.weight[:, :k], first.bias)  # [n, hidden]
        per_pixel = nn.functional.linear(self.coords.reshape(-1, 2).to(c.dtype), first.weight[:, k:])  # [S*S, hidden]
        if isinstance(self.norms[0], nn.BatchNorm2d):
            per_image, per_pixel = _batch_norm_of_sum(self.norms[0], per_image, per_pixel)
            x = torch.relu((per_image[:, None, :] + per_pixel[None]).reshape(n * size * size, -1))
        else:
            x = (per_image[:, None, :] + per_pixel[None]).reshape(n * size * size, -1)
            x = torch.relu(_norm_rows(self.norms[0], x, n, size))
        x = torch.relu_(_norm_rows(self.norms[1], self.mlp[1](x), n, size))
        x = x.reshape(n, size, size, -1).permute(0, 3, 1, 2)  # NCHW shape, channels-last memory
        x = self.draw(x)
        if size != self.image_size:
            x = nn.functional.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        return activate(x, self.out)


def _batch_norm_of_sum(norm: nn.BatchNorm2d, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch norm of ``h[i, p] = a[i] + b[p]`` over every (i, p), returned as the two parts whose sum is
    the normalised ``h``. Over the full grid of pairs the mean is ``mean(a) + mean(b)`` and the
    (biased) variance ``var(a) + var(b)``, so the statistics come from the small tensors alone; the
    running statistics are updated as ``BatchNorm2d`` updates them (norm_layer's: momentum 0.1)."""
    if norm.training:
        mean_a, mean_b = a.mean(0), b.mean(0)
        var = a.var(0, unbiased=False) + b.var(0, unbiased=False)
        with torch.no_grad():
            count = a.shape[0] * b.shape[0]
            norm.num_batches_tracked.add_(1)
            norm.running_mean.lerp_((mean_a + mean_b).detach().to(norm.running_mean.dtype), norm.momentum)
            norm.running_var.lerp_((var * count / max(count - 1, 1)).detach().to(norm.running_var.dtype),
                                   norm.momentum)
    else:
        mean_a, mean_b, var = norm.running_mean.to(a.dtype), 0.0, norm.running_var.to(a.dtype)
    scale = torch.rsqrt(var + norm.eps) * norm.weight
    return (a - mean_a) * scale, (b - mean_b) * scale + norm.bias


def _norm_rows(norm: nn.Module, x: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """``norm`` (made for ``[n, C, S, S]``) applied to per-pixel rows ``x [n * S * S, C]``. Batch norm
    and none work on the rows as they are; group and layer norm need each sample's pixels, so they
    see the NCHW view."""
    if isinstance(norm, nn.Identity):
        return x
    if isinstance(norm, nn.BatchNorm2d):  # norm_layer's: momentum 0.1, running statistics tracked
        if norm.training:
            norm.num_batches_tracked.add_(1)
        return nn.functional.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                        norm.training, norm.momentum, norm.eps)
    nchw = x.reshape(n, size, size, -1).permute(0, 3, 1, 2)
    return norm(nchw).permute(0, 2, 3, 1).reshape(n * size * size, -1)


def activate(x: torch.Tensor, out: str) -> torch.Tensor:
    """G's output activation in float32 (under bf16 autocast a sigmoid of a logit above ~6 would round
    to exactly 1, where a loss on the image saturates and passes no gradient); every choice but
    ``none`` yields images in the data's [0, 1] range."""
    x = x.float()
    if out == "sigmoid":
        return torch.sigmoid(x)
    if out == "tanh":
        return (torch.tanh(x) + 1) / 2
    return x


class ConvTrunk(nn.Module):
    """``[n, in_channels, S, S] -> [n, out_features]``: stride-2 convolutions down to 4x4, then linear."""

    def __init__(self, in_channels: int, out_features: int, width: int, image_size: int = 64):
        super().__init__()
        mults = [2 ** i for i in range(n_stages(image_size))]  # 64x64: 1, 2, 4, 8
        layers: list[nn.Module] = []
        for c_in, m in zip([in_channels] + [m * width for m in mults], mults):
            layers += [nn.Conv2d(c_in, m * width, 4, 2, 1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(mults[-1] * width * 4 * 4, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Critic(ConvTrunk):
    """WGAN critic: ``image -> [n]`` unbounded score. With ``code_dims > 0`` it also carries the Samples
    Encoder as a second head on its trunk (``encode``), as InfoGAN's Q shares the discriminator's trunk,
    so that the encoder's features are shaped by real images too."""

    def __init__(self, channels: int, width: int, image_size: int = 64, code_dims: int = 0):
        super().__init__(channels, 1, width, image_size)
        self.code_head = nn.Linear(self.head.in_features, code_dims) if code_dims > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.code_head is None:
            raise RuntimeError("this critic has no encoder head (code_dims=0)")
        return self.code_head(self.features(x))

    def score_and_encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(forward(x), encode(x))`` from one pass of the trunk."""
        if self.code_head is None:
            raise RuntimeError("this critic has no encoder head (code_dims=0)")
        features = self.features(x)
        return self.head(features).squeeze(1), self.code_head(features)


class DifferenceEncoder(ConvTrunk):
    """``H(x, x')``: an L2-normalised embedding of what changed between two images."""

    def __init__(self, channels: int, embed_dim: int, width: int, pair: str = "concat", head_norm: bool = True,
                 image_size: int = 64):
        super().__init__(2 * channels if pair == "concat" else channels, embed_dim, width, image_size)
        self.pair = pair
        # Batch-standardising the embedding before the L2 normalisation removes its constant part:
        # without it a freshly initialised H maps every pair to about the same direction (the
        # head's bias dominates the tiny image differences of an untrained G), a stationary point
        # where InfoNCE stays at chance.
        self.head_norm = nn.BatchNorm1d(embed_dim, affine=False) if head_norm else nn.Identity()

    def forward(self, x: torch.Tensor, x_moved: torch.Tensor) -> torch.Tensor:
        inp = torch.cat([x, x_moved], dim=1) if self.pair == "concat" else x_moved - x
        return F.normalize(self.head_norm(super().forward(inp).float()), dim=1)


class SamplesEncoder(ConvTrunk):
    """``E(x)``: image -> estimate of the code ``c``; on real images, the learned representation."""

    def __init__(self, channels: int, n_latents: int, width: int, image_size: int = 64):
        super().__init__(channels, n_latents, width, image_size)
