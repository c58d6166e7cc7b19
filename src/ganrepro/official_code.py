"""Running the official GANformer PyTorch code from a checkout, for comparisons.

The official code (github.com/dorarad/gansformer, `pytorch_version/`) is never copied or
vendored here: these helpers import it from a folder named on a command line, take the
network kwargs of its presets from its own `run_network.py`, and build its networks the
way its training loop does. Used by the equivalence harness
(tests/fixtures/official/build_fixtures.py) and `ganrepro bench official`.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import types
from pathlib import Path

from ganrepro.errors import ConfigError


def load(path: str | Path) -> types.SimpleNamespace:
    """The official modules (run_network, dnnlib, training.networks, training.training_loop)
    imported from `path`, with empty stand-ins for the plotting and download packages their
    imports want but network building never uses."""
    path = Path(path).resolve()
    if not (path / "run_network.py").is_file() or not (path / "training" / "networks.py").is_file():
        raise ConfigError(f"{path} is not the official code's pytorch_version folder "
                          "(run_network.py and training/networks.py expected)")
    for name, attrs in (("seaborn", {}), ("gdown", {}), ("termcolor", {"colored": lambda s, *a, **k: s})):
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
    sys.path.insert(0, str(path))
    import dnnlib
    import run_network
    from training import networks, training_loop
    return types.SimpleNamespace(run_network=run_network, dnnlib=dnnlib, networks=networks,
                                 training_loop=training_loop)


def preset(code: types.SimpleNamespace, argv: list[str]) -> dict:
    """The config `run_network.py` builds for a command line, without training anything."""
    captured: dict = {}
    run_network = code.run_network
    with tempfile.TemporaryDirectory() as tmp:
        old_argv, old_launch = sys.argv, run_network.launch_processes
        sys.argv = ["run_network.py", "--expname", "ganrepro", "--result-dir", tmp, *argv]
        run_network.launch_processes = captured.update
        try:
            with contextlib.redirect_stdout(io.StringIO()):    # its log lines
                run_network.main()
        finally:
            sys.argv, run_network.launch_processes = old_argv, old_launch
    return json.loads(json.dumps(captured))             # plain dicts, our own copy


def matching_preset(code: types.SimpleNamespace, model: str, hparams) -> dict:
    """The official preset for one of our registry models with its default functions, sized
    as `hparams` (a resolved config dataclass): --baseline StyleGAN2, or --ganformer-default
    (simplex: with k-means off, which its command line cannot do)."""
    if model == "stylegan2":
        config = preset(code, ["--dataset", "ffhq", "--baseline", "StyleGAN2", "--latent-size", str(hparams.z_dim)])
    elif model in ("ganformer-simplex", "ganformer-duplex"):
        k = hparams.components
        config = preset(code, ["--dataset", "ffhq", "--ganformer-default", "--components-num", str(k),
                               "--latent-size", str(k * hparams.z_dim)])
        config["cG"]["synthesis_kwargs"]["kmeans"] = model == "ganformer-duplex"
    else:
        raise ConfigError(f"the official code has no counterpart of {model!r}")
    for kwargs in (config["cG"]["synthesis_kwargs"], config["cD"]):
        kwargs.update(channel_base=hparams.channel_base, channel_max=hparams.channel_max)
    return config


def build(code: types.SimpleNamespace, config: dict, resolution: int, **overrides):
    """Official (G, D, G config, D config) from a preset as its training loop builds them;
    `overrides` go into both the mapping and synthesis kwargs (e.g. attention_dropout)."""
    cG, cD = json.loads(json.dumps(config["cG"])), json.loads(json.dumps(config["cD"]))
    for kwargs in (cG["synthesis_kwargs"], cG["mapping_kwargs"]):
        kwargs.update(overrides)
    common = dict(c_dim=0, img_resolution=resolution, img_channels=3)
    nets = [code.dnnlib.util.construct_class_by_name(
        **{k: v for k, v in c.items() if k not in ("opt_args", "reg_interval")}, **common) for c in (cG, cD)]
    return nets[0], nets[1], code.dnnlib.EasyDict(cG), code.dnnlib.EasyDict(cD)
