"""Turning one source image (any mode, any size) into a square uint8 array.

Every source goes through `prepare_image`, so every source treats odd files the same
way: unreadable, truncated or non-image files raise BadImage (the caller skips and lists
them); transparency is composited on white; 16-bit images are scaled, not clipped;
EXIF orientation is applied; images smaller than the target are skipped unless upscaling
is allowed.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
WHITE = (255, 255, 255)


class BadImage(Exception):
    """A recoverable problem with one image: the caller skips it and records the reason."""


@dataclass(frozen=True)
class Geometry:
    resolution: int
    channels: int = 3
    ratio: float | None = None      # centre-crop to this height/width ratio first
    square: str = "center"          # "center" (crop) or "pad" (black borders)
    upscale: bool = False           # allow images smaller than the resolution

    def describe(self) -> dict:
        return {"resolution": self.resolution, "channels": self.channels,
                "aspect_crop": self.ratio, "square": self.square, "upscale": self.upscale,
                "transparency": "composited on white", "resample": "lanczos (antialiased)",
                "exif_orientation": "applied", "16-bit": "scaled to 8-bit"}


def decode(data: bytes) -> Image.Image:
    """Open and fully decode an image; raise BadImage if it is not one or is damaged."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
    except UnidentifiedImageError:
        raise BadImage("not an image file (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise BadImage(f"truncated or corrupt image ({err})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImage(f"too large to decode safely ({err})") from None
    try:
        return ImageOps.exif_transpose(img)
    except Exception as err:  # a malformed EXIF block must not stop the whole dataset
        raise BadImage(f"unreadable EXIF orientation ({err})") from None


def to_rgb(img: Image.Image, background=WHITE) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency composited on `background`."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode != "F":
            arr = arr / 257.0             # 16-bit range 0..65535 -> 0..255
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as err:
        raise BadImage(f"colour mode {img.mode} cannot be converted to RGB ({err})") from None


def crop_ratio(img: Image.Image, ratio: float) -> Image.Image:
    """Centre-crop to height/width = ratio."""
    w, h = img.size
    if h / w > ratio:
        new_h = max(1, round(w * ratio))
        top = (h - new_h) // 2
        return img.crop((0, top, w, top + new_h))
    new_w = max(1, round(h / ratio))
    left = (w - new_w) // 2
    return img.crop((left, 0, left + new_w, h))


def make_square(img: Image.Image, how: str) -> Image.Image:
    w, h = img.size
    if w == h:
        return img
    if how == "pad":
        side = max(w, h)
        canvas = Image.new(img.mode, (side, side), 0)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        return canvas
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def prepare_image(data: bytes, geometry: Geometry) -> np.ndarray:
    """Source bytes -> uint8 array [H, W, C] at the target geometry (or BadImage)."""
    img = to_rgb(decode(data))
    if geometry.ratio is not None:
        img = crop_ratio(img, geometry.ratio)
    img = make_square(img, geometry.square)
    side = img.size[0]
    if side < geometry.resolution and not geometry.upscale:
        raise BadImage(f"smaller than the target: {side}x{side} after cropping, "
                       f"need at least {geometry.resolution}x{geometry.resolution} "
                       "(set upscale: true to enlarge small images)")
    if side != geometry.resolution:
        img = img.resize((geometry.resolution,) * 2, Image.Resampling.LANCZOS)
    if geometry.channels == 1:
        img = img.convert("L")
    arr = np.asarray(img, dtype=np.uint8)
    return arr if arr.ndim == 3 else arr[:, :, None]


def _prepare_item(item: tuple[str, bytes, Geometry]):
    name, data, geometry = item
    try:
        return name, prepare_image(data, geometry), None
    except BadImage as err:
        return name, None, str(err)


def prepare_many(items, geometry: Geometry, workers: int = 1):
    """Yield (name, array or None, skip reason or None) for (name, bytes) items, in order.

    With workers > 1 the decoding runs in a process pool; the order stays the input
    order, so the result does not depend on the number of workers.
    """
    jobs = ((name, data, geometry) for name, data in items)
    if workers <= 1:
        yield from map(_prepare_item, jobs)
        return
    import itertools
    import multiprocessing

    # Work in bounded windows: Pool.imap would read the whole (possibly huge) archive
    # into its task queue ahead of the workers.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        while window := list(itertools.islice(jobs, workers * 32)):
            yield from pool.map(_prepare_item, window, chunksize=8)
