"""The training loader over packed images."""

from __future__ import annotations

import pytest
import torch

from conftest import prepare_shapes
from ganrepro.data.loader import ImageDataset
from ganrepro.errors import DataError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_shapes(tmp_path_factory.mktemp("ds") / "toy", 16, 10)


def test_items_are_uint8_chw(prepared):
    ds = ImageDataset(prepared)
    assert len(ds) == 10 and ds.resolution == 16 and ds.channels == 3
    item = ds[3]
    assert item.dtype == torch.uint8 and item.shape == (3, 16, 16)


def test_xflip_doubles_with_mirrored_copies(prepared):
    ds = ImageDataset(prepared, xflip=True)
    assert len(ds) == 20
    assert torch.equal(ds[13], torch.flip(ds[3], dims=[2]))
    assert not torch.equal(ds[13], ds[3])
    with pytest.raises(IndexError):
        ds[20]


def test_batched_fetch_equals_item_by_item(prepared):
    ds = ImageDataset(prepared, xflip=True)
    order = torch.randperm(20, generator=torch.Generator().manual_seed(1)).tolist()
    loader = torch.utils.data.DataLoader(ds, batch_size=7, sampler=order)
    seen = torch.cat(list(loader))
    expected = torch.stack([ds[int(i)] for i in order])
    assert torch.equal(seen, expected)


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="dataset.json does not exist: prepare the dataset first"):
        ImageDataset(tmp_path / "nothing")


def test_worker_copies_reopen_the_memory_map_instead_of_pickling_pixels(prepared):
    import pickle
    ds = ImageDataset(prepared, xflip=True)
    blob = pickle.dumps(ds)
    assert len(blob) < 4096                          # 10 images of 16x16x3 would be 7,680 bytes
    copy = pickle.loads(blob)
    assert len(copy) == len(ds) and torch.equal(copy[13], ds[13])
