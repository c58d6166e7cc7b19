"""`ganrepro generate`: seed images, truncation, style mixing and latent walks from real
(tiny) snapshots of every model, run through the command line."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import BIN, SAFETY_TIMEOUT
from ganrepro import models
from ganrepro.cli import main
from ganrepro.errors import ConfigError
from ganrepro.models.layers import NoiseInjection
from ganrepro.sampling import parse_seeds
from ganrepro.images import save_png, to_uint8
from ganrepro.settings.registry import MODELS

RES = 16
NAMES = list(MODELS)
W_SPACE = [n for n in NAMES if n != "dcgan"]          # a mapping to W and a w_avg (not the DCGAN)
# Every layer reads its own style: not the GAN and SAGAN baselines (style off), whose w enters
# at the stem only.
STYLED = [n for n in W_SPACE if n not in ("gan", "sagan")]
# The default --style-mix layers, StyleGAN's coarse styles (4x4 and 8x8) at 16 px: kgan, laid
# out as the TF code lays out its styles, has two at 4x4 (baselines.py's ws_resolutions).
COARSE = {"kgan": "0-3"}


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """A snapshot of each model, made to look trained where it matters here: noise with a
    visible strength, a w_avg away from zero (a fresh network has 0 for both) and, for the
    DCGAN, output with contrast (a fresh one is a nearly flat grey)."""
    folder = tmp_path_factory.mktemp("snapshots")
    paths = {}
    for name in NAMES:
        hp = {"resolution": RES, "channel_base": 256, "channel_max": 16}
        if name in ("stylegan2", "gan"):
            hp.update(z_dim=32, w_dim=32, mapping_layers=2)
        if name.startswith("ganformer"):
            hp.update(components=4, mapping_layers=2)
        torch.manual_seed(1)
        net = models.build(name, **hp)
        G = net.G.eval()
        with torch.no_grad():
            for m in G.modules():
                if isinstance(m, NoiseInjection):
                    m.strength.fill_(0.5)
            if name == "dcgan":
                G.net[-2].weight.mul_(30)                           # the conv before tanh
            if hasattr(G, "w_avg"):
                z = torch.randn(64, *G.z_shape, generator=torch.Generator().manual_seed(99))
                ws, _ = G.map(z, update_avg=False)
                G.w_avg.copy_(ws[:, 0].reshape(-1, ws.shape[-1]).mean(0))
        paths[name] = folder / f"{name}.pt"
        models.save_snapshot(paths[name], G, name, net.hparams, kimg=1)
    return paths


def generate(snapshot, out, *args, code=0):
    result = CliRunner().invoke(main, ["generate", "--snapshot", str(snapshot), "--out", str(out),
                                       "--device", "cpu", *map(str, args)])
    assert result.exit_code == code, result.output
    return result


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def cells(path, rows: int, cols: int) -> np.ndarray:
    """A grid PNG as [rows, cols, RES, RES, 3]."""
    img = pixels(path)
    assert img.shape == (rows * RES, cols * RES, 3)
    return img.reshape(rows, RES, cols, RES, 3).transpose(0, 2, 1, 3, 4)


def differ(a: np.ndarray, b: np.ndarray) -> bool:
    return np.abs(a - b).mean() > 2.0


# ---------------------------------------------------------------------------- seeds

@pytest.mark.parametrize("text, seeds", [
    ("0-3", [0, 1, 2, 3]), ("1,5,9", [1, 5, 9]), ("0-3,10", [0, 1, 2, 3, 10]), (" 7 ", [7]),
    ("4 - 5, 2", [4, 5, 2]), ("4294967295", [2 ** 32 - 1]),
])
def test_seed_lists_and_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("1-x", r"--seeds '1-x': '1-x' is not a seed or a range of seeds; write them like 0-63"),
    ("1,,2", r"'' is not a seed"), ("", r"'' is not a seed"), ("-5", r"'-5' is not a seed"),
    ("0.5", r"'0.5' is not a seed"), ("9-3", r"the range 9-3 runs backwards; write 3-9"),
    ("4294967296", r"seeds go up to 4294967295"), ("0-4000000", r"names more than 1,000,000 seeds"),
])
def test_bad_seed_syntax_names_the_option(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_seeds(text)


@pytest.mark.parametrize("name", NAMES)
def test_one_png_per_seed_and_a_grid_of_them(name, snapshots, tmp_path):
    result = generate(snapshots[name], tmp_path, "--seeds", "0-4")
    names = [f"seed{s:04d}.png" for s in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names + ["grid.png"])   # no temporary files
    assert f"wrote 5 image(s), seed0000.png ... seed0004.png, and grid.png to {tmp_path}" in result.stdout
    images = [pixels(tmp_path / n) for n in names]
    assert all(Image.open(tmp_path / n).size == (RES, RES) for n in names)
    grid = cells(tmp_path / "grid.png", 2, 3)                      # ceil(sqrt(5)) = 3 columns
    for i, img in enumerate(images):
        assert np.array_equal(grid[i // 3, i % 3], img)
    assert not grid[1, 2].any()                                   # the unused cell is black
    assert differ(images[0], images[1])


@pytest.mark.parametrize("name", NAMES)
def test_a_seeds_image_is_the_same_in_any_list_and_any_run(name, snapshots, tmp_path):
    generate(snapshots[name], tmp_path / "a", "--seeds", "0-5")
    generate(snapshots[name], tmp_path / "b", "--seeds", "0-5")
    generate(snapshots[name], tmp_path / "c", "--seeds", "5,3,11")
    for s in range(6):
        assert (tmp_path / "a" / f"seed{s:04d}.png").read_bytes() == (tmp_path / "b" / f"seed{s:04d}.png").read_bytes()
    for s in (3, 5):
        assert (tmp_path / "a" / f"seed{s:04d}.png").read_bytes() == (tmp_path / "c" / f"seed{s:04d}.png").read_bytes()


@pytest.mark.parametrize("name", ["stylegan2", "ganformer-duplex"])
def test_noise_modes_and_seeded_random_noise(name, snapshots, tmp_path):
    for mode in ("const", "none"):
        generate(snapshots[name], tmp_path / mode, "--seeds", "0-2", "--noise-mode", mode)
    generate(snapshots[name], tmp_path / "r1", "--seeds", "0-2", "--noise-mode", "random")
    generate(snapshots[name], tmp_path / "r2", "--seeds", "2", "--noise-mode", "random")
    img = {d: pixels(tmp_path / d / "seed0002.png") for d in ("const", "none", "r1", "r2")}
    assert differ(img["const"], img["none"]) and differ(img["const"], img["r1"])
    assert np.array_equal(img["r1"], img["r2"])                  # random noise comes from the seed too


def test_larger_batches_give_the_same_images_up_to_round_off(snapshots, tmp_path):
    generate(snapshots["ganformer-simplex"], tmp_path / "one", "--seeds", "0-6")
    generate(snapshots["ganformer-simplex"], tmp_path / "four", "--seeds", "0-6", "--batch-size", "4")
    for s in range(7):
        a, b = pixels(tmp_path / "one" / f"seed{s:04d}.png"), pixels(tmp_path / "four" / f"seed{s:04d}.png")
        assert np.abs(a - b).max() <= 2 and (a != b).mean() < 0.01, s


# ---------------------------------------------------------------------------- truncation

@pytest.mark.parametrize("name", W_SPACE)
def test_truncation_goes_to_the_snapshots_own_w_avg(name, snapshots, tmp_path):
    generate(snapshots[name], tmp_path / "t0", "--seeds", "0-3", "--trunc", "0")
    generate(snapshots[name], tmp_path / "t1", "--seeds", "0-3", "--trunc", "1")
    at_avg = [pixels(tmp_path / "t0" / f"seed{s:04d}.png") for s in range(4)]
    free = [pixels(tmp_path / "t1" / f"seed{s:04d}.png") for s in range(4)]
    assert all(np.abs(img - at_avg[0]).max() <= 1 for img in at_avg[1:])
    assert all(differ(img, free[0]) for img in free[1:])
    G, _ = models.load_snapshot(snapshots[name])
    ws = G.w_avg.expand(G.map(torch.randn(1, *G.z_shape), update_avg=False)[0].shape)   # w_avg in every slot
    with torch.no_grad():
        expected = to_uint8(G.synthesize(ws, None, noise_mode="const"))[0].astype(int)
    assert np.abs(at_avg[0] - expected).max() <= 1


def test_truncating_the_dcgan_is_refused(snapshots, tmp_path):
    result = generate(snapshots["dcgan"], tmp_path, "--seeds", "0", "--trunc", "0.7", code=1)
    assert result.output.strip() == (f"Error: --trunc 0.7: {snapshots['dcgan']} is a dcgan model, which has no W "
                                     f"space and no w_avg to truncate toward; leave --trunc at 1")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------- style mixing

@pytest.mark.parametrize("name", STYLED)
def test_style_mix_grid(name, snapshots, tmp_path):
    result = generate(snapshots[name], tmp_path, "--style-mix", "0,1", "2-4", "--seeds", "0-4")
    assert f"3 column seeds, the columns' styles in layers {COARSE.get(name, '0-2')} (4x4 to 8x8)" in result.stdout
    grid = cells(tmp_path / "style-mix.png", 3, 4)
    seed = {s: pixels(tmp_path / f"seed{s:04d}.png") for s in range(5)}
    assert not grid[0, 0].any()
    for c, s in enumerate([2, 3, 4]):
        assert np.array_equal(grid[0, c + 1], seed[s])            # sources along the top ...
    for r, s in enumerate([0, 1]):
        assert np.array_equal(grid[r + 1, 0], seed[s])            # ... and down the left
    for r in range(2):
        for c in range(3):
            mixed = grid[r + 1, c + 1]
            assert differ(mixed, grid[r + 1, 0]) and differ(mixed, grid[0, c + 1]), (r, c)


@pytest.mark.parametrize("name", W_SPACE)
def test_style_mix_over_every_layer_is_the_column_image(name, snapshots, tmp_path):
    """All of a layer's latents move: with every layer taken from the column (a GANformer's
    local latents included), each cell is exactly its column's source image."""
    G, _ = models.load_snapshot(snapshots[name])
    generate(snapshots[name], tmp_path, "--style-mix", "0,1", "2,3", "--style-layers", f"0-{G.num_ws - 1}")
    grid = cells(tmp_path / "style-mix.png", 3, 3)
    for r in (1, 2):
        for c in (1, 2):
            assert np.array_equal(grid[r, c], grid[0, c])


@pytest.mark.parametrize("name", STYLED)
def test_style_mix_of_the_fine_layers_is_neither_source(name, snapshots, tmp_path):
    generate(snapshots[name], tmp_path, "--style-mix", "0", "1", "--style-layers", "3-6")
    grid = cells(tmp_path / "style-mix.png", 2, 2)
    assert differ(grid[1, 1], grid[1, 0]) and differ(grid[1, 1], grid[0, 1])


# ---------------------------------------------------------------------------- interpolation

@pytest.mark.parametrize("name", NAMES)
def test_interpolation_ends_at_the_two_seed_images(name, snapshots, tmp_path):
    trunc = ["--trunc", "0.7"] if name != "dcgan" else []
    generate(snapshots[name], tmp_path / "seeds", "--seeds", "2,7", *trunc)
    result = generate(snapshots[name], tmp_path / "walk", "--interpolate", "2", "7", "--frames", "5", *trunc)
    assert ("linear in W" if name != "dcgan" else "slerp in z") in result.stdout
    frames = [pixels(tmp_path / "walk" / f"frame{i:04d}.png") for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "walk").iterdir()) == \
        [f"frame{i:04d}.png" for i in range(5)] + ["interpolation.png"]
    assert np.abs(frames[0] - pixels(tmp_path / "seeds" / "seed0002.png")).max() <= 1
    assert np.abs(frames[-1] - pixels(tmp_path / "seeds" / "seed0007.png")).max() <= 1
    assert differ(frames[2], frames[0]) and differ(frames[2], frames[-1])
    strip = cells(tmp_path / "walk" / "interpolation.png", 1, 5)
    for i in range(5):
        assert np.array_equal(strip[0, i], frames[i])


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("args, message", [
    (["--seeds", "1-x"], "Error: --seeds '1-x': '1-x' is not a seed or a range of seeds"),
    (["--seeds", ""], "Error: --seeds '': '' is not a seed or a range of seeds"),
    (["--style-mix", "0-2", "3;4"], "Error: --style-mix COLS '3;4': '3;4' is not a seed"),
    (["--interpolate", "1-3", "4"], "Error: --interpolate A '1-3': give one seed here"),
    (["--seeds", "0", "--style-layers", "0-2"], "Error: --style-layers chooses the styles --style-mix swaps"),
    (["--seeds", "0", "--frames", "4"], "Error: --frames is the length of an --interpolate walk"),
    ([], "Error: give --seeds, --style-mix or --interpolate"),
    (["--style-mix", "0", "1", "--style-layers", "2-9"], "Error: --style-layers '2-9': this generator has "
                                                         "styles 0-6 (resolutions 4x4 to 16x16)"),
    (["--style-mix", "0", "1", "--style-layers", "coarse"], "Error: --style-layers 'coarse' must be a layer range"),
    (["--seeds", "0", "--device", "tpu"], "Error: --device 'tpu': use auto, cpu, cuda or cuda:N"),
])
def test_bad_options_are_one_error_line(args, message, snapshots, tmp_path):
    result = CliRunner().invoke(main, ["generate", "--snapshot", str(snapshots["stylegan2"]),
                                       "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith(message), result.output
    assert not (tmp_path / "out").exists()                        # checked before anything is written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_one_is_one_error_line(snapshots, tmp_path):
    result = generate(snapshots["stylegan2"], tmp_path, "--seeds", "0", "--device", "cuda", code=1)
    # generate() passes --device cpu first; the later --device cuda wins.
    assert result.output == "Error: --device cuda: no CUDA device is available here; use --device auto or cpu\n"


def test_missing_and_corrupt_snapshots_are_one_error_line_naming_the_file(snapshots, tmp_path):
    missing = tmp_path / "snapshot-000009.pt"
    result = generate(missing, tmp_path / "out", "--seeds", "0", code=1)
    assert result.output == f"Error: snapshot {missing} does not exist\n"
    # Through the installed command, as a user runs it: stderr is the one line, nothing else.
    broken = tmp_path / "snapshot-000004.pt"
    broken.write_bytes(snapshots["ganformer-duplex"].read_bytes()[:3000])
    proc = subprocess.run([str(BIN / "ganrepro"), "generate", "--snapshot", str(broken), "--seeds", "0-3",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=SAFETY_TIMEOUT)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"Error: {broken} is not a readable ganrepro snapshot (")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_interrupted_png_write_leaves_no_file(tmp_path, monkeypatch):
    def fail_halfway(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")                           # a PNG's start, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail_halfway)
    with pytest.raises(OSError):
        save_png(np.zeros((RES, RES, 3), np.uint8), tmp_path / "seed0000.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_images_match_the_cpu_ones(name, snapshots, tmp_path):
    args = ["--seeds", "0-3", "--interpolate", "0", "1", *(["--style-mix", "0", "1"] if name != "dcgan" else [])]
    generate(snapshots[name], tmp_path / "cpu", *args)
    generate(snapshots[name], tmp_path / "gpu", *args, "--device", "cuda")
    assert sorted(p.name for p in (tmp_path / "cpu").iterdir()) == sorted(p.name for p in (tmp_path / "gpu").iterdir())
    for s in range(4):
        a, b = pixels(tmp_path / "cpu" / f"seed{s:04d}.png"), pixels(tmp_path / "gpu" / f"seed{s:04d}.png")
        assert np.abs(a - b).mean() < 1.0, (s, np.abs(a - b).mean())
