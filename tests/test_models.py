"""The registered models: shapes, gradients, attention semantics, cost, truncation, snapshots."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from ganrepro import models
from ganrepro.settings import config, registry, schema
from ganrepro.settings.run import configured_hparams
from ganrepro.errors import ConfigError
from ganrepro.models.attention import BipartiteAttention
from ganrepro.models.layers import ModulatedConv2d
from ganrepro.models.stylegan2 import mix_styles

SMALL = {"channel_base": 512, "channel_max": 32}
NAMES = list(registry.MODELS)


def small(name: str, resolution: int = 16, **kw) -> models.Networks:
    hp = dict(SMALL, resolution=resolution, **kw)
    if name == "stylegan2":
        hp.update(z_dim=32, w_dim=32)
    if name.startswith("ganformer"):
        hp.setdefault("components", 4)
        hp.setdefault("attention_dropout", 0.0)
    return models.build(name, **hp)


def latents(G, n=2, seed=0):
    return torch.randn(n, *G.z_shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 256])
def test_output_shape_and_range(name, resolution):
    torch.manual_seed(0)
    net = small(name, resolution, channel_base=256 if resolution == 256 else 512)
    img = net.G(latents(net.G))
    assert img.shape == (2, 3, resolution, resolution)
    assert torch.isfinite(img).all() and img.abs().max() < 50 and img.std() > 1e-3
    score = net.D(img)
    assert score.shape == (2,) and torch.isfinite(score).all()


@pytest.mark.parametrize("name, extra", [
    ("stylegan2", {}), ("stylegan2", {"architecture": "resnet"}), ("gan", {}), ("dcgan", {}),
    ("ganformer-simplex", {}), ("ganformer-duplex", {}),
    ("ganformer-duplex", {"kmeans_iters": 2}), ("ganformer-duplex", {"duplex_keys": "centroids"}),
    ("ganformer-simplex", {"integration": "both", "mapping_ltnt2ltnt": False}),
    ("ganformer-simplex", {"d_attention": True, "integration": "mul"}),
    ("ganformer-simplex", {"integration": "add", "heads": 2}),
])
def test_every_parameter_receives_a_gradient(name, extra):
    torch.manual_seed(0)
    net = small(name, 16, **extra)
    img = net.G(latents(net.G, 4), noise_mode="random")
    (net.D(img).square().mean() + img.square().mean()).backward()
    for label, module in (("G", net.G), ("D", net.D)):
        for pname, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{label}.{pname} gets no gradient"


@pytest.mark.parametrize("name", ["ganformer-simplex", "ganformer-duplex"])
def test_attention_maps_are_distributions_over_latents(name):
    net = small(name, 16)
    img, maps = net.G(latents(net.G), return_attention=True)
    resolutions = [m.shape[-1] for m in maps]
    assert resolutions == [4, 8, 8, 16, 16]          # one map per attention layer (4..16)
    for m in maps:
        assert m.shape[1] == 4
        torch.testing.assert_close(m.sum(dim=1), torch.ones_like(m[:, 0]))
    assert net.G(latents(net.G), return_attention=False).shape == img.shape


def test_paper_duplex_latent_to_image_attention_sums_over_positions():
    layer = BipartiteAttention(8, 8, k=3, resolution=4, kind="duplex", duplex_keys="centroids")
    captured = {}
    original = layer._probs

    def spy(scores):
        probs = original(scores)
        captured.setdefault("first", probs)          # the first call is a(Y, X)
        return probs
    layer._probs = spy
    layer(torch.randn(2, 8, 4, 4), torch.randn(2, 3, 8), pos=torch.rand(3, 8))
    first = captured["first"]
    assert first.shape == (2, 1, 3, 16)              # [B, heads, k latents, n positions]
    torch.testing.assert_close(first.sum(-1), torch.ones(2, 1, 3))


def test_simplex_with_all_mass_on_one_latent_modulates_as_that_latents_value():
    torch.manual_seed(0)
    c, dim, k = 8, 8, 3
    layer = BipartiteAttention(c, dim, k, resolution=4, kind="simplex", integration="both",
                               latent_pos=False).eval()
    with torch.no_grad():
        # Every query is the all-ones vector; latent 1's key dwarfs the others.
        layer.q.weight.zero_()
        layer.q.bias.fill_(1.0)
        layer.q_pos.weight.zero_()
        layer.q_pos.bias.zero_()
        layer.k.weight.zero_()
        layer.k.bias.zero_()
        layer.k.weight[:, 0] = 1000.0 / layer.k.scale
    x = torch.randn(2, c, 4, 4)
    y = torch.randn(2, k, dim)
    y[:, :, 0] = torch.tensor([-1.0, 1.0, -1.0])      # only latent 1 gets a large positive key
    out, _, att = layer(x, y, return_attention=True)
    assert torch.allclose(att[:, 1], torch.ones_like(att[:, 1]))
    # Eq. 6 with a = v(y_1) at every position.
    a = layer.v(y[:, 1])[:, None, :].expand(2, 16, c)
    gamma, beta = layer.control(a).chunk(2, dim=-1)
    tokens = x.flatten(2).transpose(1, 2)
    centred = tokens - tokens.mean(-1, keepdim=True)
    omega = centred * torch.rsqrt(centred.square().mean(-1, keepdim=True) + 1e-8)
    expected = (omega * (1 + gamma) + beta).transpose(1, 2).reshape(2, c, 4, 4)
    torch.testing.assert_close(out, expected)


def test_paper_duplex_latents_are_refined_from_layer_to_layer():
    net = small("ganformer-duplex", 16, duplex_keys="centroids")
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((inp[1], inp[3].get("y"), out[1]["y"])))
             for m in net.G.modules() if isinstance(m, BipartiteAttention)]
    net.G(latents(net.G))
    for h in hooks:
        h.remove()
    assert len(seen) == 5
    assert seen[0][1] is None                        # the first layer starts from the mapped latents
    assert not torch.allclose(seen[0][0], seen[-1][2], atol=1e-3)
    assert seen[1][1] is seen[0][2]                  # layer 2 reads what layer 1 wrote


@pytest.mark.parametrize("name", ["ganformer-simplex", "ganformer-duplex"])
def test_each_layer_reads_its_own_local_latents_so_style_mixing_reaches_them(name):
    net = small(name, 16)
    G = net.G.eval()
    with torch.no_grad():
        ws, _ = G.map(latents(G, 2, seed=1))
        other, _ = G.map(latents(G, 2, seed=2))
        assert ws.shape == (2, G.num_ws, 5, 32)      # k = 4 local latents and the global one, per layer
        mixed = ws.clone()
        mixed[:, 3:, :-1] = other[:, 3:, :-1]        # later layers get other *local* latents only
        a = G.synthesize(ws, noise_mode="const")
        b = G.synthesize(mixed, noise_mode="const")
    assert (a - b).abs().max() > 1e-3


def _saved_bytes(layer, resolution, channels=16):
    """Bytes autograd keeps for backward in one attention forward: its activation memory."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t
    x = torch.randn(2, channels, resolution, resolution, requires_grad=True)
    y = torch.randn(2, 8, 16, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x, y, pos=torch.rand(8, 16))
    return total


@pytest.mark.parametrize("kind, keys", [("simplex", "kmeans"), ("duplex", "centroids"), ("duplex", "kmeans")])
def test_attention_memory_grows_linearly_in_positions(kind, keys):
    small_layer = BipartiteAttention(16, 16, 8, resolution=16, kind=kind, duplex_keys=keys)
    big_layer = BipartiteAttention(16, 16, 8, resolution=32, kind=kind, duplex_keys=keys)
    big_layer.load_state_dict(small_layer.state_dict())
    ratio = _saved_bytes(big_layer, 32) / _saved_bytes(small_layer, 16)   # n quadruples
    assert 3.5 < ratio < 4.5, f"memory grew {ratio:.1f}x for 4x positions (quadratic would be ~16x)"


@pytest.mark.parametrize("name", ["stylegan2", "ganformer-simplex", "ganformer-duplex", "gan"])
def test_truncation_to_zero_gives_the_average_latents_image(name):
    torch.manual_seed(0)
    net = small(name, 16)
    G = net.G.eval()
    with torch.no_grad():
        G.w_avg.normal_()                            # one average for every latent (official)
        a = G(latents(G, 2, seed=1), psi=0.0, noise_mode="const")
        b = G(latents(G, 2, seed=2), psi=0.0, noise_mode="const")
        ws, _ = G.map(latents(G, 2, seed=3))
        direct = G.synthesize(G.w_avg.expand_as(ws), noise_mode="const")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, direct)


def test_gan_baseline_has_the_official_parameter_count_at_official_widths():
    """The official --baseline GAN at 64 px (official widths, latent 512) has 34,111,512 G
    parameters, counted on the official PyTorch code (with its latent-stem NameError fixed,
    see tests/fixtures/official). Of those, the affine layers of its 15 convs and ToRGBs
    (w_dim + 1 per input channel) are built but never read under style=False; ganrepro
    builds the rest. Its D is StyleGAN2's (26,488,833)."""
    with torch.device("meta"):
        net = models.build("gan", resolution=64)
    convs = [m for m in net.G.modules() if isinstance(m, ModulatedConv2d)]
    assert len(convs) == 15 and not any(m.modulate or hasattr(m, "affine") for m in convs)
    never_read = sum((512 + 1) * m.weight.shape[1] for m in convs)
    assert never_read == 3_939_840
    assert models.count_parameters(net.G) == 30_171_672 == 34_111_512 - never_read
    assert models.count_parameters(net.D) == 26_488_833
    assert net.G.num_ws == 12 and net.G.blocks[0].stem.weight.shape == (512 * 16, 512)
    assert not hasattr(net.G.blocks[0], "const")


def test_gan_baseline_reads_w_in_its_stem_only():
    """Style off, latent stem on: the image depends on the first w slot (the stem's) alone,
    so style mixing from any later layer leaves it unchanged."""
    torch.manual_seed(0)
    G = small("gan", 16).G.eval()
    with torch.no_grad():
        ws, _ = G.map(latents(G, 2, seed=1))
        other, _ = G.map(latents(G, 2, seed=2))
        img = G.synthesize(ws, noise_mode="const")
        later = G.synthesize(mix_styles(ws, other, 1), noise_mode="const")
        first = G.synthesize(mix_styles(ws, other, 0, 1), noise_mode="const")
    assert torch.equal(img, later)
    assert (img - first).abs().max() > 0.1


def test_w_avg_is_tracked_in_training_only():
    net = small("stylegan2", 8)
    net.G.train()(latents(net.G))
    assert net.G.w_avg.abs().sum() > 0
    before = net.G.w_avg.clone()
    net.G.eval()(latents(net.G, seed=5))
    assert torch.equal(before, net.G.w_avg)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        net = small(name, 16)
        torch.manual_seed(7)
        outs.append(net.G(latents(net.G)))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_round_trip_is_bitwise_identical(name, tmp_path):
    torch.manual_seed(0)
    net = small(name, 16)
    G = net.G.eval()
    z = latents(G, 3)
    with torch.no_grad():
        before = G(z, noise_mode="const")
    path = tmp_path / "snapshot-000004.pt"
    models.save_snapshot(path, G, name, net.hparams, kimg=4, config_hash="abc")
    loaded, meta = models.load_snapshot(path)
    with torch.no_grad():
        after = loaded(z, noise_mode="const")
    assert torch.equal(before, after)
    assert meta["model"] == name and meta["kimg"] == 4 and meta["hparams"] == net.hparams
    assert not list(tmp_path.glob(".*tmp*"))


def test_snapshot_holds_no_code(tmp_path):
    net = small("stylegan2", 8)
    models.save_snapshot(tmp_path / "s.pt", net.G, "stylegan2", net.hparams, kimg=0)
    payload = torch.load(tmp_path / "s.pt", weights_only=True)   # refuses pickled objects
    assert set(payload) >= {"model", "hparams", "state_dict", "kimg", "ganrepro_version"}


def test_bad_snapshot_is_a_clear_error(tmp_path):
    bad = tmp_path / "snapshot-000008.pt"
    bad.write_bytes(b"not a snapshot")
    with pytest.raises(ConfigError, match="is not a readable ganrepro snapshot"):
        models.load_snapshot(bad)


def _pickled_module(path):
    torch.save(nn.Linear(2, 2), path)                              # a whole module: code, not tensors


def _foreign_pickle(path):
    with open(path, "wb") as f:
        pickle.dump({"G_ema": {1, 2}}, f)                            # like an official .pkl: a bare pickle


def _damaged(path):
    net = small("stylegan2", 8)
    models.save_snapshot(path, net.G, "stylegan2", net.hparams, kimg=0)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("mapping")}
    torch.save(payload, path)


@pytest.mark.parametrize("make, message", [
    (_pickled_module, "holds pickled Python objects .*Unsupported global: GLOBAL torch.nn.modules.linear.Linear"),
    (_foreign_pickle, "is not a ganrepro snapshot but a plain pickle"),
    (_damaged, r"is a damaged ganrepro snapshot \(RuntimeError: Error\(s\) in loading state_dict .*Missing key"),
])
def test_foreign_or_damaged_snapshot_is_a_one_line_error(make, message, tmp_path, recwarn):
    path = tmp_path / "snapshot-000008.pt"
    make(path)
    with pytest.raises(ConfigError, match=message) as err:
        models.load_snapshot(path)
    text = str(err.value)
    assert text.startswith(str(path)) and "\n" not in text and "\x1b" not in text and len(text) < 400
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]


def test_snapshot_of_the_older_networks_is_refused_with_a_reason(tmp_path):
    old = tmp_path / "snapshot-000004.pt"
    torch.save({"format": "ganrepro-snapshot-1", "model": "stylegan2", "hparams": {}, "state_dict": {}}, old)
    with pytest.raises(ConfigError, match="older ganrepro whose networks differ"):
        models.load_snapshot(old)


@pytest.mark.parametrize("call, message", [
    (lambda: models.build("stylegan3"), "unknown model 'stylegan3'; allowed: stylegan2, ganformer-simplex, ganformer-duplex, gan, dcgan"),
    (lambda: models.build("stylegan2", heads=2), "unknown hyper-parameter(s) for stylegan2: heads; allowed: resolution"),
    (lambda: models.build("ganformer-duplex", integration="concat"), "ganformer-duplex.integration is 'concat'; allowed: add, mul, both"),
    (lambda: models.build("gan", resolution=48), "resolution must be a power of two >= 8 (got 48)"),
    (lambda: models.build("stylegan2", z_dim="big"), "stylegan2.z_dim must be int (got 'big')"),
    (lambda: models.build("ganformer-simplex", heads=3, **SMALL), "attention heads (3) must divide the channels"),
])
def test_bad_model_requests_are_clear_errors(call, message):
    with pytest.raises(ConfigError) as info:
        call()
    assert message in str(info.value)


def test_registry_matches_config_schema():
    assert set(registry.MODELS) == set(schema.model_names())


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_and_channels_last(name):
    torch.manual_seed(0)
    net = small(name, 16)
    G = net.G.to(memory_format=torch.channels_last)
    D = net.D.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        img = G(latents(G, 4))
        score = D(img.contiguous(memory_format=torch.channels_last))
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img.float()).all()
    score.float().sum().backward()
    assert all(p.grad is not None for p in G.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["stylegan2", "ganformer-duplex"])
def test_torch_compile_matches_eager(name):
    torch.manual_seed(0)
    net = small(name, 8)
    G = net.G.eval()
    z = latents(G, 2)
    with torch.no_grad():
        eager = G(z, noise_mode="const")
        compiled = torch.compile(G)(z, noise_mode="const")
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_params_command_counts_what_the_config_builds():
    from conftest import REPO, ganrepro
    proc = ganrepro("models", "params", "--resolution", "64", cwd=REPO)
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    cfg = config.load(REPO / "config" / "config.yaml")
    for name in NAMES:
        net = models.build(name, **configured_hparams(cfg, name, 64))
        assert rows[name][1] == "64"
        assert rows[name][2] == f"{models.count_parameters(net.G):,}"
        assert rows[name][3] == f"{models.count_parameters(net.D):,}"


def test_bench_models_reports_every_model(tmp_path):
    from conftest import REPO, ganrepro
    proc = ganrepro("bench", "models", "--resolution", "8", "--steps", "1", "--batch-size", "2", cwd=REPO)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("device: ")
    rows = [line.split() for line in lines[3:]]
    assert [r[0] for r in rows] == NAMES
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows)
    assert rows[1][4].endswith("%") and rows[0][4] == "-"
