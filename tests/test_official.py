"""ganrepro's default networks compute the official code's functions.

The fixture (tests/fixtures/official/official.pt, made by build_fixtures.py in that folder
from the official GANformer PyTorch code) holds official state_dicts under their own
names, with every parameter that starts at 0 or 1 randomized, and what the official
networks output in eval mode. Converted with ganrepro.checkpoints.official, our registry
models must give the same mapped latents, images, attention maps and logits.

The GAN baseline's records (`gan-*`, `step-gan`) come from the official `--baseline GAN`,
which the published code cannot build: the fixture script imported it from a scratch copy
with one token fixed, and the records say which (`official_patch`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest
import torch

from ganrepro import models
from ganrepro.checkpoints import official
from ganrepro.settings.registry import has_attention, resolve_hparams

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "official.pt"
ATOL = 1e-4
GENERATORS = [f"{name}-{res}" for name in ("stylegan2", "ganformer-simplex", "ganformer-duplex", "gan")
              for res in (16, 32)]
SINGLE_LATENT = ("stylegan2", "gan")            # official k = 1: z and w carry one component
GENERATORS += ["ganformer-duplex-clevr-16",            # the official CLEVR preset: k = 8, no global style
               "ganformer-simplex-2heads-16", "ganformer-duplex-2heads-16"]   # --num-heads 2


def unpack(x):
    """The inverse of build_fixtures.pack: tables of tensors back from one flat tensor each."""
    if isinstance(x, dict) and "packed_data" in x:
        out, offset = {}, 0
        for name, shape in zip(x["packed_names"], x["packed_shapes"]):
            n = math.prod(shape)
            out[name] = x["packed_data"][offset:offset + n].reshape(shape).clone()
            offset += n
        return out
    if isinstance(x, dict):
        return {k: unpack(v) for k, v in x.items()}
    if isinstance(x, list):
        return [unpack(v) for v in x]
    return x


@pytest.fixture(scope="module")
def fixtures():
    # One thread, as the fixtures were made; restored after, so that later tests (which
    # compare in-process runs with subprocesses bitwise) run at the usual thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield unpack(torch.load(FIXTURE, weights_only=True))
    torch.set_num_threads(threads)


def styled(name: str, hparams: dict) -> bool:
    """Whether model `name` at `hparams` modulates its convs (False: the official `style=False`)."""
    return getattr(resolve_hparams(name, **hparams), "style", True)


def converted_generator(record: dict):
    G = models.build_generator(record["name"], **record["hparams"])
    state_dict = official.generator(record["state_dict"], style=styled(record["name"], record["hparams"]))
    G.load_state_dict(state_dict)                      # strict: every tensor accounted for
    return G.eval()


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


@pytest.mark.parametrize("key", GENERATORS)
def test_converted_generator_gives_the_official_outputs(fixtures, key):
    record = fixtures[key]
    G = converted_generator(record)
    stylegan = record["name"] in SINGLE_LATENT
    z = record["z"][:, 0] if stylegan else record["z"]           # the official baselines have k = 1
    with torch.no_grad():
        ws, _ = G.map(z)
        img, maps = G.synthesize(ws, noise_mode="const", return_attention=True)
        truncated = G(z, psi=0.6, noise_mode="const")
    w = ws[:, 0]                                                   # every layer gets the same w
    assert max_error(w, record["w"][:, 0] if stylegan else record["w"]) < ATOL
    # Images are compared at 1e-4 of their peak value where that exceeds 1: the randomized
    # GANformers reach values of ~10 and float32 round-off grows with them (observed <= 6e-5).
    assert max_error(img, record["img"]) < ATOL * max(1.0, record["img"].abs().max().item())
    assert max_error(truncated, record["img_psi0.6"]) < ATOL * max(1.0, record["img_psi0.6"].abs().max().item())
    assert len(maps) == len(record["attention"])
    for ours, theirs in zip(maps, record["attention"]):
        assert max_error(ours[:theirs.shape[0]], theirs) < ATOL
    assert img.abs().mean() > 0.1                                  # a real image, not a vanishing one


@pytest.mark.parametrize("resolution", [16, 32])
def test_converted_discriminator_gives_the_official_logits(fixtures, resolution):
    record = fixtures[f"discriminator-{resolution}"]
    for name in ("stylegan2", "ganformer-simplex", "ganformer-duplex", "gan"):
        D = models.build(name, **record["hparams"]).D.eval()
        D.load_state_dict(official.discriminator(record["state_dict"], resolution))
        with torch.no_grad():
            assert max_error(D(record["img"]), record["logits"]) < ATOL


def test_the_gan_baseline_discriminator_gives_its_presets_logits(fixtures):
    """The official --baseline GAN's own D (its preset, its randomized weights, its G's images)."""
    record = fixtures["discriminator-gan-16"]
    D = models.build("gan", **record["hparams"]).D.eval()
    D.load_state_dict(official.discriminator(record["state_dict"], 16))
    with torch.no_grad():
        assert max_error(D(record["img"]), record["logits"]) < ATOL


def test_the_gan_records_name_the_one_fix_of_the_official_code(fixtures):
    """The official latent stem raises NameError as published; the records say what the
    fixture script changed in its scratch copy, and it is that one token."""
    import json
    for key in ("gan-16", "gan-32", "step-gan"):
        assert fixtures[key]["official_patch"] == ("training/networks.py:1100 'layer_kwargs.get(act, \"lrelu\")' -> "
                                                   "'layer_kwargs.get(\"act\", \"lrelu\")' (the published line "
                                                   "raises NameError)")
        kwargs = json.loads(fixtures[key]["official_kwargs"])["synthesis_kwargs"]
        assert kwargs["style"] is False and kwargs["latent_stem"] is True


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


def test_the_gan_fixture_would_notice_a_missing_stem_bias(fixtures):
    record = fixtures["gan-16"]
    G = converted_generator(record)
    with torch.no_grad():
        G.blocks[0].stem.bias.zero_()
        img = G.synthesize(G.map(record["z"][:, 0])[0], noise_mode="const")
    assert max_error(img, record["img"]) > 100 * ATOL


# -- one training step -------------------------------------------------------------------
STEPS = ["step-stylegan2", "step-ganformer-simplex", "step-ganformer-duplex", "step-gan"]
# Below this a first-step gradient is round-off (see the test). In these fixtures the
# gradients that are 0 in exact arithmetic (attention key biases) reach 1.8e-7, and every
# other gradient tensor's largest element exceeds 1e-5.
ZERO_GRAD = 3e-7


@pytest.fixture(scope="module")
def step_dataset(tmp_path_factory):
    from ganrepro import data
    from ganrepro.settings import config
    out = tmp_path_factory.mktemp("data") / "toy16"
    data.prepare("toy16", config.resolve_dataset("toy16", {"source": "shapes", "resolution": 16, "num_images": 8}), out)
    return out


def _compare(ours: dict, theirs: dict, what: str, relative: bool = False) -> float:
    """The largest difference over the tensors of `theirs`. relative=True (for gradients,
    which are small) divides by each tensor's largest official magnitude, over the elements
    whose official value exceeds ZERO_GRAD; where it does not (a gradient that is 0 in exact
    arithmetic), ours must be round-off too, below 10 * ZERO_GRAD."""
    assert set(theirs) <= set(ours), f"{what}: {sorted(set(theirs) - set(ours))[:3]} missing"
    worst = 0.0
    for key, value in theirs.items():
        mine = ours[key].detach().float()
        assert mine.shape == value.shape, (key, mine.shape, value.shape)
        if not relative:
            worst = max(worst, max_error(mine, value))
            continue
        live = value.abs() > ZERO_GRAD
        assert (mine[~live].abs() < 10 * ZERO_GRAD).all(), f"{what} {key}: a zero gradient is not zero here"
        if live.any():
            worst = max(worst, ((mine - value)[live].abs().max() / value.abs().max()).item())
    return worst


@pytest.mark.parametrize("key", STEPS)
def test_one_training_step_updates_the_weights_as_the_official_step(fixtures, step_dataset, tmp_path, key):
    """G phase, D phase and lazy R1 of the official loop at batch 0, through our Trainer.step:
    same updated weights, w_avg and Adam moments. The fixture's step had no attention
    dropout and constant noise inputs; its latents and style-mixing choices are fed to ours."""
    from functools import partial

    from ganrepro.settings import config
    from ganrepro.training.distributed import Context
    from ganrepro.training.loop import Trainer

    record = fixtures[key]
    name = record["name"]
    hparams = {k: v for k, v in record["hparams"].items() if k != "resolution"}
    if "attention_dropout" in dataclasses.asdict(resolve_hparams(name)):
        hparams["attention_dropout"] = 0.0
    cfg = config.resolve({
        "datasets": {"toy16": {"source": "shapes", "resolution": 16, "num_images": 8}},
        "kimg": [1], "hparams": {name: hparams},
        "train": {"batch_size": 4, "num_workers": 0, "r1_gamma": 10, "r1_interval": 16, "pl_weight": 0,
                  "style_mixing": 0.9, "precision": "fp32", "device": "cpu", "grid": 2}})
    trainer = Trainer(cfg, step_dataset, name, tmp_path / "run", Context())
    style = styled(name, hparams)
    trainer.G.load_state_dict(official.generator(record["before"]["G"], style=style))
    trainer.D.load_state_dict(official.discriminator(record["before"]["D"], record["resolution"]))
    trainer.synthesize = partial(trainer.G.synthesize, noise_mode="const")
    stylegan = name in SINGLE_LATENT
    draws = iter([(d["z"][:, 0] if stylegan else d["z"], d["z2"][:, 0] if stylegan else d["z2"], d["cut"])
                  for d in record["draws"]])
    trainer._draws = lambda n: next(draws)
    acc = {k: torch.zeros([]) for k in ("loss_G", "loss_D", "r1", "r1_n", "pl", "pl_n")}
    trainer.step(record["reals"], record["reals"].shape[0], acc)
    assert next(draws, None) is None                               # a G pass in each of the two phases
    assert acc["r1_n"] == 1                                        # the lazy R1 ran at step 0

    res = record["resolution"]
    # Adam's first step is lr * g / (|g| + eps): where the true gradient is 0 (the key biases
    # of attention: softmax ignores a shift shared by all keys) it turns round-off (up to ~2e-7 here)
    # into steps of up to ~lr/10 in both codes alike. Elements with |g| <= ZERO_GRAD are
    # checked through their gradient (exp_avg, below: ~0 in both) instead of their value.
    grad_G = official.generator(record["G_exp_avg"], style=style)
    after_G = official.generator(record["after"]["G"], style=style)
    ours_G = trainer.G.state_dict()
    settled = {k: v for k, v in after_G.items() if k not in grad_G}
    settled.update({k: torch.where(grad_G[k].abs() > ZERO_GRAD, after_G[k], ours_G[k]) for k in grad_G})
    # Without attention no gradient is 0 in exact arithmetic, and every updated value must
    # match as it is (in the GAN baseline, whose mapping feeds only the 4x4 stem, 4 % of G's
    # gradients are real but below ZERO_GRAD).
    errors = {
        "G weights": _compare(ours_G, settled if has_attention(name) else after_G, "G"),
        "D weights": _compare(trainer.D.state_dict(), official.discriminator(record["after"]["D"], res), "D"),
    }
    params_G, params_D = dict(trainer.G.named_parameters()), dict(trainer.D.named_parameters())
    for label, opt, params, theirs in (
            ("G exp_avg", trainer.opt_G, params_G, grad_G),
            ("D exp_avg", trainer.opt_D, params_D, official.discriminator(record["D_exp_avg"], res)),
            ("D exp_avg_sq", trainer.opt_D, params_D, official.discriminator(record["D_exp_avg_sq"], res))):
        state = "exp_avg_sq" if label.endswith("sq") else "exp_avg"
        errors[label] = _compare({n: opt.state[p][state] for n, p in params.items() if p in opt.state},
                                 theirs, label, relative=True)
    assert all(e < ATOL for e in errors.values()), errors
    if has_attention(name):
        skipped = sum(int((g.abs() <= ZERO_GRAD).sum()) for g in grad_G.values())   # 0.2-1 % of G
        assert skipped < 0.02 * sum(g.numel() for g in grad_G.values())
    # The step did move G's weights.
    moved = _compare(trainer.G.state_dict(), official.generator(record["before"]["G"], style=style), "G")
    assert moved > 1e-3


def test_bench_official_names_a_folder_that_is_not_the_official_code(tmp_path):
    from conftest import run
    script = Path(__file__).parent / "fixtures" / "official" / "bench_official.py"
    proc = run([sys.executable, str(script), "--official", str(tmp_path)], check=False)
    assert proc.returncode != 0
    assert "is not the official code's pytorch_version folder" in proc.stderr
    assert "Traceback" not in proc.stderr
