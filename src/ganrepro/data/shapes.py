"""`shapes`: a procedural stand-in for CLEVR that costs nothing to download.

Each scene holds 1..N objects (sphere, cube, cylinder seen from the front, cone seen
as a triangle, diamond) in the eight CLEVR colours, small or large, rubber (matte) or
metal (with a highlight), at random positions on a plain or gradient background.
Objects lower in the picture are nearer and drawn later, so they occlude the ones
behind, as on CLEVR's tabletop. Each object casts a soft shadow.

Image i depends only on (seed, i): it is drawn with its own generator seeded from
SeedSequence([seed, i]), so the set is byte-identical across runs and the first N images
do not change when more are asked for. Shapes are rasterised at 4x (<=64 px) or 2x and
box-filtered down, which antialiases their edges; each object only touches the pixels
of its bounding box, which keeps 10k scenes at 32 px to a few seconds.
"""

from __future__ import annotations

import numpy as np

KINDS = ("sphere", "cube", "cylinder", "cone", "diamond")
# CLEVR's colour names with RGB values close to its renders.
COLOURS = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208), "yellow": (255, 238, 51),
}
_PALETTE = np.array(list(COLOURS.values()), dtype=np.float32) / 255.0
SIZES = {"small": (0.07, 0.10), "large": (0.12, 0.16)}   # radius as a fraction of the side


def _supersampling(resolution: int) -> int:
    return 4 if resolution <= 64 else 2


def _background(rng: np.random.Generator, side: int, style: str) -> np.ndarray:
    if style == "mixed":
        style = "plain" if rng.random() < 0.5 else "gradient"
    top = rng.uniform(0.55, 0.85) * np.ones(3, np.float32) + rng.uniform(-0.05, 0.05, 3).astype(np.float32)
    if style == "plain":
        return np.broadcast_to(top, (side, side, 3)).copy()
    bottom = top * rng.uniform(0.55, 0.85)
    t = np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (side, side, 3)).copy()


def _mask(kind: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Inside-test in object coordinates (u right, v down, centred, rotated)."""
    if kind == "sphere":
        return u * u + v * v <= r * r
    if kind == "cube":
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if kind == "cylinder":
        body = (np.abs(u) <= r * 0.75) & (np.abs(v) <= r * 0.8)
        cap = (u / (r * 0.75)) ** 2 + ((v + r * 0.8) / (r * 0.3)) ** 2 <= 1.0
        return body | cap
    if kind == "cone":   # triangle with apex up
        return (v <= r * 0.8) & (v >= -r) & (np.abs(u) <= (v + r) * 0.5)
    return np.abs(u) + np.abs(v) <= r   # diamond


def _draw(canvas: np.ndarray, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray,
          obj: dict) -> None:
    side = canvas.shape[0]
    cx, cy, r = obj["x"] * side, obj["y"] * side, obj["r"] * side
    # Only the bounding box (with room for the shadow) is touched.
    y0, y1 = max(0, int(cy - 1.6 * r)), min(side, int(cy + 1.6 * r) + 2)
    x0, x1 = max(0, int(cx - 1.6 * r)), min(side, int(cx + 1.6 * r) + 2)
    if y0 >= y1 or x0 >= x1:
        return
    py, px = yy[y0:y1, None] - cy, xx[None, x0:x1] - cx
    patch = canvas[y0:y1, x0:x1]
    # Soft shadow: an ellipse offset down-right, darkening what lies beneath.
    sd = ((px - 0.35 * r) / (1.1 * r)) ** 2 + ((py - 0.55 * r) / (0.6 * r)) ** 2
    patch *= (1.0 - 0.35 * np.clip(1.2 - sd, 0.0, 1.0))[..., None]
    c, s = np.cos(obj["angle"]), np.sin(obj["angle"])
    u, v = (c * px + s * py, -s * px + c * py) if obj["kind"] in ("cube", "diamond") else (px, py)
    inside = _mask(obj["kind"], u, v, r)
    # Shading: light from the upper left; metal adds a tight specular highlight.
    d2 = ((px + 0.35 * r) ** 2 + (py + 0.35 * r) ** 2) / (r * r)
    shade = np.clip(1.1 - 0.35 * d2, 0.45, 1.1)
    colour = _PALETTE[obj["colour"]] * shade[..., None]
    if obj["metal"]:
        colour = colour + 0.8 * np.exp(-d2 * 10.0)[..., None]
    patch[inside] = np.clip(colour[inside], 0.0, 1.0)


def _scene(rng: np.random.Generator, min_objects: int, max_objects: int) -> list[dict]:
    objects = []
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        size = "small" if rng.random() < 0.5 else "large"
        objects.append({
            "kind": KINDS[int(rng.integers(len(KINDS)))],
            "colour": int(rng.integers(len(_PALETTE))),
            "metal": bool(rng.random() < 0.5),
            "r": float(rng.uniform(*SIZES[size])),
            "x": float(rng.uniform(0.12, 0.88)),
            "y": float(rng.uniform(0.3, 0.85)),      # the tabletop: objects rest below the horizon
            "angle": float(rng.uniform(0, np.pi / 2)),
        })
    objects.sort(key=lambda o: o["y"])              # far (high) first, near (low) last
    return objects


def render(index: int, resolution: int, seed: int = 0, min_objects: int = 1,
           max_objects: int = 4, background: str = "mixed") -> np.ndarray:
    """Scene `index` as uint8 [resolution, resolution, 3]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    ss = _supersampling(resolution)
    side = resolution * ss
    canvas = _background(rng, side, background)
    coords = np.arange(side, dtype=np.float32) + 0.5
    for obj in _scene(rng, min_objects, max_objects):
        _draw(canvas, rng, coords, coords, obj)
    # Box filter: sum the ss rows of each output row, then the ss columns (this order
    # reads memory contiguously and is ~4x faster than mean over both axes at once).
    rows = canvas.reshape(resolution, ss, side * 3).sum(axis=1)
    small = rows.reshape(resolution, resolution, ss, 3).sum(axis=2) / (ss * ss)
    return np.rint(np.clip(small, 0.0, 1.0) * 255.0).astype(np.uint8)


def generate(spec: dict):
    """Yield (name, uint8 HWC image) for every scene a resolved `shapes` spec asks for."""
    count = spec["num_images"] if spec.get("max_images") is None else min(spec["num_images"], spec["max_images"])
    for i in range(count):
        img = render(i, spec["resolution"], spec["seed"], spec["min_objects"],
                     spec["max_objects"], spec["background"])
        if spec["channels"] == 1:
            img = np.rint(img @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[:, :, None]
        yield f"scene{i:07d}", img
