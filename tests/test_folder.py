"""Bring-your-own folders, and every kind of odd image file a real folder holds."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import ganrepro, png_bytes
from ganrepro import data
from ganrepro.settings import config
from ganrepro.data.images import BadImage, Geometry, prepare_image
from ganrepro.data.store import open_images, read_manifest
from ganrepro.errors import DataError

G64 = Geometry(64)


def rgb(size=(80, 80), colour=(200, 40, 40)) -> Image.Image:
    return Image.new("RGB", size, colour)


# ---------------------------------------------------------------------------- one image

def test_truncated_png_is_bad():
    data_ = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 80, 3), np.uint8)))
    with pytest.raises(BadImage, match="truncated or corrupt"):
        prepare_image(data_[: len(data_) // 2], G64)


def test_corrupt_jpeg_is_bad():
    jpeg = bytearray(png_bytes(rgb(), "JPEG"))
    jpeg[200:] = b"\x00" * (len(jpeg) - 200)
    del jpeg[400:]
    with pytest.raises(BadImage):
        prepare_image(bytes(jpeg), G64)


def test_text_with_image_extension_is_bad():
    with pytest.raises(BadImage, match="not an image file"):
        prepare_image(b"this is a README, not a picture\n", G64)


def test_grayscale_becomes_rgb():
    out = prepare_image(png_bytes(Image.new("L", (64, 64), 77)), G64)
    assert out.shape == (64, 64, 3) and (out == 77).all()


def test_palette_with_transparency_is_composited_on_white():
    img = Image.new("P", (64, 64), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (0, 0, 32, 64))
    img.info["transparency"] = 0          # palette index 0 (red) is transparent
    out = prepare_image(png_bytes(img, transparency=0), G64)
    assert tuple(out[10, 10]) == (0, 0, 255)          # opaque blue half kept
    assert tuple(out[10, 50]) == (255, 255, 255)      # transparent half is white


def test_rgba_half_transparent_is_blended_with_white():
    out = prepare_image(png_bytes(Image.new("RGBA", (64, 64), (0, 0, 0, 128))), G64)
    assert abs(int(out[0, 0, 0]) - 127) <= 1


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.full((64, 64), 32768, np.uint16)     # mid-grey in 16 bits
    img = Image.fromarray(arr)
    assert img.mode.startswith("I")
    out = prepare_image(png_bytes(img), G64)
    assert abs(int(out[0, 0, 0]) - 128) <= 1


def test_cmyk_jpeg_is_converted():
    img = Image.new("CMYK", (64, 64), (0, 255, 255, 0))   # pure red in CMYK
    out = prepare_image(png_bytes(img, "JPEG", quality=95), G64)
    r, g, b = (int(v) for v in out[32, 32])
    assert r > 200 and g < 60 and b < 60


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (120, 80), (255, 255, 255))
    img.paste((0, 0, 0), (0, 0, 60, 80))             # left half black as stored
    exif = Image.Exif()
    exif[0x0112] = 6                                 # "rotate 90 CW to display"
    out = prepare_image(png_bytes(img, "JPEG", exif=exif, quality=95), Geometry(64, square="pad"))
    # Displayed upright, the stored left half becomes the top half.
    assert out[20, 32].mean() < 40 and out[44, 32].mean() > 215


def test_smaller_than_target_is_skipped_unless_upscale():
    small = png_bytes(rgb((40, 40)))
    with pytest.raises(BadImage, match="smaller than the target: 40x40 .* need at least 64x64"):
        prepare_image(small, G64)
    assert prepare_image(small, Geometry(64, upscale=True)).shape == (64, 64, 3)


def test_crop_and_pad_and_ratio():
    img = Image.new("RGB", (200, 100), (255, 255, 255))
    centre = prepare_image(png_bytes(img), Geometry(64, square="center"))
    padded = prepare_image(png_bytes(img), Geometry(64, square="pad"))
    assert (centre == 255).all()
    assert (padded[0] == 0).all() and (padded[32] == 255).all()   # black bands above and below
    # ratio 0.5 keeps the whole 200x100 (h/w = 0.5) before padding
    ratio = prepare_image(png_bytes(img), Geometry(64, ratio=0.5, square="pad"))
    np.testing.assert_array_equal(ratio, padded)


# ---------------------------------------------------------------------------- a whole folder

@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    good = [("a.png", png_bytes(rgb())), ("sub/b.jpg", png_bytes(rgb(colour=(10, 200, 10)), "JPEG")),
            ("c.PNG", png_bytes(Image.new("LA", (90, 70), (100, 255))))]
    bad = [("broken.png", png_bytes(rgb())[:60]), ("notes.jpg", b"plain text"),
           ("tiny.png", png_bytes(rgb((16, 16))))]
    for name, blob in good + bad:
        (root / name).write_bytes(blob)
    (root / "readme.txt").write_text("ignored: not an image extension")
    return root


def test_folder_skips_bad_files_and_lists_them(messy_folder, tmp_path, caplog):
    spec = config.resolve_dataset("mine", {"source": "folder", "path": str(messy_folder)})
    m = data.prepare("mine", spec, tmp_path / "out")
    assert m.count == 3
    reasons = {s.file: s.reason for s in m.skipped}
    assert set(reasons) == {"broken.png", "notes.jpg", "tiny.png"}
    assert "truncated or corrupt" in reasons["broken.png"]
    assert "not an image file" in reasons["notes.jpg"]
    assert "smaller than the target" in reasons["tiny.png"]
    assert "skipped 3 of 6 source images" in caplog.text
    assert read_manifest(tmp_path / "out").skipped[0].file == "broken.png"
    assert open_images(tmp_path / "out").shape == (3, 3, 64, 64)
    assert len(m.source_sha256) == 64


def test_worker_processes_do_not_change_the_result(messy_folder, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(140):    # enough images to span several windows of the process pool
        noise = rng.integers(0, 255, (70 + i % 50, 90, 3), np.uint8)
        (messy_folder / f"noise{i:02d}.png").write_bytes(png_bytes(Image.fromarray(noise)))
    spec = config.resolve_dataset("mine", {"source": "folder", "path": str(messy_folder)})
    one = data.prepare("mine", spec, tmp_path / "one", workers=1)
    two = data.prepare("mine", spec, tmp_path / "two", workers=2)
    assert one.count == two.count == 143
    assert one.images_sha256 == two.images_sha256
    assert [s.file for s in one.skipped] == [s.file for s in two.skipped] == ["broken.png", "notes.jpg", "tiny.png"]


def test_folder_as_zip_matches_folder(messy_folder, tmp_path):
    zpath = tmp_path / "photos.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(messy_folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(messy_folder).as_posix())
    a = data.prepare("a", config.resolve_dataset("a", {"source": "folder", "path": str(messy_folder)}), tmp_path / "a")
    b = data.prepare("b", config.resolve_dataset("b", {"source": "folder", "path": str(zpath)}), tmp_path / "b")
    assert a.images_sha256 == b.images_sha256 and a.count == b.count == 3


def test_empty_folder_is_fatal(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    spec = config.resolve_dataset("e", {"source": "folder", "path": str(tmp_path / "empty")})
    with pytest.raises(DataError, match="empty contains no images"):
        data.prepare("e", spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_folder_of_only_bad_images_is_fatal(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "x.png").write_bytes(b"nope")
    spec = config.resolve_dataset("b", {"source": "folder", "path": str(root)})
    with pytest.raises(DataError, match=r"none of the 1 images in .*bad could be used \(x.png: not an image file"):
        data.prepare("b", spec, tmp_path / "out")


def test_missing_path_is_fatal_and_named(tmp_path):
    spec = config.resolve_dataset("m", {"source": "folder", "path": str(tmp_path / "nowhere")})
    with pytest.raises(DataError, match=r"datasets.m.path: .*nowhere does not exist"):
        data.prepare("m", spec, tmp_path / "out")


def test_cli_fatal_error_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = ganrepro("data", "prepare", "folder", "--set", f"path={tmp_path / 'empty'}",
                    "--out", str(tmp_path / "out"), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "contains no images" in proc.stderr
