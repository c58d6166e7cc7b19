"""`ganrepro generate`: pictures from a snapshot, made the way StyleGAN's scripts make them.

- Seeds (generate.py): the latent z of image SEED is drawn from a torch generator seeded
  with SEED alone, so seed 5 gives the same image in `--seeds 0-63` and in `--seeds 5`.
- Truncation: w = w_avg + psi (w - w_avg) with the snapshot's own tracked w_avg (G.map).
- Style mixing (style_mixing.py): cell (row r, column c) is row r's image with the styles
  of layers A..B taken from column c (`mix_styles`, as training mixes; every latent
  component of a GANformer layer moves). Sources on the top row and the left column.
- Interpolation: linear in W between the two seeds' (truncated) styles, as StyleGAN's
  gen_video.py walks; the `dcgan` has no W and walks along the great circle in z.

Noise: `const` (the default, as in generate.py) uses each layer's stored noise image;
`random` draws fresh noise for every image from that image's seed, so reruns match;
`none` leaves noise out. Images are computed `batch_size` at a time; with batch size 1
(the default) an image never depends on what else is drawn with it, while larger batches
compute the same numbers in another float order, which can move a pixel by one level.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ganrepro.errors import ConfigError
from ganrepro.images import save_png, tile, to_uint8
from ganrepro.models.stylegan2 import mix_styles
from ganrepro.progress import logged

log = logging.getLogger(__name__)

SEED_LIMIT = 2 ** 32           # seeds are 0 .. 2^32 - 1, as StyleGAN's (numpy RandomState) are
MAX_SEEDS = 1_000_000          # one option's list; beyond this a typo (0-4000000000) is likelier
GRID_MAX = 256                 # images in grid.png and interpolation.png (16 x 16)
STRIP_COLUMNS = 16             # frames per row of interpolation.png
MAX_MIX_CELLS = 1024           # style-mix.png is held in memory whole


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """'0-63', '1,5,9', '0-3,10' -> seeds in the order given (ranges inclusive)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ConfigError(f"{option} {text!r}: {part.strip()!r} is not a seed or a range of seeds; "
                              f"write them like 0-63, 1,5,9 or 0-3,10")
        first, last = int(m[1]), int(m[2] or m[1])
        if last < first:
            raise ConfigError(f"{option} {text!r}: the range {first}-{last} runs backwards; write {last}-{first}")
        if last >= SEED_LIMIT:
            raise ConfigError(f"{option} {text!r}: seeds go up to {SEED_LIMIT - 1}")
        if len(seeds) + last - first + 1 > MAX_SEEDS:
            raise ConfigError(f"{option} {text!r} names more than {MAX_SEEDS:,} seeds")
        seeds.extend(range(first, last + 1))
    return seeds


def parse_seed(text: str, option: str) -> int:
    seeds = parse_seeds(text, option)
    if len(seeds) != 1:
        raise ConfigError(f"{option} {text!r}: give one seed here, not a list or a range")
    return seeds[0]


def default_style_layers(G: nn.Module) -> tuple[int, int]:
    """StyleGAN's coarse styles: those of the 4x4 and 8x8 layers, as (first, last)."""
    coarse = [i for i, res in enumerate(G.ws_resolutions()) if res <= 8]
    return coarse[0], coarse[-1]


def parse_style_layers(text: str | None, G: nn.Module, option: str = "--style-layers") -> tuple[int, int]:
    """'A-B' or 'A' (inclusive, 0-based style indices) -> (A, B); None -> the coarse layers."""
    if text is None:
        return default_style_layers(G)
    last_index = G.num_ws - 1
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if not m:
        raise ConfigError(f"{option} {text!r} must be a layer range A-B (or one layer A) within 0-{last_index}")
    first, last = int(m[1]), int(m[2] or m[1])
    if not first <= last <= last_index:
        raise ConfigError(f"{option} {text!r}: this generator has styles 0-{last_index} "
                          f"(resolutions {_layer_resolutions(G, 0, last_index)}); give A-B with A <= B in that range")
    return first, last


def _layer_resolutions(G: nn.Module, first: int, last: int) -> str:
    res = G.ws_resolutions()
    lo, hi = res[first], res[last]
    return f"{lo}x{lo}" if lo == hi else f"{lo}x{lo} to {hi}x{hi}"


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation per row between latents a and b ([1, ...]) at fractions t ([n])."""
    a_flat, b_flat = a.flatten(1), b.flatten(1)
    cos = (a_flat * b_flat).sum(1) / (a_flat.norm(dim=1) * b_flat.norm(dim=1))
    omega = torch.arccos(cos.clamp(-1, 1))
    t = t.reshape(-1, *[1] * (a.ndim - 1)).to(a)
    if omega.item() < 1e-6:                                    # (anti-)parallel: a straight line will do
        return torch.lerp(a, b, t)
    s = torch.sin(omega)
    return torch.sin((1 - t) * omega) / s * a + torch.sin(t * omega) / s * b


@dataclass
class Sampler:
    """A loaded generator and how to draw from it."""
    G: nn.Module
    device: torch.device
    psi: float = 1.0
    noise_mode: str = "const"
    batch_size: int = 1

    @property
    def styled(self) -> bool:
        """Whether the generator has a mapping to per-layer styles (all models but `dcgan`)."""
        return hasattr(self.G, "map")

    def latent(self, seed: int) -> torch.Tensor:
        """z of image `seed`, drawn from that seed alone ([1, *z_shape])."""
        return torch.randn(1, *self.G.z_shape, generator=torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def codes(self, seeds: Sequence[int]) -> torch.Tensor:
        """What synthesis reads for each seed: the truncated styles ws, or z for the plain GAN.
        Mapped batch_size seeds at a time, the grouping every command uses."""
        out = []
        for chunk in _chunks(list(seeds), self.batch_size):
            z = torch.cat([self.latent(s) for s in chunk]).to(self.device)
            out.append(self.G.map(z, self.psi, update_avg=False)[0] if self.styled else z)
        return torch.cat(out)

    @torch.no_grad()
    def render(self, codes: torch.Tensor, noise_seeds: Sequence[int]) -> np.ndarray:
        """uint8 NHWC images of one batch of codes; with random noise, image i's noise is
        drawn from noise_seeds[i] (one image at a time)."""
        if not self.styled:
            return to_uint8(self.G(codes))
        if self.noise_mode != "random":
            return to_uint8(self.G.synthesize(codes, None, noise_mode=self.noise_mode))
        devices = [self.device] if self.device.type == "cuda" else []
        images = []
        for code, seed in zip(codes.split(1), noise_seeds):
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                images.append(self.G.synthesize(code, None, noise_mode="random"))
        return to_uint8(torch.cat(images))

    def run(self, n: int, make_codes: Callable[[list[int]], torch.Tensor], noise_seeds: Sequence[int],
            desc: str) -> Iterator[tuple[list[int], np.ndarray]]:
        """Render images 0..n-1 in batches, with progress: yields (indices, uint8 images)."""
        for idx in logged(_chunks(list(range(n)), self.batch_size), n, desc, log):
            yield idx, self.render(make_codes(idx), [noise_seeds[i] for i in idx])


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _square_columns(n: int) -> int:
    return max(1, math.ceil(math.sqrt(n)))


def write_seeds(sampler: Sampler, seeds: Sequence[int], out: Path) -> str:
    """seedNNNN.png for every seed and grid.png of (up to GRID_MAX of) them."""
    seeds = list(dict.fromkeys(seeds))                        # a repeated seed is the same file
    shown: list[np.ndarray] = []
    for idx, pixels in sampler.run(len(seeds), lambda idx: sampler.codes([seeds[i] for i in idx]),
                                   seeds, "generate seeds"):
        for i, img in zip(idx, pixels):
            save_png(img, out / f"seed{seeds[i]:04d}.png")
            if i < GRID_MAX:
                shown.append(img)
    save_png(tile(np.stack(shown), _square_columns(len(shown))), out / "grid.png")
    first, last = f"seed{seeds[0]:04d}.png", f"seed{seeds[-1]:04d}.png"
    names = first if len(seeds) == 1 else f"{first} ... {last}"
    note = f" (the first {GRID_MAX})" if len(seeds) > GRID_MAX else ""
    return f"wrote {len(seeds)} image(s), {names}, and grid.png{note} to {out}"


def check_style_mix(sampler: Sampler, rows: Sequence[int], cols: Sequence[int]) -> None:
    if not sampler.styled:
        raise ConfigError("--style-mix needs a style-based generator; the dcgan model has no per-layer styles")
    cells = (len(rows) + 1) * (len(cols) + 1)
    if cells > MAX_MIX_CELLS:
        raise ConfigError(f"--style-mix: {len(rows)} row and {len(cols)} column seeds make {cells} cells; "
                          f"at most {MAX_MIX_CELLS} fit (style-mix.png is built in memory)")


def write_style_mix(sampler: Sampler, rows: Sequence[int], cols: Sequence[int], layers: tuple[int, int],
                    out: Path) -> str:
    """style-mix.png: a blank corner, the column seeds' images along the top, the row
    seeds' down the left, and in cell (r, c) row r's styles with column c's in `layers`."""
    check_style_mix(sampler, rows, cols)
    rows, cols = list(rows), list(cols)
    nr, nc = len(rows), len(cols)
    sources = rows + cols
    codes = sampler.codes(sources)
    row_codes, col_codes = codes[:nr], codes[nr:]
    h, w, c = _image_shape(sampler)
    canvas = np.zeros((nr + 1, nc + 1, h, w, c), dtype=np.uint8)
    for idx, pixels in sampler.run(len(sources), lambda idx: codes[idx], sources, "style-mix sources"):
        for i, img in zip(idx, pixels):
            canvas[(i + 1, 0) if i < nr else (0, i - nr + 1)] = img
    start, stop = layers[0], layers[1] + 1

    def mixed(idx: list[int]) -> torch.Tensor:
        r = [i // nc for i in idx]
        k = [i % nc for i in idx]
        return mix_styles(row_codes[r], col_codes[k], start, stop)

    # A cell keeps its row image's noise: it is that image with some styles changed.
    for idx, pixels in sampler.run(nr * nc, mixed, [rows[i // nc] for i in range(nr * nc)], "style-mix cells"):
        for i, img in zip(idx, pixels):
            canvas[i // nc + 1, i % nc + 1] = img
    save_png(tile(canvas.reshape(-1, h, w, c), nc + 1), out / "style-mix.png")
    return (f"wrote {out / 'style-mix.png'}: {nr} row x {nc} column seeds, the columns' styles in layers "
            f"{layers[0]}-{layers[1]} ({_layer_resolutions(sampler.G, *layers)})")


def write_interpolation(sampler: Sampler, a: int, b: int, frames: int, out: Path) -> str:
    """frameNNNN.png from seed a (frame 0) to seed b (the last frame) and interpolation.png."""
    ends = sampler.codes([a, b])
    t = torch.linspace(0, 1, frames, device=sampler.device)          # 0 and 1 exactly at the ends

    def walk(idx: list[int]) -> torch.Tensor:
        if not sampler.styled:
            return torch.cat([_slerp(ends[:1], ends[1:], t[i:i + 1]) for i in idx])
        weights = t[idx].reshape(-1, *[1] * (ends.ndim - 1))
        return torch.lerp(ends[:1], ends[1:], weights)

    # Random noise: each frame takes the noise of its nearer end, so both ends are the seed images.
    noise = [a if 2 * i < frames - 1 else b for i in range(frames)]
    shown_at = set(np.linspace(0, frames - 1, min(frames, GRID_MAX)).round().astype(int).tolist())
    shown = []
    for idx, pixels in sampler.run(frames, walk, noise, "interpolate"):
        for i, img in zip(idx, pixels):
            save_png(img, out / f"frame{i:04d}.png")
            if i in shown_at:
                shown.append(img)
    save_png(tile(np.stack(shown), min(len(shown), STRIP_COLUMNS)), out / "interpolation.png")
    space = "linear in W" if sampler.styled else "slerp in z"
    return (f"wrote {frames} frames, frame0000.png ... frame{frames - 1:04d}.png, and interpolation.png "
            f"to {out}: seed {a} to seed {b}, {space}")


def _image_shape(sampler: Sampler) -> tuple[int, int, int]:
    cfg = sampler.G.cfg
    return cfg.resolution, cfg.resolution, cfg.channels
