"""Official network kwargs -> ganrepro's registry model and hyper-parameters. Anything
ganrepro cannot compute exactly is refused with the kwarg and its value, and sizes are
bounded before anything is built, so a forged file cannot ask for a huge network."""

from __future__ import annotations

import math
from typing import Any

from ganrepro.checkpoints.unpickler import CheckpointError, short
from ganrepro.settings.registry import with_role


def _log2_res(x: int) -> int:
    return int(math.log2(x))


def hparams_from_official(kwargs: dict, where: str) -> tuple[str, dict[str, Any]]:
    """(registry model, hyper-parameters) of an official Generator's kwargs; anything ganrepro
    cannot compute exactly is refused with the kwarg and its value."""
    try:
        return _hparams_from_official(kwargs, where)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        raise CheckpointError(f"{where}: its generator's kwargs are incomplete or malformed "
                              f"({type(err).__name__}: {err}); not an official GANformer generator") from None


def _hparams_from_official(kwargs: dict, where: str) -> tuple[str, dict[str, Any]]:
    mk, sk = dict(kwargs.get("mapping_kwargs") or {}), dict(kwargs.get("synthesis_kwargs") or {})

    def refuse(name, value, allowed):
        raise CheckpointError(f"{where}: official kwarg {name}={short(value)} has no exact ganrepro counterpart "
                              f"(ganrepro imports {allowed})")

    for name, value, ok in [("c_dim", kwargs.get("c_dim", 0), 0), ("crop_ratio", sk.get("crop_ratio"), None),
                            ("latent_stem", sk.get("latent_stem", False), False),
                            ("local_noise", sk.get("local_noise", True), True),
                            ("act", sk.get("act", "lrelu"), "lrelu"), ("mapping act", mk.get("act", "lrelu"), "lrelu"),
                            ("ltnt_gate", sk.get("ltnt_gate", False) or mk.get("ltnt_gate", False), False),
                            ("img_gate", sk.get("img_gate", False), False),
                            ("iterative", sk.get("iterative", False), False),
                            ("layer_dim", mk.get("layer_dim"), None), ("shared", mk.get("shared", False), False)]:
        if value != ok:
            refuse(name, value, f"{name}={ok!r}")
    if list(sk.get("resample_kernel", [1, 3, 3, 1])) != [1, 3, 3, 1]:
        refuse("resample_kernel", sk["resample_kernel"], "[1, 3, 3, 1]")
    res = int(kwargs["img_resolution"])
    k = int(kwargs.get("k", 1))
    # Sizes are checked before anything is built, so a forged file cannot ask for a huge network.
    if res not in (8, 16, 32, 64, 128, 256, 512, 1024):
        refuse("img_resolution", res, "8 to 1024 px, a power of two")
    for name, value, most in (("k", k, 257), ("z_dim", kwargs.get("z_dim", 512), 4096),
                              ("w_dim", kwargs.get("w_dim", 512), 4096),
                              ("channel_max", sk.get("channel_max", 512), 4096),
                              ("channel_base", sk.get("channel_base", 32 << 10), 1 << 20),
                              ("num_layers", mk.get("num_layers", 8), 64)):
        if not 1 <= int(value) <= most:
            refuse(name, value, f"{name} from 1 to {most}")
    transformer = bool(sk.get("transformer", False))
    hp: dict[str, Any] = {
        "resolution": res, "channels": int(kwargs.get("img_channels", 3)),
        "z_dim": int(kwargs.get("z_dim", 512)), "w_dim": int(kwargs.get("w_dim", 512)),
        "mapping_layers": int(mk.get("num_layers", 8)), "mapping_lr_mul": float(mk.get("lrmul", 0.01)),
        "mapping_residual": bool(mk.get("resnet", False)),
        "channel_base": int(sk.get("channel_base", 32 << 10)), "channel_max": int(sk.get("channel_max", 512)),
        "architecture": sk.get("architecture", "skip"),
        "w_avg_beta": float(mk.get("w_avg_beta") if mk.get("w_avg_beta") is not None else 1.0),
    }
    if hp["architecture"] not in ("skip", "resnet"):
        refuse("architecture", hp["architecture"], "skip or resnet")
    if not transformer:
        if k != 1:
            refuse("k", k, "k = 1 without attention (StyleGAN2)")
        return with_role("baseline"), hp
    if sk.get("norm") != "layer" or not sk.get("use_pos", False) or sk.get("pos_type", "sinus") != "sinus":
        refuse("norm/use_pos/pos_type", (sk.get("norm"), sk.get("use_pos"), sk.get("pos_type")),
               "the GANformer presets: norm='layer', use_pos=True, pos_type='sinus'")
    if sk.get("integration", "add") not in ("mul", "add"):
        refuse("integration", sk.get("integration"), "'mul' or 'add'")
    start, end = int(sk.get("start_res", 0)), int(sk.get("end_res", 20))
    lowest, highest = max(start, 2), min(end - 1, _log2_res(res))
    if lowest > highest:
        refuse("start_res/end_res", (start, end), "at least one attention resolution")
    hp.update(components=k - 1, heads=int(sk.get("num_heads", 1)),
              attention_dropout=float(sk.get("attention_dropout", 0.12)), integration=sk.get("integration", "add"),
              start_res=2 ** lowest, end_res=2 ** highest, kmeans_iters=int(sk.get("kmeans_iters", 1)),
              pos_dim=int(sk.get("pos_dim") or 0), style=bool(sk.get("style", True)),
              mapping_ltnt2ltnt=bool(mk.get("ltnt2ltnt", False)), duplex_keys="kmeans",
              normalize_global=bool(mk.get("normalize_global", True)))
    return with_role("duplex" if sk.get("kmeans", False) else "simplex"), hp


def discriminator_hparams(kwargs: dict, model: str, hparams: dict[str, Any], where: str) -> dict[str, Any]:
    """The hyper-parameters of `model` (read from the file's generator) whose discriminator
    is the official Discriminator of `kwargs`: the same as the generator's, with its
    minibatch-std group. A discriminator ganrepro cannot compute exactly is refused."""
    try:
        return _discriminator_hparams(kwargs, hparams, where)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        raise CheckpointError(f"{where}: its discriminator's kwargs are incomplete or malformed "
                              f"({type(err).__name__}: {err}); not an official GANformer discriminator") from None


def _discriminator_hparams(kwargs: dict, hparams: dict[str, Any], where: str) -> dict[str, Any]:
    bk, ek = dict(kwargs.get("block_kwargs") or {}), dict(kwargs.get("epilogue_kwargs") or {})

    def refuse(name, value, allowed):
        raise CheckpointError(f"{where}: official discriminator kwarg {name}={short(value)} has no exact ganrepro "
                              f"counterpart (ganrepro imports {allowed})")

    for name, value, ok in [("c_dim", kwargs.get("c_dim", 0), 0),
                            ("architecture", kwargs.get("architecture", "resnet"), "resnet"),
                            ("activation", bk.get("activation", "lrelu"), "lrelu"),
                            ("mbstd_num_channels", ek.get("mbstd_num_channels", 1), 1)]:
        if value != ok:
            refuse(name, value, f"{name}={ok!r}")
    # ganrepro builds G and D of a model from one set of hyper-parameters.
    for name, value, key in [("img_resolution", kwargs["img_resolution"], "resolution"),
                             ("img_channels", kwargs.get("img_channels", 3), "channels"),
                             ("channel_base", kwargs.get("channel_base", 32 << 10), "channel_base"),
                             ("channel_max", kwargs.get("channel_max", 512), "channel_max")]:
        if int(value) != hparams[key]:
            refuse(name, value, f"{name}={hparams[key]}, the generator's: a ganrepro model's G and D share it")
    group = int(ek.get("mbstd_group_size", 4))
    if not 1 <= group <= 1024:
        refuse("mbstd_group_size", group, "mbstd_group_size from 1 to 1024")
    return {**hparams, "mbstd_group": group}
