"""The settings package: torch-free, one registry of models, one derivation of a run's settings."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run
from ganrepro.errors import ConfigError
from ganrepro.settings import config, presets, registry, schema
from ganrepro.settings.run import effective_run

SETTINGS = REPO / "src" / "ganrepro" / "settings"
# What settings/ may import: the standard library, yaml, jsonschema and the base modules.
ALLOWED_THIRD_PARTY = {"yaml", "jsonschema"}
ALLOWED_GANREPRO = {"ganrepro.errors", "ganrepro.files", "ganrepro.settings"}

# Runs snakemake's own entry point in a process where `import torch` fails.
NO_TORCH_SNAKEMAKE = ("import sys; sys.modules['torch'] = None; from snakemake.cli import main; "
                      "sys.argv = ['snakemake', *sys.argv[1:]]; sys.exit(main())")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


def test_settings_imports_only_the_standard_library_yaml_jsonschema_and_the_base():
    for path in sorted(SETTINGS.glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "ganrepro":
                assert any(name == a or name.startswith(a + ".") for a in ALLOWED_GANREPRO), (path.name, name)
            else:
                assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names or top == "__future__", \
                    (path.name, name)


def test_importing_settings_imports_no_torch():
    code = ("import importlib, pkgutil, sys\n"
            "import ganrepro.settings as s\n"
            "for m in pkgutil.iter_modules(s.__path__):\n"
            "    importlib.import_module('ganrepro.settings.' + m.name)\n"
            "print('torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False", proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("configfile", [None, "config/paper.yaml"])
def test_snakemake_builds_the_dag_without_torch(configfile, tmp_path):
    """Validating the config and building the DAG (a dry run) in a process where torch
    cannot be imported; the Snakefile's embedded default is read from the working directory."""
    args = ["-n", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1"]
    if configfile is None:
        (tmp_path / "config").mkdir()
        shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    else:
        args += ["--configfile", str(REPO / configfile)]
    proc = run([sys.executable, "-c", NO_TORCH_SNAKEMAKE, *args], cwd=REPO, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Job stats" in out, out


def test_a_process_without_torch_really_cannot_import_it():
    code = NO_TORCH_SNAKEMAKE.split("; from snakemake")[0] + "; import torch"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_the_package_schema_is_the_workflow_schema_itself():
    """One file: the package ships workflow/schemas/config.schema.yaml through a symlink, so
    Snakemake's validate() and every command read the same text (an editor that replaces the
    link by a copy splits them)."""
    shipped = REPO / "src/ganrepro" / schema.SCHEMA_RESOURCE
    assert shipped.is_symlink() and shipped.resolve() == (REPO / schema.SCHEMA_DOC).resolve()
    assert schema.schema_path().resolve() == (REPO / schema.SCHEMA_DOC).resolve()


def test_every_model_enum_of_the_schema_is_the_registry():
    found = []

    def walk(node):
        if isinstance(node, dict):
            enum = node.get("enum")
            if isinstance(enum, list) and len(set(enum) & set(registry.MODELS)) > 1:   # not the loss's "stylegan2"
                found.append([e for e in enum if e is not None])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema.schema())
    assert len(found) >= 4          # models, hparams, a dataset's hparams, a released checkpoint's model
    assert all(names == list(registry.MODELS) for names in found), found


def test_the_recipe_keys_of_a_dataset_entry_are_the_presets_recipe_keys():
    """The schema names the keys a dataset may override; presets.RECIPE_KEYS decides what
    they mean. Both lists must stay the same."""
    dataset = schema.dataset_schema()
    allowed = dataset["properties"]["train"]["propertyNames"]["enum"]
    assert allowed == list(presets.RECIPE_KEYS)
    top = schema.schema()["properties"]["train"]["properties"]
    assert set(presets.RECIPE_KEYS) <= set(top)


def test_registry_entries_name_their_networks_as_references():
    for name, entry in registry.MODELS.items():
        assert entry.name == name
        for ref in (entry.generator, entry.discriminator):
            module, _, attr = ref.partition(":")
            assert module.startswith("ganrepro.models.") and attr, ref
    assert [n for n in registry.MODELS if registry.has_attention(n)] == ["ganformer-simplex", "ganformer-duplex"]
    assert registry.model_label("ganformer-duplex") == "GANformer duplex"
    assert registry.model_label("other") == "other" and not registry.has_attention("other")
    assert [registry.with_role(r) for r in registry.ROLES] == ["stylegan2", "ganformer-simplex", "ganformer-duplex"]
    assert [n for n, e in registry.MODELS.items() if e.from_tf] == [registry.with_role(r) for r in registry.ROLES]


def _config(**datasets):
    return config.resolve({"datasets": datasets, "models": list(registry.MODELS), "train": {"r1_gamma": 5},
                           "hparams": {"ganformer-duplex": {"heads": 2}}})


def test_effective_run_applies_the_preset_the_overrides_and_the_dataset_size():
    cfg = _config(clevr64={"source": "clevr", "resolution": 64, "channels": 3},
                  gray={"source": "shapes", "resolution": 32, "channels": 1,
                        "train": {"r1_gamma": 2}, "hparams": {"ganformer-duplex": {"components": 4}}})
    run_ = effective_run(cfg, "clevr64", "ganformer-duplex")
    assert (run_.preset, run_.train["r1_gamma"], run_.kimg) == ("clevr", 40, cfg["kimg"])
    assert {k: run_.hparams[k] for k in ("components", "z_dim", "style", "heads", "resolution")} == \
        {"components": 8, "z_dim": 16, "style": False, "heads": 2, "resolution": 64}
    gray = effective_run(cfg, "gray", "ganformer-duplex")
    assert (gray.preset, gray.train["r1_gamma"], gray.hparams["components"], gray.hparams["heads"]) == ("none", 2, 4, 2)
    assert (gray.hparams["resolution"], gray.hparams["channels"]) == (32, 1)
    assert effective_run(cfg, "clevr64", "stylegan2").hparams == \
        registry.resolve_hparams("stylegan2", resolution=64).__dict__
    # The top level, at a size given by the caller (`ganrepro models params`).
    top = effective_run(cfg, None, "ganformer-duplex", resolution=256, channels=3)
    assert (top.preset, top.train["r1_gamma"], top.hparams["components"], top.hparams["resolution"]) == \
        ("none", 5, 16, 256)
    assert top.train == presets.effective(cfg, "none-such")[0]


def test_effective_run_refuses_a_bad_hyper_parameter_in_one_line():
    cfg = _config(d={"source": "shapes"})
    cfg["hparams"]["stylegan2"] = {"architecture": "mlp"}
    with pytest.raises(ConfigError, match=r"hyper-parameter stylegan2\.architecture is 'mlp'; allowed: resnet, skip"):
        effective_run(cfg, "d", "stylegan2")
