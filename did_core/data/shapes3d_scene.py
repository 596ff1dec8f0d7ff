"""A tiny batched ray caster for the 3DShapes room: floor, three walls and one object.

The colours of floor, wall and object never change the geometry, so the scene is rendered as
three *layers*: for every pixel, how much of it shows floor, wall and object, times the light
there (coverage from 2x2 supersampling, Lambert shading, the object's shadow). An image is then
``sum_layer weight[layer] * colour[layer]``, see :mod:`did_core.data.shapes3d`.

World: y up, floor y = 0, back wall z = ROOM, side walls x = +-ROOM; the object stands on the
floor at the origin. The camera orbits the object by the azimuth (the orientation factor), so
both the object and the room corner turn.

Example:
    >>> w = render_layers(torch.tensor([1.0]), torch.tensor([0]), torch.tensor([15.0]))  # [1, 3, 64, 64]
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ROOM = 3.2  # half-width of the room / distance of the back wall
CAMERA_DISTANCE, CAMERA_HEIGHT, LOOK_AT_HEIGHT = 5.2, 2.0, 0.8
TAN_HALF_FOV = 0.5
LIGHT = (-0.45, 1.0, -0.55)  # towards the light: above, to the left, from the camera's side
AMBIENT = 0.45
INF = float("inf")


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def _sphere(o, d, centre, r):
    oc = o - centre
    b = _dot(oc, d)
    disc = b * b - (_dot(oc, oc) - r * r)
    t = -b - disc.clamp(min=0).sqrt()
    t = torch.where((disc > 0) & (t > 1e-4), t, INF)
    return t, (o + t[..., None] * d - centre) / r[..., None]


def _box(o, d, lo, hi):
    inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    near, far = torch.minimum(t1, t2), torch.maximum(t1, t2)
    t_near, axis = near.max(-1)
    t_far = far.min(-1).values
    t = torch.where((t_near < t_far) & (t_near > 1e-4), t_near, INF)
    normal = F.one_hot(axis, 3).to(d.dtype) * -torch.sign(d)
    return t, normal


def _tube(o, d, r, axis: int, lo, hi, centre):
    """Side of a tube of radius r along world ``axis`` through ``centre``, between lo and hi on the axis."""
    oc = o - centre
    keep = [i for i in range(3) if i != axis]
    dp, op = d[..., keep], oc[..., keep]
    a = _dot(dp, dp).clamp(min=1e-12)
    b = _dot(op, dp)
    disc = b * b - a * (_dot(op, op) - r * r)
    t = (-b - disc.clamp(min=0).sqrt()) / a
    along = o[..., axis] + t * d[..., axis]
    t = torch.where((disc > 0) & (t > 1e-4) & (along >= lo) & (along <= hi), t, INF)
    n = oc + t[..., None] * d
    n[..., axis] = 0
    return t, n / r[..., None]


def _nearest(*hits):
    ts = torch.stack([t for t, _ in hits])
    t, which = ts.min(0)
    normals = torch.stack([n for _, n in hits])
    return t, normals.gather(0, which[None, ..., None].expand(1, *normals.shape[1:])).squeeze(0)


def object_hit(shape: int, s: torch.Tensor, o: torch.Tensor, d: torch.Tensor):
    """Ray ``o + t d`` against object ``shape`` (0 cube, 1 cylinder, 2 sphere, 3 capsule) of size ``s``.

    ``s`` broadcasts against ``o[..., 0]``; returns (t, unit normal), t = inf for a miss.
    """
    zero = torch.zeros_like(s)
    v = lambda x, y, z: torch.stack(torch.broadcast_tensors(x, y, z), -1)  # noqa: E731
    if shape == 0:  # cube, edge 1.0 * s
        h = 0.5 * s
        return _box(o, d, v(-h, zero, -h), v(h, 2 * h, h))
    if shape == 1:  # upright cylinder, radius 0.5 s, height 1.1 s
        r, top = 0.5 * s, 1.1 * s
        side = _tube(o, d, r, 1, zero, top, v(zero, zero, zero))
        t_cap = (top - o[..., 1]) / d[..., 1].clamp(max=-1e-9)
        p = o + t_cap[..., None] * d
        on_cap = (t_cap > 1e-4) & (p[..., 0] ** 2 + p[..., 2] ** 2 <= r * r)
        cap = (torch.where(on_cap, t_cap, INF), v(zero, zero + 1, zero).expand_as(p))
        return _nearest(side, cap)
    if shape == 2:  # sphere, radius 0.6 s
        r = 0.6 * s
        return _sphere(o, d, v(zero, r, zero), r)
    # capsule lying along x: radius 0.38 s, straight part 1.0 s long
    r, half = 0.38 * s, 0.5 * s
    side = _tube(o, d, r, 0, -half, half, v(zero, r, zero))
    return _nearest(side, _sphere(o, d, v(-half, r, zero), r), _sphere(o, d, v(half, r, zero), r))


def _camera(azimuth_deg: torch.Tensor, n: int):
    """Camera origins [g, 1, 1, 3] and unit ray directions [g, n, n, 3] (row 0 at the top)."""
    a = azimuth_deg * (math.pi / 180)
    g = len(a)
    origin = torch.stack([CAMERA_DISTANCE * torch.sin(a), torch.full_like(a, CAMERA_HEIGHT), -CAMERA_DISTANCE * torch.cos(a)], -1)
    target = torch.tensor([0.0, LOOK_AT_HEIGHT, 0.0], device=a.device)
    forward = F.normalize(target - origin, dim=-1)
    right = F.normalize(torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0], device=a.device).expand(g, 3), forward), dim=-1)
    up = torch.linalg.cross(forward, right)
    coords = ((torch.arange(n, device=a.device, dtype=torch.float32) + 0.5) / n * 2 - 1) * TAN_HALF_FOV
    u, v = coords[None, None, :, None], -coords[None, :, None, None]
    d = forward[:, None, None] + u * right[:, None, None] + v * up[:, None, None]
    return origin[:, None, None], F.normalize(d, dim=-1)


def render_layers(scale: torch.Tensor, shape: torch.Tensor, azimuth_deg: torch.Tensor, size: int = 64, supersample: int = 2):
    """Layer weights float32 [g, 3 (floor, wall, object), size, size] for g (scale, shape, azimuth) triples."""
    n = size * supersample
    o, d = _camera(azimuth_deg.float(), n)
    o_full = o.expand_as(d)
    light = F.normalize(torch.tensor(LIGHT, device=d.device), dim=0)

    # The room: nearest of the floor and the three walls.
    planes = [(1, 0.0, (0, 1, 0)), (2, ROOM, (0, 0, -1)), (0, -ROOM, (1, 0, 0)), (0, ROOM, (-1, 0, 0))]
    ts = []
    for axis, k, _ in planes:
        t = (k - o_full[..., axis]) / d[..., axis]
        ts.append(torch.where(t > 0, t, INF))
    t_room, plane = torch.stack(ts).min(0)
    room_normals = torch.tensor([nrm for _, _, nrm in planes], dtype=torch.float32, device=d.device)[plane]

    # The object, one shape group at a time.
    t_obj = torch.full_like(t_room, INF)
    obj_normals = torch.zeros_like(d)
    for k in range(4):
        idx = (shape == k).nonzero().squeeze(1)
        if len(idx):
            t, nrm = object_hit(k, scale[idx].float()[:, None, None], o_full[idx], d[idx])
            t_obj[idx], obj_normals[idx] = t, nrm

    is_obj = t_obj < t_room
    normal = torch.where(is_obj[..., None], obj_normals, room_normals)
    point = o_full + torch.where(is_obj, t_obj, t_room)[..., None] * d
    lit = _dot(normal, light).clamp(min=0)

    # Shadows: room points whose ray towards the light meets the object.
    shadow = torch.zeros_like(lit, dtype=torch.bool)
    for k in range(4):
        idx = (shape == k).nonzero().squeeze(1)
        if len(idx):
            t, _ = object_hit(k, scale[idx].float()[:, None, None], point[idx] + 1e-3 * normal[idx], light.expand_as(point[idx]))
            shadow[idx] = torch.isfinite(t) & ~is_obj[idx]
    shade = AMBIENT + (1 - AMBIENT) * torch.where(shadow, 0.15 * lit, lit)

    layer = torch.where(is_obj, 2, (plane != 0).long())  # 0 floor, 1 wall, 2 object
    weights = F.one_hot(layer, 3).permute(0, 3, 1, 2).float() * shade[:, None]
    return F.avg_pool2d(weights, supersample) if supersample > 1 else weights
