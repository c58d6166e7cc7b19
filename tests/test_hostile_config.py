"""Hostile sizes where they enter: config values and command-line options that would size
memory, disk or time beyond any real run are refused in one line, through the real command
line under a memory and CPU bound (tests/hostile.py), before anything large is built.

Each case is one config file or one option; the bounds are in ganrepro.settings.limits and
ganrepro.settings.hparams (and repeated in the config schema, which `test_schema_maxima_are_the_checks_constants` keeps in step).
"""

from __future__ import annotations

import dataclasses
import json
import os
import math
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, SAFETY_TIMEOUT
from hostile import assert_refused, run_bounded
from ganrepro import models
from ganrepro.settings import config, hparams, limits, schema
from ganrepro.machine import memory_bytes

BIG = 2 ** 64               # overflows every fixed-width integer a seed or a size is cast to
TOY = {"source": "shapes", "resolution": 8}


def write_config(folder: Path, **changes) -> Path:
    path = folder / "hostile.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"toy": dict(TOY)}, **changes}))
    return path


# ---------------------------------------------------------------------------- config values

# id -> (config keys, regex of the one error line). `config show` validates the file the way
# every command that reads a config does.
CONFIG_CASES = {
    "channel_max_ten_million": ({"hparams": {"stylegan2": {"channel_max": 10_000_000}}},
                                r"'hparams\.stylegan2\.channel_max' must be <= 4096 \(got 10000000\)"),
    "training_seed_2_to_the_64": ({"seeds": [BIG]}, r"'seeds\[0\]' must be <= 4294967295"),
    "shapes_num_images_1e12": ({"datasets": {"toy": {**TOY, "num_images": 10 ** 12}}},
                               r"'datasets\.toy\.num_images' must be <= 10000000"),
    "folder_max_images_1e12": ({"datasets": {"toy": {"source": "folder", "path": "x", "max_images": 10 ** 12}}},
                               r"'datasets\.toy\.max_images' must be <= 10000000"),
    "shapes_scene_seed_2_to_the_64": ({"datasets": {"toy": {**TOY, "seed": BIG}}},
                                      r"'datasets\.toy\.seed' must be <= 4294967295"),
    "z_dim_2_to_the_40": ({"hparams": {"ganformer-simplex": {"z_dim": 2 ** 40}}},
                          r"'hparams\.ganformer-simplex\.z_dim' must be <= 4096"),
    "components_100k": ({"hparams": {"ganformer-duplex": {"components": 100_000}}},
                        r"'hparams\.ganformer-duplex\.components' must be <= 256"),
    "mapping_layers_1e6": ({"hparams": {"stylegan2": {"mapping_layers": 10 ** 6}}},
                           r"'hparams\.stylegan2\.mapping_layers' must be <= 64"),
    "kmeans_iters_1e9": ({"hparams": {"ganformer-duplex": {"kmeans_iters": 10 ** 9}}},
                         r"'hparams\.ganformer-duplex\.kmeans_iters' must be <= 64"),
    "end_res_2_to_the_20": ({"hparams": {"ganformer-simplex": {"end_res": 2 ** 20}}},
                            r"'hparams\.ganformer-simplex\.end_res' must be <= 1024"),
    "mapping_lr_mul_infinite": ({"hparams": {"stylegan2": {"mapping_lr_mul": math.inf}}},
                                r"'hparams\.stylegan2\.mapping_lr_mul' must be a finite number \(got inf\)"),
    "dataset_own_channel_base_2_to_the_40": (
        {"datasets": {"toy": {**TOY, "hparams": {"gan": {"channel_base": 2 ** 40}}}}},
        r"'datasets\.toy\.hparams\.gan\.channel_base' must be <= 1048576"),
    "batch_size_1e9": ({"train": {"batch_size": 10 ** 9}}, r"'train\.batch_size' must be <= 4096"),
    "num_workers_1e6": ({"train": {"num_workers": 10 ** 6}}, r"'train\.num_workers' must be <= 64"),
    "kimg_1e12": ({"kimg": [0, 10 ** 12]}, r"'kimg\[1\]' must be <= 1000000"),
    "kimg_list_of_5000": ({"kimg": list(range(5000))}, r"'kimg' must have at most 1000 entries \(got 5000\)"),
    "num_gen_1e12": ({"metrics": {"num_gen": 10 ** 12}}, r"'metrics\.num_gen' must be <= 1000000"),
    "num_real_1e12": ({"metrics": {"num_real": 10 ** 12}}, r"'metrics\.num_real' must be <= 10000000"),
    "repeats_1e6": ({"metrics": {"repeats": 10 ** 6}}, r"'metrics\.repeats' must be <= 100"),
    "sampling_seeds_past_2_to_the_32": ({"metrics": {"seed": 2 ** 32 - 1, "repeats": 3}},
                                        r"'metrics\.seed' \(4294967295\) and 'metrics\.repeats' \(3\) reach "
                                        r"sampling seed 4294967297; seeds go up to 4294967295"),
}


@pytest.mark.parametrize("changes, pattern", CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_config_value_out_of_bounds_is_refused(changes, pattern, tmp_path):
    path = write_config(tmp_path, **changes)
    assert_refused(run_bounded(["config", "show", "--config", path], cwd=tmp_path), rf"{path.name}: .*{pattern}")


# The commands that crashed on these before they were bounded (issue 20).
@pytest.mark.parametrize("command, changes, pattern", [
    (["models", "params", "--resolution", "64"], {"hparams": {"stylegan2": {"channel_max": 10_000_000}}},
     r"'hparams\.stylegan2\.channel_max' must be <= 4096"),
    (["train", "--dry-run", "--dataset", "toy", "--model", "stylegan2"], {"seeds": [BIG]},
     r"'seeds\[0\]' must be <= 4294967295"),
    (["train", "--dataset", "toy", "--model", "stylegan2"], {"hparams": {"stylegan2": {"channel_max": 10_000_000}}},
     r"'hparams\.stylegan2\.channel_max' must be <= 4096"),
], ids=["models_params_channel_max", "train_dry_run_seed_2_to_the_64", "train_channel_max"])
def test_commands_refuse_out_of_bounds_config(command, changes, pattern, tmp_path):
    path = write_config(tmp_path, **changes)
    assert_refused(run_bounded([*command, "--config", path], cwd=tmp_path), pattern,
                   markers=(tmp_path / "results",))


def test_the_bounds_accept_their_own_maxima():
    """The largest allowed values validate (the bounds refuse only beyond them)."""
    fields = {f.name for f in dataclasses.fields(hparams.GANformerConfig)}
    hp = {k: v for k, v in hparams.HPARAM_MAXIMA.items()
          if k in fields and k not in ("start_res", "mbstd_group", "heads")}
    assert "channel_max" in hp and "merge_res" not in hp
    cfg = config.resolve({
        "datasets": {"toy": {**TOY, "num_images": limits.NUM_IMAGES_MAX, "seed": limits.SEED_MAX}},
        "models": ["ganformer-duplex"], "hparams": {"ganformer-duplex": hp},
        "seeds": [limits.SEED_MAX], "kimg": [0, limits.KIMG_MAX], "train": {"batch_size": limits.BATCH_MAX},
        "metrics": {"num_gen": limits.NUM_GEN_MAX, "num_real": limits.NUM_IMAGES_MAX, "repeats": limits.REPEATS_MAX,
                    "seed": limits.SEED_MAX - limits.REPEATS_MAX + 1}})
    assert cfg["hparams"]["ganformer-duplex"]["channel_max"] == 4096


def test_schema_maxima_are_the_checks_constants():
    props = schema.schema()["properties"]
    dataset = schema.dataset_schema()
    shapes = next(b["then"]["properties"] for b in dataset["allOf"]
                  if b["if"]["properties"]["source"]["const"] == "shapes")
    assert props["seeds"]["items"]["maximum"] == limits.SEED_MAX
    assert shapes["seed"]["maximum"] == props["metrics"]["properties"]["seed"]["maximum"] == limits.SEED_MAX
    assert props["train"]["properties"]["batch_size"]["maximum"] == limits.BATCH_MAX
    assert props["metrics"]["properties"]["batch_size"]["maximum"] == limits.BATCH_MAX
    assert props["train"]["properties"]["num_workers"]["maximum"] == limits.WORKERS_MAX
    assert props["kimg"]["items"]["maximum"] == limits.KIMG_MAX
    assert props["kimg"]["maxItems"] == limits.KIMG_LIST_MAX
    for key in ("num_gen", "final_num_gen"):
        assert props["metrics"]["properties"][key]["maximum"] == limits.NUM_GEN_MAX
    assert props["metrics"]["properties"]["num_real"]["maximum"] == limits.NUM_IMAGES_MAX
    assert props["metrics"]["properties"]["repeats"]["maximum"] == limits.REPEATS_MAX
    assert shapes["num_images"]["maximum"] == dataset["properties"]["max_images"]["maximum"] == limits.NUM_IMAGES_MAX
    assert max(dataset["properties"]["resolution"]["enum"]) == limits.RESOLUTION_MAX


# ---------------------------------------------------------------------------- networks too large for this machine

# Every key within its own bound, together far beyond any machine's memory: counted on the
# meta device, so the refusal allocates nothing.
HUGE = {"channel_max": 4096, "channel_base": 2 ** 20, "z_dim": 4096, "w_dim": 4096, "mapping_layers": 64,
        "components": 256}


def _needs_more_than_this_machine(resolution: int) -> None:
    need = models.network_bytes("ganformer-duplex", training=True, resolution=resolution, channels=3, **HUGE)
    if need <= memory_bytes():
        pytest.skip(f"this machine has {memory_bytes() / 2**30:.0f} GiB, more than the {need / 2**30:.0f} GiB "
                    "the largest allowed network needs")


def test_models_params_refuses_a_network_larger_than_memory(tmp_path):
    _needs_more_than_this_machine(8)
    path = write_config(tmp_path, hparams={"ganformer-duplex": HUGE})
    assert_refused(run_bounded(["models", "params", "--config", path, "--resolution", "8"], cwd=tmp_path),
                   r"hostile\.yaml: config key 'hparams\.ganformer-duplex' \(8 px\): ganformer-duplex at resolution=8, "
                   r"channel_base=1048576, channel_max=4096, z_dim=4096, w_dim=4096, components=256 needs about "
                   r"\d+\.\d GiB of weights and optimizer state, more than the \d+\.\d GiB this machine has; "
                   r"lower those keys")


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    """A real prepared dataset of 8 images at 8 px."""
    folder = tmp_path_factory.mktemp("data") / "toy"
    subprocess.run([str(BIN / "ganrepro"), "data", "prepare", "toy", "--spec",
                    json.dumps({**TOY, "num_images": 8}), "--out", str(folder)],
                   check=True, capture_output=True, timeout=SAFETY_TIMEOUT)
    return folder


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry_run", "run"])
def test_train_refuses_a_network_larger_than_memory_naming_the_dataset_keys(dry_run, toy_data, tmp_path):
    _needs_more_than_this_machine(8)
    path = write_config(tmp_path, models=["ganformer-duplex"],
                        datasets={"toy": {**TOY, "hparams": {"ganformer-duplex": HUGE}}})
    out = tmp_path / "run"
    args = ["train", "--config", path, "--dataset", "toy", "--model", "ganformer-duplex", "--data", toy_data,
            "--out", out, *(["--dry-run"] if dry_run else [])]
    assert_refused(run_bounded(args, cwd=tmp_path),
                   r"config key 'datasets\.toy\.hparams\.ganformer-duplex' \(dataset 'toy' at 8 px\): "
                   r"ganformer-duplex at .* needs about .* GiB .* more than the .* GiB this machine has",
                   markers=(out,))


# ---------------------------------------------------------------------------- data prepare

@pytest.mark.parametrize("args, pattern", [
    (["--spec", json.dumps({**TOY, "num_images": 10 ** 12})], r"'datasets\.toy\.num_images' must be <= 10000000"),
    (["--spec", json.dumps(TOY), "--set", f"seed={BIG}"], r"'datasets\.toy\.seed' must be <= 4294967295"),
    (["--spec", json.dumps(TOY), "--set", "max_images=1000000000000"], r"'datasets\.toy\.max_images' must be <= "),
], ids=["spec_num_images_1e12", "set_seed_2_to_the_64", "set_max_images_1e12"])
def test_prepare_refuses_hostile_sizes(args, pattern, tmp_path):
    out = tmp_path / "out"
    assert_refused(run_bounded(["data", "prepare", "toy", *args, "--out", out], cwd=tmp_path), pattern,
                   markers=(out, Path(f"{out}.partial")))


def test_prepare_of_a_bare_source_refuses_num_images_1e12(tmp_path):
    """No config at all: the source's defaults with one hostile override."""
    out = tmp_path / "out"
    assert_refused(run_bounded(["data", "prepare", "shapes", "--set", "num_images=1000000000000", "--out", out],
                               cwd=tmp_path), r"'datasets\.shapes\.num_images' must be <= 10000000", markers=(out,))


# ---------------------------------------------------------------------------- command-line options

def _usage(option: str, allowed: str) -> str:
    # click's one line for an option out of its range (exit status 2)
    return rf"Invalid value for '{option}'.*{allowed}"


@pytest.mark.parametrize("args, pattern", [
    (["train", "--dataset", "toy", "--model", "gan", "--seed", str(BIG)], _usage("--seed", r"0<=x<=4294967295")),
    (["models", "params", "--resolution", str(2 ** 40)], _usage("--resolution", r"8<=x<=1024")),
    (["data", "export-png", "x", "--limit", str(10 ** 12)], _usage("--limit", r"1<=x<=10000000")),
    (["stats", "--data", "x", "--out", "y.npz", "--num-real", str(10 ** 12)], _usage("--num-real", r"<= 10000000")),
    (["stats", "--data", "x", "--out", "y.npz", "--batch-size", str(10 ** 9)], _usage("--batch-size", r"1<=x<=4096")),
    (["bench", "models", "--resolution", str(2 ** 30)], _usage("--resolution", r"8<=x<=1024")),
], ids=["train_seed", "models_params_resolution", "export_png_limit", "stats_num_real", "stats_batch_size",
        "bench_models_resolution"])
def test_option_out_of_bounds_is_refused(args, pattern, tmp_path):
    assert_refused(run_bounded(args, cwd=tmp_path), pattern, rc=2)


EVALUATE = ["evaluate", "--snapshot", "missing.pt", "--dataset", "toy", "--data", "missing", "--device", "cpu"]


@pytest.mark.parametrize("args, pattern, rc", [
    (["--trunc", "nan"], _usage("--trunc", r"nan is not a finite number; allowed: 0<=x<=1"), 2),
    (["--trunc", "inf"], _usage("--trunc", r"0<=x<=1"), 2),
    (["--seed", str(BIG)], _usage("--seed", r"0<=x<=4294967295"), 2),
    (["--seed", "-1"], _usage("--seed", r"0<=x<=4294967295"), 2),
    (["--repeats", str(10 ** 6)], _usage("--repeats", r"1<=x<=100"), 2),
    (["--num-gen", f"10000,{10 ** 12}"], _usage("--num-gen", r"each image count must be <= 1000000"), 2),
    (["--num-real", str(10 ** 12)], _usage("--num-real", r"<= 10000000"), 2),
    (["--seed", str(2 ** 32 - 1), "--repeats", "2"],
     r"--seed 4294967295 --repeats 2 reaches seed 4294967296; seeds go up to 4294967295", 1),
], ids=["trunc_nan", "trunc_inf", "seed_2_to_the_64", "seed_negative", "repeats_1e6", "num_gen_1e12",
        "num_real_1e12", "seed_plus_repeats_past_2_to_the_32"])
def test_evaluate_refuses_hostile_options(args, pattern, rc, tmp_path):
    out = tmp_path / "metrics.json"
    assert_refused(run_bounded([*EVALUATE, *args, "--out", out], cwd=tmp_path), pattern, rc=rc, markers=(out,))


# ---------------------------------------------------------------------------- generate

@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """A real (untrained) stylegan2 snapshot at 8 px."""
    path = tmp_path_factory.mktemp("snapshot") / "snapshot-000000.pt"
    net = models.build("stylegan2", resolution=8, channel_base=64, channel_max=8, z_dim=8, w_dim=8, mapping_layers=1)
    models.save_snapshot(path, net.G, "stylegan2", net.hparams, kimg=0)
    return path


@pytest.mark.parametrize("args, pattern, rc", [
    (["--seeds", "0", "--trunc", "nan"], _usage("--trunc", r"nan is not a finite number; allowed: 0<=x<=1"), 2),
    (["--seeds", "0", "--trunc", "inf"], _usage("--trunc", r"0<=x<=1"), 2),
    (["--seeds", "0", "--trunc", "-0.5"], _usage("--trunc", r"0<=x<=1"), 2),
    (["--seeds", "0", "--trunc", "1.5"], _usage("--trunc", r"0<=x<=1"), 2),
    (["--interpolate", "0", "1", "--frames", str(10 ** 9)], _usage("--frames", r"2<=x<=10000"), 2),
    (["--seeds", "0", "--batch-size", str(10 ** 9)], _usage("--batch-size", r"1<=x<=4096"), 2),
    (["--seeds", str(BIG)], r"--seeds '\d+': seeds go up to 4294967295", 1),
    (["--seeds", "0-4000000000"], r"--seeds '0-4000000000' names more than 1,000,000 seeds", 1),
    (["--interpolate", "0", str(2 ** 32)], r"--interpolate B '4294967296': seeds go up to 4294967295", 1),
], ids=["trunc_nan", "trunc_inf", "trunc_negative", "trunc_above_one", "frames_1e9", "batch_size_1e9",
        "seed_2_to_the_64", "four_billion_seeds", "interpolate_seed_2_to_the_32"])
def test_generate_refuses_hostile_options(args, pattern, rc, snapshot, tmp_path):
    out = tmp_path / "out"
    assert_refused(run_bounded(["generate", "--snapshot", snapshot, "--device", "cpu", "--out", out, *args],
                               cwd=tmp_path), pattern, rc=rc, markers=(out,))


def test_generate_refuses_an_out_folder_under_a_file(snapshot, tmp_path):
    """A regular file where a parent folder should be (root ignores permissions, so a
    read-only folder would not stop the tests' user): one line, nothing written."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    out = blocker / "pictures"
    result = run_bounded(["generate", "--snapshot", snapshot, "--device", "cpu", "--seeds", "0", "--out", out],
                         cwd=tmp_path)
    assert_refused(result, rf"--out {out}: {blocker} is not a folder; give a folder that can be created and written")
    assert blocker.read_text() == "a file, not a folder\n"


def test_generate_refuses_an_out_that_is_a_file(snapshot, tmp_path):
    out = tmp_path / "taken"
    out.write_text("keep me\n")
    result = run_bounded(["generate", "--snapshot", snapshot, "--device", "cpu", "--seeds", "0", "--out", out],
                         cwd=tmp_path)
    assert_refused(result, r"Invalid value for '--out'.*is a file", rc=2)
    assert out.read_text() == "keep me\n"


def test_generate_still_writes_at_the_bounds_of_trunc(snapshot, tmp_path):
    """The honest neighbours of the refused values work: psi 0 and 1, seed 2^32 - 1."""
    for psi in ("0", "1"):
        out = tmp_path / psi
        result = run_bounded(["generate", "--snapshot", snapshot, "--device", "cpu", "--seeds", str(limits.SEED_MAX),
                              "--trunc", psi, "--out", out], cwd=tmp_path)
        assert result.rc == 0, result.stderr
        assert (out / f"seed{limits.SEED_MAX:04d}.png").is_file()


# ---------------------------------------------------------------------------- config files

def _alias_bomb(levels: int = 12) -> str:
    """Under 1 KB of YAML standing for 10**levels values, each level ten aliases of the last."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\ndatasets: *a{levels - 1}\n"


# id -> (file content, regex of the one error line)
FILE_CASES = {
    "yaml_alias_bomb": (_alias_bomb(), r"stands for more than 100,000 values once its YAML aliases are expanded"),
    "recursive_alias_list": ("a: &a [*a]\n", r"nests more than 64 levels deep"),
    "recursive_alias_mapping": ("a: &a\n  b: *a\n", r"'a\.b\.b\.b.*' nests more than 64 levels deep"),
    "nan_learning_rate": ("train:\n  g_lr: .nan\n", r"'train\.g_lr' must be a finite number \(got nan\)"),
    "infinite_state_interval": ("train:\n  state_kimg: .inf\n", r"'train\.state_kimg' must be a finite number"),
    "binary_file": (b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(range(256)), r"is not UTF-8 text"),
    "two_megabytes": ("# " + "x" * (2 << 20) + "\n", r"is 2,097,155 bytes; a config is at most 1,048,576"),
}


@pytest.mark.parametrize("content, pattern", FILE_CASES.values(), ids=FILE_CASES.keys())
def test_hostile_config_file_is_refused(content, pattern, tmp_path):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_refused(run_bounded(["config", "show", "--config", path], cwd=tmp_path), rf"{path.name}.*{pattern}")


def test_deep_config_json_is_refused(tmp_path):
    deep = "[" * 30_000 + "]" * 30_000
    assert_refused(run_bounded(["train", "--config-json", deep, "--dataset", "toy", "--model", "gan", "--data",
                                tmp_path, "--out", tmp_path / "run"], cwd=tmp_path),
                   r"--config-json nests deeper than JSON can be read")


def test_the_documented_hostile_log_lists_each_case(tmp_path):
    """docs/hostile-inputs.md's command (one case of it): GANREPRO_HOSTILE_LOG gets a row per
    bounded run with its exit status, peak memory and CPU time."""
    doc = (Path(__file__).parents[1] / "docs/hostile-inputs.md").read_text()
    command = "GANREPRO_HOSTILE_LOG=hostile.tsv .venv/bin/python -m pytest tests/test_hostile_config.py -q"
    assert command in doc
    log = tmp_path / "hostile.tsv"
    subprocess.run([str(BIN / "python"), "-m", "pytest", "tests/test_hostile_config.py", "-q", "-p",
                    "no:cacheprovider", "-k", "binary_file"], cwd=Path(__file__).parents[1], check=True,
                   env={**os.environ, "GANREPRO_HOSTILE_LOG": str(log)}, capture_output=True,
                   timeout=SAFETY_TIMEOUT)
    rows = log.read_text().splitlines()
    assert rows[0] == "command\trc\tpeak_rss_mib\tcpu_s" and len(rows) == 2, rows
    command_run, rc, rss, cpu = rows[1].split("\t")
    assert command_run.startswith("config show --config ") and rc == "1" and int(rss) > 0 and float(cpu) > 0
