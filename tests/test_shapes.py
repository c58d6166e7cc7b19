"""The procedural `shapes` dataset: deterministic, seeded, any power-of-two size."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest import ganrepro
from ganrepro import data
from ganrepro.settings import config
from ganrepro.data import shapes
from ganrepro.data.store import open_images, read_manifest


def spec(**kw):
    return config.resolve_dataset("toy", {"source": "shapes", "resolution": 32, "num_images": 24, **kw})


def test_same_seed_gives_byte_identical_datasets(tmp_path):
    for run_dir in ("a", "b"):
        ganrepro("data", "prepare", "shapes", "--set", "resolution=32", "--set", "num_images=40",
                 "--out", str(tmp_path / run_dir), cwd=tmp_path)
    a, b = (tmp_path / d / "images.npy" for d in ("a", "b"))
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert (tmp_path / "a" / "dataset.json").read_text() == (tmp_path / "b" / "dataset.json").read_text()


def test_different_seeds_differ_and_images_are_not_blank(tmp_path):
    a = data.prepare("toy", spec(seed=0), tmp_path / "a")
    b = data.prepare("toy", spec(seed=1), tmp_path / "b")
    assert a.images_sha256 != b.images_sha256
    images = np.asarray(open_images(tmp_path / "a"))
    assert images.std(axis=(1, 2, 3)).min() > 5       # every scene has visible structure
    assert len({hashlib.sha256(im.tobytes()).digest() for im in images}) == len(images)


def test_image_i_does_not_depend_on_how_many_are_drawn(tmp_path):
    data.prepare("toy", spec(num_images=10), tmp_path / "small")
    data.prepare("toy", spec(num_images=30), tmp_path / "large")
    np.testing.assert_array_equal(open_images(tmp_path / "small"), open_images(tmp_path / "large")[:10])


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256])
def test_every_power_of_two_resolution(resolution):
    img = shapes.render(3, resolution)
    assert img.shape == (resolution, resolution, 3) and img.dtype == np.uint8


def test_object_count_is_respected_and_matters():
    # Scenes with 4 objects cover more of the background than scenes with 1.
    def covered(n):
        fractions = []
        for i in range(40):
            rng_img = shapes.render(i, 64, min_objects=n, max_objects=n, background="plain")
            bg = rng_img[0, 0].astype(int)    # a top corner is background (objects sit lower)
            fractions.append((np.abs(rng_img.astype(int) - bg).sum(-1) > 30).mean())
        return np.mean(fractions)
    assert covered(4) > 2 * covered(1)


def test_manifest_describes_the_dataset(tmp_path):
    data.prepare("toy", spec(channels=1, max_images=7), tmp_path / "g")
    m = read_manifest(tmp_path / "g")
    images = open_images(tmp_path / "g")
    assert images.shape == (7, 1, 32, 32)
    assert (m.name, m.source, m.count, m.resolution, m.channels) == ("toy", "shapes", 7, 32, 1)
    assert m.images_sha256 == hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
    assert m.spec["seed"] == 0 and m.preprocessing["objects"] == [1, 4]
    assert m.ganrepro_version and m.skipped == []
