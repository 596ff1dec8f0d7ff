"""DiD's shortcut controls (view channel, contrast start, free noise, E on the critic's trunk), the
shortcut diagnostics on constructed generators, and the small Squares dataset."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from did_core.data import get_dataset
from did_core.metrics import evaluate
from did_core.models import ConfigError
from did_core.models.did import Config, train
from did_core.models.did.diagnostics import DIAGNOSTICS, axis_accuracy, shortcut_diagnostics, shortcut_flags
from did_core.models.did.losses import infonce_loss, inversion_loss
from did_core.models.did.nets import BroadcastGenerator, Critic, DifferenceEncoder, Generator
from did_core.models.did.sample_generation import order_pairs, sample_moves
from did_core.models.did.trainer import build_nets, build_optimizers, generator_step, inversion_step, loss_weight
from did_core.models.did.views import degrade, view

torch.set_num_threads(1)
SQUARES = get_dataset("squares")


# ----- the small dataset ---------------------------------------------------------------------------
def all_factors(ds) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(s) for s in ds.factor_sizes], indexing="ij"), -1).reshape(-1, 3)


def test_squares_are_binary_distinct_whole_and_inside_the_frame():
    y = all_factors(SQUARES)
    x = SQUARES.images(y)
    assert x.shape == (1024, 1, 32, 32) and SQUARES.binary and SQUARES.image_size == 32
    assert set(x.unique().tolist()) == {0.0, 1.0}
    sides = np.array([4, 6, 8, 10])[y[:, 0]]
    assert (x.sum((1, 2, 3)).numpy() == sides ** 2).all()  # every square whole: inside the frame
    assert len({img.numpy().tobytes() for img in x}) == 1024
    # posX moves the square right, posY down, one factor at a time
    cols = lambda img: img[0].sum(0).nonzero().flatten()  # noqa: E731
    a, b = SQUARES.images(np.array([[1, 3, 7], [1, 4, 7]]))
    assert cols(b).min() > cols(a).min() and (a.sum(2) == b.sum(2)).all()


def test_squares_has_no_file_source_and_metrics_run_on_it():
    with pytest.raises(ValueError, match="no 'file' source"):
        get_dataset("squares", source="file")

    def perfect(x):  # reads size and position off the image: an ideal disentangled code
        mass = x.flatten(1).sum(1)
        g = torch.arange(32.0) + 0.5
        return torch.stack([mass.sqrt(), (x[:, 0].sum(1) * g).sum(1) / mass, (x[:, 0].sum(2) * g).sum(1) / mass], 1)

    scores = evaluate(SQUARES, perfect, protocol="fast", metrics="mig")
    assert scores["mig"] > 0.9


def test_nets_follow_the_image_size():
    g = Generator(5, 1, width=4, image_size=32)
    x = g(torch.rand(3, 5))
    assert x.shape == (3, 1, 32, 32)
    assert Critic(1, 4, image_size=32)(x).shape == (3,)
    assert DifferenceEncoder(1, 8, 4, image_size=32)(x, x).shape == (3, 8)
    assert Generator(5, 1, width=4)(torch.rand(2, 5)).shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match="image_size"):
        Generator(5, 1, width=4, image_size=48)


# ----- the options ---------------------------------------------------------------------------------
def test_binarize_view_is_straight_through_and_noise_view_adds_noise():
    x = torch.tensor([0.1, 0.49, 0.51, 0.9], requires_grad=True)
    y = view(x, "binarize")
    assert y.tolist() == [0, 0, 1, 1]
    (y * torch.arange(4.0)).sum().backward()
    assert x.grad.tolist() == [0, 1, 2, 3]
    n = view(torch.zeros(10000), "noise", 0.2, torch.Generator().manual_seed(0))
    assert abs(float(n.std()) - 0.2) < 0.01
    assert view(x, "raw") is x
    assert degrade(torch.tensor([0.4, 0.6]), binary=True).tolist() == [0, 1]
    assert degrade(torch.tensor([0.05, 0.5]), binary=False).tolist() == pytest.approx([0, 4 / 7])


class FaintGenerator(nn.Module):
    """Writes the code into a faint pattern (every pixel below 0.5): the sub-visible shortcut."""

    def __init__(self, n: int, size: int = 32):
        super().__init__()
        bands = torch.zeros(n, size, size)  # latent i shades its own band of columns
        for i in range(n):
            bands[i, :, i * size // n:(i + 1) * size // n] = 8.0
        self.pattern = nn.Parameter(bands.reshape(n, size * size))
        self.size = size

    def forward(self, c):
        return (0.2 + 0.1 * torch.tanh(c @ self.pattern / 8)).reshape(-1, 1, self.size, self.size)


def contrast_after_training_h(view_kind: str, steps: int = 150) -> tuple[float, float]:
    """L_H before and after training a fresh H on a faint generator's pairs seen through ``view_kind``."""
    torch.manual_seed(0)
    G, H = FaintGenerator(3), DifferenceEncoder(1, 16, 8, image_size=32)
    opt = torch.optim.Adam(H.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        c, moved, dims = sample_moves(16, 3, 2, "resample", gen)
        with torch.no_grad():
            x, x_moved = order_pairs(G(c).repeat_interleave(2, 0), G(moved.reshape(-1, 3)), c, moved, dims)
        v = H(view(x, view_kind), view(x_moved, view_kind))
        loss = infonce_loss(v, dims.reshape(-1), 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], float(np.mean(losses[-5:]))


def test_with_the_binarising_view_a_grey_level_generator_no_longer_lowers_l_h():
    chance = math.log(32 - 1)  # every embedding alike: InfoNCE at log(N - 1)
    _, raw = contrast_after_training_h("raw")
    _, binarised = contrast_after_training_h("binarize")
    assert raw < chance - 0.3, raw  # H reads the faint pattern
    assert binarised == pytest.approx(chance, abs=0.05)  # nothing left to read


def test_before_the_contrast_start_g_gets_no_gradient_from_l_h_or_l_enc():
    cfg = Config.from_preset("smoke", dataset="squares", n_latents=3, n_compare_dims=2, contrast_start=10,
                             lambda_warmup=4)
    assert [loss_weight(cfg, s) for s in (1, 10, 11, 12, 14, 20)] == [0, 0, 0.25, 0.5, 1, 1]

    def g_grad(lambda_h: float, step: int) -> torch.Tensor:
        c = cfg.replace(lambda_h=lambda_h, lambda_enc=lambda_h)
        torch.manual_seed(0)
        nets = build_nets(c, 1, 32)
        opts = build_optimizers(c, nets)
        generator_step(nets["G"], nets["D"], nets["H"], nets["E"], opts, c, torch.Generator().manual_seed(0),
                       loss_weight(c, step))
        return torch.cat([p.grad.flatten() for p in nets["G"].parameters()])

    assert torch.equal(g_grad(5.0, 10), g_grad(0.0, 10))  # before the start: the adversarial term alone
    assert not torch.allclose(g_grad(5.0, 14), g_grad(0.0, 14))  # after it, L_H and L_enc reach G


def test_free_noise_latents_are_never_moved_and_not_recovered():
    cfg = Config.from_preset("smoke", dataset="squares", n_latents=3, n_noise=4, n_compare_dims=3)
    assert cfg.n_code == 7
    nets = build_nets(cfg, 1, 32)
    assert nets["G"].fc.in_features == 7 and nets["E"].head.out_features == 3
    c, moved, dims = sample_moves(50, 7, 3, "resample", torch.Generator().manual_seed(0), n_axes=3)
    assert int(dims.max()) <= 2 and torch.equal(moved[..., 3:], c[:, None, 3:].expand(-1, 3, -1))
    with pytest.raises(ConfigError, match="n_compare_dims"):
        Config(n_latents=3, n_compare_dims=4)
    with pytest.raises(ConfigError, match="n_noise"):
        Config(n_noise=-1)


def test_e_on_the_critic_trunk_shares_its_features():
    cfg = Config.from_preset("smoke", dataset="squares", n_latents=3, n_compare_dims=2, encoder="critic_head")
    nets = build_nets(cfg, 1, 32)
    assert "E" not in nets and nets["D"].code_head.out_features == 3
    x = torch.rand(4, 1, 32, 32)
    assert nets["D"].encode(x).shape == (4, 3)
    with torch.no_grad():  # moving the trunk moves E's output: one trunk for both heads
        before = nets["D"].encode(x)
        nets["D"].features[0].weight.add_(0.5)
        assert not torch.allclose(before, nets["D"].encode(x))


@pytest.mark.parametrize("options", [
    dict(),
    dict(view="binarize", critic_view=True, contrast_start=5, n_noise=2, encoder="critic_head", lambda_enc=0.2),
    dict(view="noise", view_noise=0.1),
    dict(lambda_rec=1.0),
    dict(lambda_rec=1.0, encoder="critic_head"),
    dict(g_arch="broadcast", lambda_rec=1.0),
])
def test_every_option_trains_and_records_the_diagnostics(options):
    cfg = Config.from_preset("smoke", dataset="squares", n_latents=3, n_compare_dims=2, eval_metrics="mig",
                             steps=10, eval_every=5, **options)
    events = list(train(cfg))
    evals = [e for e in events if e["kind"] in ("eval", "final")]
    assert len(evals) == 2
    for e in evals:
        assert set(DIAGNOSTICS) <= set(e["scores"]) and "mig" in e["scores"]
    if options.get("encoder") == "critic_head":
        assert "loss_enc_critic" in events[0]["losses"]
    assert ("loss_rec" in events[0]["losses"]) == bool(options.get("lambda_rec"))


def test_broadcast_generator_compares_each_pixels_coordinates_with_the_code():
    G = BroadcastGenerator(2, 1, 2, norm="none", out="none", image_size=8)
    axis = torch.linspace(-1, 1, 8)
    assert torch.equal(G.coords[0, :, 0], axis) and torch.equal(G.coords[:, 0, 1], axis)  # x along rows, y down
    with torch.no_grad():  # by hand: unit 0 = relu(x - c_0), passed through, drawn by the centre tap
        for p in G.parameters():
            p.zero_()
        G.mlp[0].weight[0, 2], G.mlp[0].weight[0, 0] = 1.0, -1.0
        G.mlp[1].weight[0, 0] = 1.0
        G.draw.weight[0, 0, 1, 1] = 1.0
        left, right = G(torch.tensor([[-0.5, 0.9], [0.5, -0.9]]))[:, 0]
    assert torch.equal(left[0], left[7]) and torch.equal(right[0], right[7])  # c_1 moves nothing here
    assert [int((img[0] > 0).sum()) for img in (left, right)] == [6, 2]  # the edge at x = c_0 moves right
    with pytest.raises(ConfigError, match="g_arch"):
        Config(g_arch="stylegan")
    assert isinstance(build_nets(Config(g_arch="broadcast", n_latents=3, n_compare_dims=2), 1, 32)["G"],
                      BroadcastGenerator)


def test_broadcast_generator_drawing_on_a_coarser_grid_is_the_fine_drawing_upsampled():
    torch.manual_seed(0)
    fine = BroadcastGenerator(3, 1, 4, norm="none", out="none", image_size=16)
    coarse = BroadcastGenerator(3, 1, 4, norm="none", out="none", image_size=16, upsample=2)
    coarse.load_state_dict(fine.state_dict())  # the same weights: only the grid differs
    assert coarse.coords.shape[:2] == (8, 8) and torch.equal(coarse.coords[0, :, 0], torch.linspace(-1, 1, 8))
    c = torch.rand(2, 3) * 2 - 1
    with torch.no_grad():
        small = BroadcastGenerator(3, 1, 4, norm="none", out="none", image_size=8)
        small.load_state_dict(fine.state_dict())
        expected = nn.functional.interpolate(small(c), size=16, mode="bilinear", align_corners=False)
        assert coarse(c).shape == (2, 1, 16, 16) and torch.allclose(coarse(c), expected)
        assert not torch.allclose(coarse(c), fine(c))
    with pytest.raises(ValueError, match="divide the image size 16"):
        BroadcastGenerator(3, 1, 4, image_size=16, upsample=3)
    with pytest.raises(ConfigError, match="g_upsample.*broadcast"):
        Config(g_upsample=2)  # the paper's DCGAN G has no coarse grid
    cfg = Config(g_arch="broadcast", n_latents=3, n_compare_dims=2, g_upsample=2)
    assert build_nets(cfg, 1, 32)["G"].coords.shape[:2] == (16, 16)


def test_inversion_loss_by_hand():
    real = torch.zeros(2, 1, 4, 4)
    real[0, 0, 1, 1] = 1
    assert float(inversion_loss(torch.full_like(real, 0.5), real)) == pytest.approx(math.log(2))
    assert float(inversion_loss(real.clone(), real)) == pytest.approx(0.0, abs=1e-6)
    assert float(inversion_loss(real * 2 - 0.5, real)) == pytest.approx(0.0, abs=1e-6)  # clamped to [0, 1]


class BlobGenerator(nn.Module):
    """A G with a known meaning: a wide bright blob centred at column ``c_0``, row ``c_1`` (in [-1, 1])."""

    def __init__(self):
        super().__init__()
        self.sigma = nn.Parameter(torch.tensor(6.0))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        grid = torch.arange(32.0)
        col, row = ((c[:, :2] + 1) * 15.5).unbind(1)
        d2 = (grid[None, None, :] - col[:, None, None]) ** 2 + (grid[None, :, None] - row[:, None, None]) ** 2
        return torch.exp(-d2 / (2 * self.sigma ** 2)).unsqueeze(1)


@pytest.mark.parametrize("encoder", ["separate", "critic_head"])
def test_inversion_trains_e_alone_to_make_the_frozen_g_redraw_real_images(encoder):
    cfg = Config.from_preset("smoke", dataset="squares", n_latents=3, n_compare_dims=2, encoder=encoder,
                             lambda_rec=1.0, width=8, lr_e=3e-3, lr_d=3e-3)
    torch.manual_seed(0)
    nets = build_nets(cfg, 1, 32)
    opts = build_optimizers(cfg, nets)
    G, E = BlobGenerator(), nets.get("E", nets["D"])
    encode = E if encoder == "separate" else E.encode
    factors = SQUARES.sample_factors(32, np.random.default_rng(0))
    real = SQUARES.images(factors)
    e_before = [p.detach().clone() for p in E.parameters()]
    losses = [float(inversion_step(G, G, encode, E, opts["E" if encoder == "separate" else "D"], real, 1.0))
              for _ in range(150)]
    assert losses[-1] < 0.8 * losses[0], losses[::30]  # E finds codes whose G images are closer to x
    assert G.sigma.grad is None and float(G.sigma.detach()) == 6.0 and G.sigma.requires_grad  # G frozen, then restored
    assert not all(torch.equal(a, b) for a, b in zip(e_before, E.parameters()))
    with torch.no_grad():  # E now reads the square's position as G's code for it: column -> c_0, row -> c_1
        code = encode(real)
    for latent, factor in ((0, 1), (1, 2)):
        assert np.corrcoef(code[:, latent].numpy(), factors[:, factor])[0, 1] > 0.8


def test_diagnosing_a_run_does_not_change_it():
    cfg = Config.from_preset("smoke", dataset="squares", n_latents=3, n_compare_dims=2, eval_metrics="mig", steps=10)
    with_evals = [e for e in train(cfg.replace(eval_every=3)) if e["kind"] == "final"][0]["scores"]
    without = [e for e in train(cfg.replace(eval_every=0)) if e["kind"] == "final"][0]["scores"]
    assert with_evals == without


# ----- the diagnostics on constructed generators ---------------------------------------------------
def decode(x, inv):
    """The code a FaintGenerator wrote into ``x`` (``inv``: the pattern's pseudo-inverse)."""
    return 8 * torch.atanh(((x - 0.2) / 0.1).clamp(-0.9999, 0.9999)).flatten(1) @ inv


class PatternH(nn.Module):
    """An H that reads the faint pattern: the change of the code, recovered linearly."""

    def __init__(self, G: FaintGenerator):
        super().__init__()
        self.inv = torch.linalg.pinv(G.pattern.detach())  # [size^2, n]

    def forward(self, x, x_moved):
        d = decode(x_moved, self.inv) - decode(x, self.inv)
        return torch.nn.functional.normalize(d.abs() + 1e-6, dim=1)


def test_diagnostics_report_a_generator_that_writes_c_into_faint_pixels():
    cfg = Config(dataset="squares", n_latents=3, n_compare_dims=2)
    G = FaintGenerator(3)
    H = PatternH(G)
    encode = lambda x: decode(x, H.inv)  # noqa: E731
    scores = shortcut_diagnostics(G, H, encode, SQUARES, cfg, torch.device("cpu"))
    assert scores["h_acc_raw"] > 0.9 and scores["h_acc_degraded"] < 0.5
    assert scores["e_mse_raw"] < 0.05 and scores["e_mse_degraded"] > 0.2
    flags = shortcut_flags(scores, pixels=32 * 32)
    assert any("H reads sub-visible" in f for f in flags) and any("E reads sub-visible" in f for f in flags)
    assert any("unlike real images" in f for f in flags)  # a blank grey frame is no square either


class SquareGenerator(nn.Module):
    """Draws real squares from the code (size, x, y), optionally with an extra mark."""

    def __init__(self, marks: bool = False):
        super().__init__()
        self.marks = marks
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, c):
        idx = ((c[:, :3] + 1) / 2 * torch.tensor([3.999, 15.999, 15.999])).long().clamp(min=0)
        x = SQUARES.images(idx.numpy())
        if self.marks:
            x[:, :, :3, :3] = 1.0  # a blob in the corner of every sample
            x[:, :, -4:, 10:14] = 1.0
        return x


def test_diagnostics_report_extra_marks_and_pass_a_realistic_generator():
    cfg = Config(dataset="squares", n_latents=3, n_compare_dims=2)
    H = DifferenceEncoder(1, 8, 4, image_size=32)
    encode = lambda x: torch.zeros(len(x), 3)  # noqa: E731
    clean = shortcut_diagnostics(SquareGenerator(), H, encode, SQUARES, cfg, torch.device("cpu"))
    marked = shortcut_diagnostics(SquareGenerator(marks=True), H, encode, SQUARES, cfg, torch.device("cpu"))
    assert clean["nn_dist_fake"] <= 2 * clean["nn_dist_real"] + 1
    assert marked["nn_dist_fake"] > 15
    assert not [f for f in shortcut_flags(clean, 1024) if "unlike" in f or "does not draw" in f]
    assert [f for f in shortcut_flags(marked, 1024) if "unlike" in f]


def test_diagnostics_report_a_generator_that_draws_only_blank_frames():
    """A blank frame lies close to the smallest real square; coverage sees that it draws none of the data."""
    cfg = Config(dataset="squares", n_latents=3, n_compare_dims=2)

    class Blank(nn.Module):
        def forward(self, c):
            return torch.zeros(len(c), 1, 32, 32)

    scores = shortcut_diagnostics(Blank(), DifferenceEncoder(1, 8, 4, image_size=32), lambda x: torch.zeros(len(x), 3),
                                  SQUARES, cfg, torch.device("cpu"))
    assert scores["nn_dist_fake"] == 16  # the 4x4 square is 16 pixels away from a blank frame
    assert scores["nn_cover_fake"] > 2 * scores["nn_cover_real"] + 10  # a real square lies far from every sample
    flags = shortcut_flags(scores, 1024)
    assert [f for f in flags if "does not draw much of the data" in f]


def test_axis_accuracy_by_hand():
    v = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    assert axis_accuracy(v, torch.tensor([0, 0, 1, 1])) == 1.0
    assert axis_accuracy(v, torch.tensor([0, 1, 0, 1])) == 0.0


def test_with_critic_view_the_critic_judges_what_h_and_e_see():
    """A faint generator's images are all black once binarised: with critic_view the critic's fakes
    are exactly black frames, without it the grey images themselves."""
    seen = []

    class Recording(Critic):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    from did_core.models.did.trainer import critic_step

    for critic_view in (False, True):
        cfg = Config.from_preset("smoke", dataset="squares", n_latents=3, n_compare_dims=2, view="binarize",
                                 critic_view=critic_view, lambda_gp=0.0)
        D = Recording(1, 4, image_size=32)
        seen.clear()
        critic_step(D, FaintGenerator(3), torch.optim.Adam(D.parameters()), SQUARES.images(np.zeros((8, 3), int)),
                    cfg, torch.Generator().manual_seed(0))
        fake = seen[0][8:16]  # one pass of the critic over [real, fake]
        assert (fake == 0).all() if critic_view else (fake > 0.05).all()
