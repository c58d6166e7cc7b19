"""Turning one source image (any mode, any size) into a square uint8 array.

Every source goes through `prepare_image`, so every source treats odd files the same
way: unreadable, truncated or non-image files raise BadImage (the caller skips and lists
them); transparency is composited on white; 16-bit images are scaled, not clipped;
EXIF orientation is applied; images smaller than the target are skipped unless upscaling
is allowed.

An image is opened (its header parsed) before it is decoded, and its declared size is
checked first: at most `MAX_IMAGE_PIXELS` pixels (Pillow's own default, so no usable
image is lost), and above `DENSE_PIXELS` at most `MAX_PIXELS_PER_BYTE` pixels per byte of
file, so a small file cannot make us decode a huge image (a 1 MB file stays under 17
megapixels; a real photo has a few pixels per byte). Only the formats of
`IMAGE_EXTENSIONS` are opened, so a file never reaches a decoder that runs a program
(Pillow's EPS plugin calls Ghostscript). Pillow's own bomb checks are a backstop and
give the same kind of reason.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganrepro.data.archive import Unusable

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "TIFF", "GIF")   # Pillow's openers for those (JPEG covers MPO)
WHITE = (255, 255, 255)

MAX_IMAGE_PIXELS = 89_478_485       # Pillow's default Image.MAX_IMAGE_PIXELS
DENSE_PIXELS = 1 << 24              # above this, a file must hold a byte per MAX_PIXELS_PER_BYTE pixels
MAX_PIXELS_PER_BYTE = 16


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


def check_declared_size(width: int, height: int, nbytes: int) -> None:
    """Raise BadImage if an image declaring width x height in a file of `nbytes` is too
    large to decode safely (see the module doc)."""
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS:
        raise BadImage(f"declares {width}x{height} = {pixels:,} pixels, more than the "
                       f"{MAX_IMAGE_PIXELS:,} allowed")
    if pixels > DENSE_PIXELS and pixels > nbytes * MAX_PIXELS_PER_BYTE:
        raise BadImage(f"declares {width}x{height} = {pixels:,} pixels in a file of {nbytes:,} bytes; "
                       f"an image above {DENSE_PIXELS:,} pixels may declare at most "
                       f"{MAX_PIXELS_PER_BYTE} pixels per byte of file (a decompression bomb)")


def decode(data: bytes) -> Image.Image:
    """Open and fully decode an image; raise BadImage if it is not one, is damaged or
    declares a size too large to decode safely."""
    try:
        with warnings.catch_warnings():
            # Our own check below is stricter than Pillow's warning; its error stays a backstop.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
            check_declared_size(*img.size, len(data))
            img.load()
    except UnidentifiedImageError:
        raise BadImage("not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as err:
        raise BadImage(f"declares more than the {MAX_IMAGE_PIXELS:,} pixels allowed ({err})") from None
    except ValueError as err:
        if "MAX_TEXT_CHUNK" in str(err) or "MAX_TEXT_MEMORY" in str(err):
            raise BadImage("a compressed text or colour-profile chunk unpacks to more than Pillow "
                           f"allows ({err}); a decompression bomb") from None
        raise BadImage(f"truncated or corrupt image ({err})") from None
    except (OSError, SyntaxError, EOFError) as err:
        raise BadImage(f"truncated or corrupt image ({err})") from None
    except MemoryError:
        raise BadImage("too large to decode in the memory available") from None
    try:
        return ImageOps.exif_transpose(img)
    except Exception as err:  # a malformed EXIF block must not stop the whole dataset
        raise BadImage(f"unreadable EXIF orientation ({err})") from None


def to_rgb(img: Image.Image, background=WHITE) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency composited on `background`."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.array(img, dtype=np.float64)     # in place from here: one float copy at a time
        if img.mode != "F":
            arr /= 257.0                  # 16-bit range 0..65535 -> 0..255
        np.rint(arr, out=arr)
        np.clip(arr, 0, 255, out=arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
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
    if isinstance(data, Unusable):      # an archive member that was not read, and why
        return name, None, data.reason
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
