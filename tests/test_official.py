"""ganrepro's default networks compute the official code's functions.

The fixture (tests/fixtures/official/official.pt, made by build_fixtures.py in that folder
from the official GANformer PyTorch code) holds official state_dicts under their own
names, with every parameter that starts at 0 or 1 randomized, and what the official
networks output in eval mode. Converted with ganrepro.models.official, our registry
models must give the same mapped latents, images, attention maps and logits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganrepro import models
from ganrepro.models import official

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "official.pt"
ATOL = 1e-4
GENERATORS = [f"{name}-{res}" for name in ("stylegan2", "ganformer-simplex", "ganformer-duplex") for res in (16, 32)]


@pytest.fixture(scope="module")
def fixtures():
    torch.set_num_threads(1)
    return torch.load(FIXTURE, weights_only=True)


def converted_generator(record: dict):
    G = models.build_generator(record["name"], **record["hparams"])
    G.load_state_dict(official.generator(record["state_dict"]))      # strict: every tensor accounted for
    return G.eval()


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


@pytest.mark.parametrize("key", GENERATORS)
def test_converted_generator_gives_the_official_outputs(fixtures, key):
    record = fixtures[key]
    G = converted_generator(record)
    stylegan = record["name"] == "stylegan2"
    z = record["z"][:, 0] if stylegan else record["z"]           # the official baseline has k = 1
    with torch.no_grad():
        ws, _ = G.map(z)
        img, maps = G.synthesize(ws, noise_mode="const", return_attention=True)
        truncated = G(z, psi=0.6, noise_mode="const")
    w = ws[:, 0]                                                   # every layer gets the same w
    assert max_error(w, record["w"][:, 0] if stylegan else record["w"]) < ATOL
    assert max_error(img, record["img"]) < ATOL
    assert max_error(truncated, record["img_psi0.6"]) < ATOL
    assert len(maps) == len(record["attention"])
    for ours, theirs in zip(maps, record["attention"]):
        assert max_error(ours[:theirs.shape[0]], theirs) < ATOL
    assert img.abs().mean() > 0.1                                  # a real image, not a vanishing one


@pytest.mark.parametrize("resolution", [16, 32])
def test_converted_discriminator_gives_the_official_logits(fixtures, resolution):
    record = fixtures[f"discriminator-{resolution}"]
    for name in ("stylegan2", "ganformer-simplex", "ganformer-duplex"):
        D = models.build(name, resolution=resolution, channel_base=256, channel_max=32).D.eval()
        D.load_state_dict(official.discriminator(record["state_dict"], resolution))
        with torch.no_grad():
            assert max_error(D(record["img"]), record["logits"]) < ATOL


def test_every_official_tensor_is_used_or_known_dead(fixtures):
    record = fixtures["ganformer-duplex-16"]
    converted = official.generator(record["state_dict"])
    dropped = {k for k in record["state_dict"] if k.endswith((".to_keys.weight", ".to_keys.bias",
                                                             ".to_pos_map.weight", ".to_pos_map.bias"))
               and ".transformer." in k}
    assert dropped and len(converted) == len(record["state_dict"]) - len(dropped)


def test_the_fixture_would_notice_a_missing_piece(fixtures):
    """A conversion that loses one official tensor (here the first noise strength) must
    fail the comparison: the fixture's randomized values are large enough to show."""
    record = fixtures["ganformer-simplex-16"]
    G = converted_generator(record)
    with torch.no_grad():
        G.blocks[0].conv1.noise.strength.zero_()
        img = G.synthesize(G.map(record["z"])[0], noise_mode="const")
    assert max_error(img, record["img"]) > 100 * ATOL
