"""SAGAN and k-GAN (ganrepro.models.baselines) against the properties the official TF code
implies. TF 1.x cannot run here, so there is no fixture: the module docstring gives the
file:line of every choice, and these tests check what those lines imply."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganrepro import models
from ganrepro.errors import ConfigError
from ganrepro.models.baselines import ImageSelfAttention, SoftmaxMerge
from ganrepro.settings import config, hparams, registry

SMALL = dict(resolution=16, channel_base=512, channel_max=32, z_dim=16, w_dim=16)


def small(name: str, **kw) -> models.Networks:
    hp = dict(SMALL, **kw)
    if name == "sagan":
        hp.setdefault("attention_res", 8)
        hp.setdefault("attention_dropout", 0.0)
    return models.build(name, **hp)


def z_of(G, n=3, seed=0):
    return torch.randn(n, *G.z_shape, generator=torch.Generator().manual_seed(seed))


# --- k-GAN's softmax merge (nw:767-801) ---------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 8])
def test_merge_weights_sum_to_one_at_every_pixel(k):
    torch.manual_seed(k)
    merge = SoftmaxMerge(6, k)
    x = torch.randn(3 * k, 6, 5, 7) * 10          # large scores: the softmax must still normalize
    a = merge.weights(x)
    assert a.shape == (3, k, 1, 5, 7)
    assert (a >= 0).all()
    torch.testing.assert_close(a.sum(dim=1), torch.ones(3, 1, 5, 7))


def test_merge_is_the_per_pixel_convex_combination_of_the_k_features_and_styles():
    torch.manual_seed(0)
    k = 4
    merge = SoftmaxMerge(6, k)
    x, ws, img = torch.randn(2 * k, 6, 8, 8), torch.randn(2 * k, 5, 3), torch.randn(2 * k, 3, 8, 8)
    out, ws_out, img_out, a = merge(x, ws, img)
    assert out.shape == (2, 6, 8, 8) and ws_out.shape == (2, 5, 3) and img_out.shape == (2, 3, 8, 8)
    # image 1, pixel (3, 5): sum over j of a_j * x_j, with j the rows 4..7 (b * k + j)
    want = sum(a[1, j, 0, 3, 5] * x[k + j, :, 3, 5] for j in range(k))
    torch.testing.assert_close(out[1, :, 3, 5], want)
    want_ws = sum(a[1, j].mean() * ws[k + j] for j in range(k))
    torch.testing.assert_close(ws_out[1], want_ws)
    # k identical generators: the merge gives that generator back, whatever the weights
    same = x[:1].repeat(k, 1, 1, 1)
    torch.testing.assert_close(merge(same, ws[:k], None)[0][0], x[0])


def test_merge_score_is_a_1x1_conv_to_one_channel_without_bias():
    merge = SoftmaxMerge(512, 8)
    assert [tuple(p.shape) for p in merge.parameters()] == [(1, 512, 1, 1)]     # nw:772, conv2d_layer


# --- SAGAN's image self-attention (transformer_layer, nw:647-756) -------------------------

def test_self_attention_keeps_the_shape_and_every_query_is_a_distribution_over_positions():
    torch.manual_seed(0)
    att = ImageSelfAttention(8, 4, pos_dim=16, dropout=0.0).eval()
    x = torch.randn(2, 8, 4, 4)
    y, state, maps = att(x, None, None, {"kept": 1}, False)
    assert y.shape == x.shape and state == {"kept": 1} and maps is None
    probs = att.probabilities(x.flatten(2).transpose(1, 2))
    assert probs.shape == (2, 1, 16, 16)                # every position to every position
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(2, 1, 16))


def test_self_attention_is_a_residual_without_a_zero_initialized_gain():
    """The TF layer is x + out(control) ("add" integration, no norm, nw:532-551) and out is an
    ordinary FC (N(0, 1) weights, bias 0): at initialization it is not the identity. With
    out's weight at zero (its bias starts at zero) it is exactly the identity."""
    torch.manual_seed(0)
    att = ImageSelfAttention(8, 4, pos_dim=16, dropout=0.0).eval()
    x = torch.randn(2, 8, 4, 4)
    assert torch.count_nonzero(att.out.bias) == 0
    assert (att(x)[0] - x).abs().max() > 1e-2
    with torch.no_grad():
        att.out.weight.zero_()
    assert torch.equal(att(x)[0], x)


def test_self_attention_is_global_every_position_reads_every_other():
    torch.manual_seed(0)
    att = ImageSelfAttention(8, 8, pos_dim=16, dropout=0.0).eval()
    x = torch.randn(1, 8, 8, 8)
    x2 = x.clone()
    x2[0, :, 7, 7] += 1.0                               # one corner pixel
    diff = (att(x2)[0] - att(x)[0]).abs().sum(dim=1)[0]
    assert (diff > 0).all()                             # a 3x3 conv would change a 3x3 patch only


def test_self_attention_dropout_acts_in_training_only():
    torch.manual_seed(0)
    att = ImageSelfAttention(8, 4, pos_dim=16, dropout=0.5)
    x = torch.randn(2, 8, 4, 4)
    att.eval()
    assert torch.equal(att(x)[0], att(x)[0])
    att.train()
    assert not torch.equal(att(x)[0], att(x)[0])


def test_self_attention_heads_must_divide_the_channels():
    with pytest.raises(ValueError, match="heads"):
        ImageSelfAttention(6, 4, pos_dim=8, heads=4)


# --- the generators -----------------------------------------------------------------------

def test_sagan_attends_in_both_convs_of_the_attention_res_block_only_and_has_no_style():
    G = models.build_generator("sagan", resolution=64)          # official: g_img2img 5 = 32 px
    where = [name for name, m in G.named_modules() if isinstance(m, ImageSelfAttention)]
    assert where == ["blocks.3.conv0.attention", "blocks.3.conv1.attention"]
    assert G.blocks[3].conv1.attention.grid.shape == (32 * 32, 512)   # pos_dim = w_dim
    assert not any("affine" in n for n, _ in G.named_parameters())      # style off: no modulation
    assert not any("conv_last" in n for n, _ in G.named_parameters())   # TF: no extraLayer (nw:1370)
    assert G.num_ws == 2 * 6 - 1 and hasattr(G, "stem") and not hasattr(G, "const")


def test_kgan_generators_share_every_weight_but_their_constant():
    counts = {k: sum(p.numel() for p in models.build_generator("kgan", **SMALL, components=k).parameters())
              for k in (2, 5)}
    assert counts[5] - counts[2] == 3 * 32 * 4 * 4      # three more 4x4 constants of 32 channels


def test_kgan_image_does_not_depend_on_the_order_of_the_generators():
    """Shared weights and a softmax sum over the generators: permuting the k latents
    together with the k constants gives the same image."""
    torch.manual_seed(0)
    G = small("kgan", components=4, merge_res=8).G.eval()
    z = z_of(G)
    perm = torch.tensor([2, 0, 3, 1])
    img = G(z, noise_mode="none")
    with torch.no_grad():
        G.const.copy_(G.const[perm])
    torch.testing.assert_close(G(z[:, perm], noise_mode="none"), img)
    assert not torch.allclose(G(z, noise_mode="none"), img)    # the constants do matter


@pytest.mark.parametrize("merge_res, index", [(8, 1), (16, 2), (32, 2), (256, 2)])
def test_kgan_merges_after_the_block_at_merge_res_or_the_last(merge_res, index):
    G = small("kgan", merge_res=merge_res).G
    assert G.merge_index == index
    seen = []
    G.merge.register_forward_hook(lambda mod, args, out: seen.append((args[0].shape, out[3])))
    G(z_of(G, 2))
    (shape, a), = seen
    assert shape[0] == 2 * 8 and shape[-1] == 4 * 2 ** index     # batch B * k before the merge
    torch.testing.assert_close(a.sum(dim=1), torch.ones_like(a[:, 0]))


@pytest.mark.parametrize("name, extra", [
    ("sagan", {}), ("sagan", {"architecture": "resnet", "attention_res": 16}),
    ("kgan", {}), ("kgan", {"architecture": "resnet", "merge_res": 8}),
])
def test_every_parameter_receives_a_gradient(name, extra):
    torch.manual_seed(0)
    net = small(name, **extra)
    img = net.G(z_of(net.G, 4), noise_mode="random")
    (net.D(img).square().mean() + img.square().mean()).backward()
    for pname, p in net.G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"G.{pname} gets no gradient"


@pytest.mark.parametrize("name", ["sagan", "kgan"])
def test_style_mixing_and_truncation_use_the_shared_interface(name):
    torch.manual_seed(0)
    G = small(name).G.eval()
    ws, _ = G.map(z_of(G), psi=0.0, update_avg=False)
    assert ws.shape[:2] == (3, G.num_ws) and len(G.ws_resolutions()) == G.num_ws
    img = G.synthesize(ws, noise_mode="none")
    torch.testing.assert_close(img[0], img[1])          # psi 0: every image is the average one


# --- parameter counts at the official widths (64 px: 512 channels at every resolution) ----

def test_parameter_counts_at_official_widths_equal_the_tf_variable_shapes():
    """Counts from the TF variable shapes (nw = training/networks.py), 64 px, w = 512 (SAGAN)
    or 64 (k-GAN), C = 512 at every resolution, 9 3x3 convs (4x4: 1, 8..64: 2 each), 5 ToRGBs.

    SAGAN: mapping 8 x (512*512 + 512) = 2,101,248; latent stem 512*8192 + 512 (bias)
    + 1 (noise strength) = 4,194,817; convs 9 x (3*3*512*512 + 512 + 1) = 21,238,281;
    ToRGBs 5 x (512*3 + 3) = 7,695; two attention layers at 32 px, each query, key, value,
    out (512*512 + 512) and the two position FCs (512*512 + 512): 2 x 1,575,936 = 3,151,872.
    Sum 30,693,913. TF also creates, unread with style off (nw:390, 400), an affine per conv
    and ToRGB: 14 x (512*512 + 512) = 3,677,184, so TF holds 34,371,097 variables.

    k-GAN: mapping 8 x (64*64 + 64) = 33,280; constants 8 x 512*16 = 65,536; convs 9 x
    (3*3*512*512 + 64*512 + 512 (affine) + 512 (bias) + 1) = 21,537,801; ToRGBs 5 x
    (512*3 + 64*512 + 512 + 3) = 174,095; merge score 512. Sum 21,811,224. TF also creates
    `ltnt_emb` [k - 1, 64] = 448 (nw:884), unread without use_pos: 21,811,672 in TF.
    """
    def count(name):
        with torch.device("meta"):
            return sum(p.numel() for p in models.build_generator(name, resolution=64).parameters())
    sagan = 2_101_248 + 4_194_817 + 21_238_281 + 7_695 + 3_151_872
    kgan = 33_280 + 65_536 + 21_537_801 + 174_095 + 512
    assert (count("sagan"), count("kgan")) == (sagan, kgan) == (30_693_913, 21_811_224)
    assert (sagan + 3_677_184, kgan + 448) == (34_371_097, 21_811_672)


# --- settings -----------------------------------------------------------------------------

def test_registry_rows_are_the_published_ones():
    published = config.read_yaml(Path(__file__).parents[1] / "config" / "published.yaml")["official_fid50k"]["models"]
    assert registry.MODELS["sagan"].published_as == "sagan" in published
    assert registry.MODELS["kgan"].published_as == "k-gan" in published
    assert registry.MODELS["kgan"].hparams is hparams.KGANConfig


@pytest.mark.parametrize("hp, message", [
    ({"sagan": {"attention_res": 32}}, "hparams.sagan.attention_res' (32) leaves no self-attention layer at "
                                        "dataset 'tiny' (16 px); allowed: a power of two from 4 to 16"),
    ({"sagan": {"attention_res": 12}}, "attention_res' must be a power of two >= 4 (got 12)"),
    ({"kgan": {"merge_res": 4}}, "merge_res' must be a power of two >= 8 (got 4)"),
    ({"kgan": {"components": 0}}, "components' must be >= 1 (got 0)"),
])
def test_bad_baseline_hparams_are_one_line_errors(hp, message):
    cfg = {"datasets": {"tiny": {"source": "shapes", "resolution": 16}}, "models": list(hp), "hparams": hp}
    with pytest.raises(ConfigError) as err:
        config.resolve(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
