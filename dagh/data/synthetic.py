"""Seeded synthetic faces: the embedded default dataset.

An identity is a parameter vector of a rendered face (face shape, skin, hair,
eyes, brows, nose, mouth, optional glasses and beard); a fraction of the
identities are look-alikes, small perturbations of another identity. Each
image varies pose (roll, yaw, pitch), scale, position, lighting, expression,
background clutter, occlusion and sensor noise.

Rendering is vectorized numpy over a chunk of images (no per-pixel Python
loops): every part is a soft-edged shape composited with alpha blending, so
tens of thousands of 32x32 faces render in seconds. The same seed gives the
same bytes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dagh.data.faceset import FaceSet, Splits
from dagh.errors import ConfigError

_SKIN = np.array([[0.98, 0.85, 0.72], [0.92, 0.74, 0.58], [0.80, 0.60, 0.44],
                  [0.62, 0.44, 0.30], [0.45, 0.31, 0.21], [0.33, 0.22, 0.15]], np.float32)
_HAIR = np.array([[0.08, 0.06, 0.05], [0.30, 0.19, 0.10], [0.55, 0.38, 0.20],
                  [0.85, 0.72, 0.45], [0.60, 0.25, 0.10], [0.65, 0.65, 0.65]], np.float32)
_EYE = np.array([[0.10, 0.08, 0.06], [0.25, 0.15, 0.08], [0.20, 0.35, 0.55],
                 [0.25, 0.40, 0.25]], np.float32)

# Identity parameters: name -> (low, high) of a uniform draw.
_RANGES = {
    "face_w": (0.48, 0.66), "face_h": (0.62, 0.80),
    "hair_volume": (0.02, 0.16), "hairline": (-0.72, -0.30), "hair_side": (-0.35, 0.55),
    "eye_dx": (0.17, 0.30), "eye_y": (-0.22, -0.04), "eye_size": (0.045, 0.095),
    "brow_gap": (0.09, 0.17), "brow_thick": (0.02, 0.055), "brow_tilt": (-0.35, 0.35),
    "brow_len": (0.08, 0.16),
    "nose_len": (0.10, 0.26), "nose_w": (0.035, 0.09),
    "mouth_w": (0.13, 0.30), "mouth_t": (0.025, 0.065), "mouth_y": (0.24, 0.42),
}
_COLORS = ("skin", "hair", "eye", "lip")
_MEAN_SCALE = 0.95  # render_faces draws the face scale from U(0.82, 1.08)
_FLAGS = ("glasses", "beard")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of the synthetic face set."""

    identities: int = 100
    train_per_identity: int = 40
    test_per_identity: int = 10
    size: int = 32
    seed: int = 0
    lookalike_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.identities < 2:
            raise ConfigError(f"synthetic faces need at least 2 identities, got {self.identities}")
        if self.train_per_identity < 1 or self.test_per_identity < 1:
            raise ConfigError("synthetic faces need at least 1 train and 1 test image per identity")
        if not 8 <= self.size <= 256:
            raise ConfigError(f"synthetic face size must be in [8, 256], got {self.size}")
        if not 0.0 <= self.lookalike_fraction < 1.0:
            raise ConfigError(f"lookalike_fraction must be in [0, 1), got {self.lookalike_fraction}")

    def to_dict(self) -> dict:
        return {"kind": "synthetic", **dataclasses.asdict(self)}


def sample_identities(n: int, rng: np.random.Generator, lookalike_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """Draw ``n`` identity parameter vectors; some are look-alikes of earlier ones."""
    p = {k: rng.uniform(lo, hi, n).astype(np.float32) for k, (lo, hi) in _RANGES.items()}
    p["skin"] = _SKIN[rng.integers(0, len(_SKIN), n)] + rng.normal(0, 0.04, (n, 3)).astype(np.float32)
    p["hair"] = _HAIR[rng.integers(0, len(_HAIR), n)] + rng.normal(0, 0.04, (n, 3)).astype(np.float32)
    p["eye"] = _EYE[rng.integers(0, len(_EYE), n)]
    p["lip"] = (p["skin"] * np.array([0.85, 0.55, 0.55], np.float32)
                + rng.normal(0, 0.03, (n, 3)).astype(np.float32))
    p["glasses"] = (rng.random(n) < 0.2).astype(np.float32)
    p["beard"] = (rng.random(n) < 0.2).astype(np.float32)
    # Look-alikes: copy an earlier identity and nudge a few parameters, so that
    # some pairs of people are hard to tell apart (as siblings are).
    n_alike = int(round(n * lookalike_fraction))
    for i in rng.choice(np.arange(1, n), size=min(n_alike, n - 1), replace=False) if n > 1 else []:
        src = int(rng.integers(0, i))
        for k, (lo, hi) in _RANGES.items():
            p[k][i] = np.clip(p[k][src] + rng.normal(0, 0.12 * (hi - lo)), lo, hi)
        for k in _COLORS:
            p[k][i] = p[k][src] + rng.normal(0, 0.03, 3)
        for k in _FLAGS:
            p[k][i] = p[k][src]
    for k in _COLORS:
        p[k] = np.clip(p[k], 0.0, 1.0)
    return p


def _soft_ellipse(x, y, cx, cy, a, b, px):
    """Anti-aliased alpha of an ellipse (approximate signed distance / pixel)."""
    r = np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2)
    return np.clip(0.5 - (r - 1.0) * np.minimum(a, b) / px, 0.0, 1.0)


def _soft_box(x, y, cx, cy, hw, hh, px):
    dx = np.abs(x - cx) - hw
    dy = np.abs(y - cy) - hh
    return np.clip(0.5 - np.maximum(dx, dy) / px, 0.0, 1.0)


def _blend(img, alpha, color):
    """img <- img + alpha*(color - img); img is channel-major [3,N,H,W], color [N,3].

    Channel-major keeps every operation on contiguous [N,H,W] planes; numpy is
    several times slower broadcasting over a trailing axis of length 3.
    """
    for c in range(3):
        img[c] += alpha * (color[:, c, None, None] - img[c])


def render_faces(params: dict[str, np.ndarray], labels: np.ndarray, size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Render one image per entry of ``labels`` (indices into ``params``); uint8 [N,S,S,3]."""
    n = len(labels)
    f32 = np.float32
    P = {k: v[labels] for k, v in params.items()}

    def col(v):  # per-image scalar -> broadcastable [N,1,1]
        return np.asarray(v, f32)[:, None, None]

    def draw(lo, hi):
        return rng.uniform(lo, hi, n).astype(f32)

    # Image-plane coordinates in [-1, 1].
    grid = (np.arange(size, dtype=f32) + 0.5) / size * 2.0 - 1.0
    v, u = np.meshgrid(grid, grid, indexing="ij")
    u, v = u[None], v[None]
    px = 2.0 / size

    # Pose: roll, scale and position map image coordinates to face coordinates.
    roll = rng.normal(0, 0.15, n).astype(f32)
    scale = draw(0.82, 1.08)
    tx, ty = rng.normal(0, 0.05, n).astype(f32), rng.normal(0, 0.05, n).astype(f32)
    cr, sr = col(np.cos(roll)), col(np.sin(roll))
    du, dv = u - col(tx), v - col(ty)
    x = (cr * du + sr * dv) / col(scale)
    y = (-sr * du + cr * dv) / col(scale)
    fpx = px / col(scale)
    # Yaw and pitch shift the inner features across the face.
    yaw, pitch = draw(-0.45, 0.45), draw(-0.25, 0.25)
    fx, fy = col(0.16 * yaw), col(0.08 * pitch)

    # Background: a random base color, a colored gradient, a stripe pattern and blobs.
    img = np.empty((3, n, size, size), f32)  # channel-major while drawing
    img[:] = rng.uniform(0.05, 0.95, (3, n, 1, 1)).astype(f32)
    grad_dir = draw(0, 2 * np.pi)
    grad = col(np.cos(grad_dir)) * u + col(np.sin(grad_dir)) * v
    img += grad[None] * rng.uniform(-0.25, 0.25, (3, n, 1, 1)).astype(f32)
    freq, ang = draw(2.0, 9.0), draw(0, np.pi)
    stripes = np.sin(col(freq) * (col(np.cos(ang)) * u + col(np.sin(ang)) * v) * np.pi)
    img += stripes[None] * rng.uniform(0, 0.12, (1, n, 1, 1)).astype(f32)
    for _ in range(3):
        _blend(img, _soft_ellipse(u, v, col(draw(-1, 1)), col(draw(-1, 1)), col(draw(0.1, 0.4)),
                                  col(draw(0.1, 0.4)), px) * col(rng.random(n) < 0.6),
               rng.uniform(0, 1, (n, 3)).astype(f32))

    fw, fh, vol = col(P["face_w"]), col(P["face_h"]), col(P["hair_volume"])
    hair = P["hair"] * draw(0.85, 1.15)[:, None]
    # Hair behind the head, down to the identity's side length.
    back = _soft_ellipse(x, y, 0.0, -0.04, fw + vol, fh + vol, fpx) * np.clip(
        0.5 - (y - col(P["hair_side"])) / fpx, 0, 1)
    _blend(img, back, hair)
    # Face.
    face = _soft_ellipse(x, y, 0.0, 0.0, fw, fh, fpx)
    _blend(img, face, P["skin"])
    # Beard over the lower face.
    my = col(P["mouth_y"]) + fy
    beard = face * np.clip(0.5 - (my - 0.12 - y) / fpx, 0, 1) * col(P["beard"]) * 0.9
    _blend(img, beard, hair * 0.8)
    # Hair on top, with a wavy hairline.
    wave = 0.04 * np.sin(x * col(draw(4, 9)) + col(draw(0, 6.28)))
    top = _soft_ellipse(x, y, 0.0, -0.04, fw + vol, fh + vol, fpx) * np.clip(
        0.5 - (y - col(P["hairline"]) - wave) / fpx, 0, 1)
    _blend(img, top, hair)

    # Eyes (the far eye shrinks with yaw), brows, nose, mouth.
    ey = col(P["eye_y"]) + fy
    es = col(P["eye_size"])
    blink = col(np.where(rng.random(n) < 0.1, 0.3, 1.0))
    brow_raise = col(draw(-0.03, 0.06))
    for side in (-1.0, 1.0):
        ex = side * col(P["eye_dx"]) + fx
        foreshorten = col(1.0 - 0.5 * np.clip(side * yaw, 0, None))
        _blend(img, _soft_ellipse(x, y, ex, ey, es * 1.5 * foreshorten, es * 0.9 * blink, fpx) * face,
               np.full((n, 3), 0.95, f32))
        _blend(img, _soft_ellipse(x, y, ex, ey, es * 0.8 * foreshorten, es * 0.8 * blink, fpx) * face,
               P["eye"])
        # Brow: a tilted thin box above the eye.
        t = side * col(P["brow_tilt"])
        bx, by = x - ex, y - (ey - col(P["brow_gap"]) - brow_raise)
        rx, ry = bx * np.cos(t) + by * np.sin(t), -bx * np.sin(t) + by * np.cos(t)
        _blend(img, _soft_box(rx, ry, 0.0, 0.0, col(P["brow_len"]) * foreshorten,
                              col(P["brow_thick"]), fpx) * face, hair * 0.7)
        if True:  # glasses: a ring round each eye, drawn only for identities that wear them
            r = np.sqrt((x - ex) ** 2 + (y - ey) ** 2)
            ring = np.clip(0.5 - (np.abs(r - es * 2.2) - 0.025) / fpx, 0, 1) * col(P["glasses"])
            _blend(img, ring, np.full((n, 3), 0.08, f32))
    bridge = _soft_box(x, y, fx, ey, col(P["eye_dx"]) - col(P["eye_size"]) * 2.2, 0.02, fpx)
    _blend(img, bridge * col(P["glasses"]), np.full((n, 3), 0.08, f32))
    nose_len = col(P["nose_len"])
    nose = _soft_ellipse(x, y, fx * 1.3, ey + 0.05 + nose_len * 0.6, col(P["nose_w"]), nose_len * 0.6, fpx)
    _blend(img, nose * face * 0.5, P["skin"] * 0.7)
    smile = col(draw(-0.6, 1.2))
    mouth_open = col(np.where(rng.random(n) < 0.25, draw(0.3, 1.5), 0.0))
    mw, mt = col(P["mouth_w"]), col(P["mouth_t"])
    curved = y - my + smile * 0.8 * ((x - fx) ** 2 - mw ** 2 / 3)
    _blend(img, _soft_ellipse(x, curved, fx, 0.0, mw, mt * (1 + mouth_open), fpx) * face, P["lip"])
    _blend(img, _soft_ellipse(x, curved, fx, 0.0, mw * 0.8, mt * mouth_open * 0.7 + 1e-3, fpx) * face,
           np.full((n, 3), 0.15, f32))

    # Lighting: a directional shading, brightness and a color cast.
    light_dir = draw(0, 2 * np.pi)
    shade = 1.0 + col(draw(0.0, 0.45)) * (col(np.cos(light_dir)) * u + col(np.sin(light_dir)) * v)
    img *= shade[None]
    img *= (draw(0.6, 1.3)[None, :] * rng.uniform(0.9, 1.1, (3, n)))[..., None, None].astype(f32)

    # Occlusion: a hand, scarf or phone in front of part of the face.
    occluded = col(rng.random(n) < 0.25)
    occ = _soft_box(u, v, col(draw(-0.6, 0.6)), col(draw(-0.4, 0.8)), col(draw(0.15, 0.45)),
                    col(draw(0.1, 0.35)), px) * occluded
    _blend(img, occ, rng.uniform(0, 1, (n, 3)).astype(f32))

    img += rng.standard_normal(img.shape, dtype=f32) * col(draw(0.0, 0.035))[None]
    out = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(out.transpose(1, 2, 3, 0))


def render_identity_images(params: dict[str, np.ndarray], per_identity: int, size: int,
                           rng: np.random.Generator, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Render ``per_identity`` images of every identity, in fixed-size chunks."""
    n_id = len(params["face_w"])
    labels = np.repeat(np.arange(n_id, dtype=np.int64), per_identity)
    images = np.empty((len(labels), size, size, 3), np.uint8)
    for start in range(0, len(labels), chunk):
        images[start:start + chunk] = render_faces(params, labels[start:start + chunk], size, rng)
    return images, labels


def make_synthetic_splits(config: SyntheticConfig = SyntheticConfig()) -> Splits:
    """The synthetic train (database) and test (query) splits for ``config``."""
    seeds = np.random.SeedSequence(config.seed).spawn(3)
    params = sample_identities(config.identities, np.random.default_rng(seeds[0]), config.lookalike_fraction)
    names = [f"synthetic-{i:05d}" for i in range(config.identities)]
    train_x, train_y = render_identity_images(params, config.train_per_identity, config.size,
                                              np.random.default_rng(seeds[1]))
    test_x, test_y = render_identity_images(params, config.test_per_identity, config.size,
                                            np.random.default_rng(seeds[2]))
    return Splits(FaceSet(train_x, train_y, names), FaceSet(test_x, test_y, names), config.to_dict())


def synthetic_face_template() -> tuple[tuple[float, float], ...]:
    """Where the average synthetic face's 5 landmarks sit in its crop, as fractions of the side.

    From the renderer's geometry at the mean identity and a neutral pose (no roll,
    yaw or pitch, mean scale): eye centres at (+-eye_dx, eye_y), the nose tip at the
    bottom of the nose ellipse, the mouth corners at (+-mouth_w, mouth_y); image-left
    first, as dagh.runtime.face.detect orders landmarks.
    """
    mean = {k: (lo + hi) / 2 for k, (lo, hi) in _RANGES.items()}
    face = [(-mean["eye_dx"], mean["eye_y"]), (mean["eye_dx"], mean["eye_y"]),
            (0.0, mean["eye_y"] + 0.05 + 1.2 * mean["nose_len"]),
            (-mean["mouth_w"], mean["mouth_y"]), (mean["mouth_w"], mean["mouth_y"])]
    return tuple((round((x * _MEAN_SCALE + 1) / 2, 4), round((y * _MEAN_SCALE + 1) / 2, 4)) for x, y in face)
