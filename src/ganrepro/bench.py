"""The benchmark suite (`ganrepro bench data|train|metrics|inception|models`): how fast
each stage runs on the current machine, printed with the machine's name.

Numbers from here go in docs/benchmarks.md together with the device line this prints;
tests never assert on wall-clock time. The throughput stage, whose numbers decide a claim,
is a pipeline stage of its own (ganrepro.training.throughput); its timing helpers serve
here too.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ganrepro.training.throughput import device_line, step_functions, step_seconds, sync, timed


def bench_data(num_images: int, resolution: int, loader_resolution: int,
               batch_size: int, loader_images: int = 4096) -> Iterator[str]:
    from ganrepro import data
    from ganrepro.data.loader import ImageDataset
    from ganrepro.settings import config

    yield device_line()
    with tempfile.TemporaryDirectory() as tmp:
        spec = config.resolve_dataset("bench", {"source": "shapes", "resolution": resolution,
                                                "num_images": num_images})
        t0 = time.perf_counter()
        data.prepare("bench", spec, Path(tmp) / "shapes", cache_dir=tmp)
        seconds = time.perf_counter() - t0
        yield (f"shapes generation: {num_images} images at {resolution}x{resolution} in "
               f"{seconds:.1f} s = {num_images / seconds:,.0f} img/s (one process, written to disk)")

        n = loader_images
        spec = config.resolve_dataset("bench", {"source": "shapes", "resolution": loader_resolution,
                                                "num_images": n})
        data.prepare("bench64", spec, Path(tmp) / "loader", cache_dir=tmp)
        dataset = ImageDataset(Path(tmp) / "loader", xflip=True)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                             num_workers=0, drop_last=True,
                                             generator=torch.Generator().manual_seed(0))
        seen, t0 = 0, time.perf_counter()
        for _ in range(3):   # three passes over the mirrored set
            for batch in loader:
                seen += batch.shape[0]
        seconds = time.perf_counter() - t0
        yield (f"loader: {seen} images at {loader_resolution}x{loader_resolution}, batch {batch_size}, "
               f"shuffled, x-flip, num_workers=0: {seen / seconds:,.0f} img/s")


def resolve_device(device: str) -> str:
    """The device a --device names (devices.resolve), as a string."""
    from ganrepro import devices

    return str(devices.resolve(device))


def _attention_share(layers, forward, steps: int, device: str) -> str:
    """Fraction of `forward`'s time spent inside the attention layers (forward hooks)."""
    spent, starts = [0.0], {}

    def pre(mod, _inp):
        sync(device)
        starts[mod] = time.perf_counter()

    def post(mod, _inp, _out):
        sync(device)
        spent[0] += time.perf_counter() - starts[mod]
    hooks = [h for m in layers for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        forward()                               # warm-up, not counted
        spent[0] = 0.0
        total = timed(forward, steps, device, warmup=False) * steps
    finally:
        for h in hooks:
            h.remove()
    return f"{100 * spent[0] / total:.0f}%"


def bench_models(cfg: dict, resolutions, batch_size: int, steps: int, device: str,
                 bf16: bool, channels_last: bool, compile_: bool) -> Iterator[str]:
    import contextlib

    from ganrepro import models
    from ganrepro.models.attention import BipartiteAttention
    from ganrepro.settings.registry import MODELS
    from ganrepro.settings.run import configured_hparams

    device = resolve_device(device)
    yield device_line()
    yield (f"batch {batch_size}, {steps} timed steps, device {device}, "
           f"{'bf16 autocast' if bf16 else 'fp32'}{', channels_last' if channels_last else ''}"
           f"{', torch.compile' if compile_ else ''}; hparams from the config's `hparams`")
    yield f"{'model':<18} {'res':>4} {'G fwd+bwd img/s':>16} {'D fwd+bwd img/s':>16} {'attention share of G fwd':>25}"
    autocast = (lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for res in resolutions:
        for name in MODELS:
            torch.manual_seed(0)
            net = models.build(name, **configured_hparams(cfg, name, res))
            G, D = (m.to(device).to(memory_format=fmt) for m in (net.G, net.D))
            if compile_:
                G, D = torch.compile(G), torch.compile(D)
            z = torch.randn(batch_size, *net.G.z_shape, device=device)
            img = torch.randn(batch_size, 3, res, res, device=device).to(memory_format=fmt)

            def g_step():
                with autocast():
                    loss = G(z).float().square().mean()
                loss.backward()

            def d_step():
                with autocast():
                    loss = D(img).float().square().mean()
                loss.backward()

            def g_forward():
                with torch.no_grad(), autocast():
                    G(z)

            g_time, d_time = timed(g_step, steps, device), timed(d_step, steps, device)
            layers = [m for m in net.G.modules() if isinstance(m, BipartiteAttention)]
            share = _attention_share(layers, g_forward, steps, device) if layers else "-"
            yield (f"{name:<18} {res:>4} {batch_size / g_time:>16.1f} {batch_size / d_time:>16.1f} {share:>25}")


SETTINGS = {   # name: (config file, resolution) -- the embedded default and the paper's 64 px
    "default": ("config/config.yaml", 16),
    "paper64": ("config/paper.yaml", 64),
}


def bench_train(settings, models_, steps: int, device: str, warmup: bool = True) -> Iterator[str]:
    """sec/kimg, img/s and peak memory of full training steps (G, D, R1, EMA) per model."""
    from ganrepro import data, devices
    from ganrepro.settings import config
    from ganrepro.training.distributed import Context
    from ganrepro.training.loop import Trainer

    device = resolve_device(device)
    yield device_line()
    yield (f"{steps} timed training steps{' after a warm-up' if warmup else ''}, device {device}; the lazy "
           "R1 step is timed apart and amortized over its interval")
    yield f"{'setting':<9} {'model':<18} {'res':>4} {'batch':>5} {'sec/kimg':>10} {'img/s':>8} {'peak MB':>9}"
    with tempfile.TemporaryDirectory() as tmp:
        for setting in settings:
            path, res = SETTINGS[setting]
            cfg = config.load(path)
            cfg["train"] = {**cfg["train"], "device": device, "num_workers": 0}
            ds = Path(tmp) / f"shapes{res}"
            if not ds.exists():
                spec = config.resolve_dataset("bench", {"source": "shapes", "resolution": res, "num_images": 256})
                data.prepare("bench", spec, ds)
            for model in models_:
                torch.manual_seed(0)
                trainer = Trainer(cfg, ds, model, Path(tmp) / "run" / setting / model, Context())
                batch = cfg["train"]["batch_size"]
                devices.reset_peak_memory(trainer.device)
                main_step, r1_step = step_functions(trainer, batch)
                if warmup:
                    main_step()
                    r1_step()
                seconds = step_seconds(trainer, main_step, r1_step, steps)
                peak = devices.peak_memory_mb(trainer.device)
                yield (f"{setting:<9} {model:<18} {res:>4} {batch:>5} {seconds / batch * 1000:>10.1f} "
                       f"{batch / seconds:>8.1f} {peak:>9.0f}")


def bench_metrics(settings, model: str, images: int, device: str, batch_size: int) -> Iterator[str]:
    """Inception feature throughput and the time of one FID evaluation per setting.

    The Inception network is timed on the reference path, then side by side with the
    `fast` path at 1 and 2 threads (`inception_side_by_side`, 3 interleaved rounds).

    `images` generated images are measured end to end (generate, quantize, resize,
    Inception); the fid10k/fid50k times are projected linearly from them plus the
    measured cost of the Frechet distance itself (a 2048x2048 matrix square root).
    """
    from ganrepro import models
    from ganrepro.metrics import inception, scores
    from ganrepro.metrics.evaluate import generate
    from ganrepro.metrics.features import Featurizer
    from ganrepro.settings import config
    from ganrepro.settings.run import configured_hparams

    device = resolve_device(device)
    dev = torch.device(device)
    yield device_line()
    extractor = inception.load(None, dev)
    featurizer = Featurizer(extractor, "clean")
    yield f"extractor: {extractor.name}; batch {batch_size}; {images} images per measurement"
    rng = np.random.default_rng(0)
    try:
        for res in sorted({r for _, r in SETTINGS.values()}):
            batch = rng.integers(0, 256, size=(batch_size, res, res, 3), dtype=np.uint8)
            resize = timed(lambda: featurizer.prepare(batch), 2, device)
            prepared = featurizer.prepare(batch)
            network = timed(lambda: extractor(prepared), 2, device)
            yield (f"Inception at {res} px: resize {batch_size / resize:,.0f} img/s, network "
                   f"{batch_size / network:,.1f} img/s, together {batch_size / (resize + network):,.1f} img/s")
        yield from inception_side_by_side(batch_size, 3, (1, 2), device)
        feats = rng.normal(size=(2 * 2048 + 1, 2048)).astype(np.float32)
        mu, sigma = scores.mean_cov(feats)
        t0 = time.perf_counter()
        scores.fid(mu, sigma, mu + 0.1, sigma)
        fid_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores.fid_cleanfid(mu, sigma, mu + 0.1, sigma)
        yield (f"Frechet distance (2048-d): {fid_s:.2f} s (clean-fid's sqrtm route: "
               f"{time.perf_counter() - t0:.2f} s, side by side)")
        yield f"{'setting':<9} {'model':<18} {'res':>4} {'gen+feat img/s':>15} {'fid10k s':>9} {'fid50k s':>9}"
        for setting in settings:
            path, res = SETTINGS[setting]
            cfg = config.load(path)
            torch.manual_seed(0)
            G = models.build_generator(model, **configured_hparams(cfg, model, res, 3)).eval().to(dev)
            run = lambda: featurizer.run(generate(G, images, 0, batch_size, dev))  # noqa: E731
            per_image = timed(run, 1, device) / images
            yield (f"{setting:<9} {model:<18} {res:>4} {1 / per_image:>15,.1f} "
                   f"{10000 * per_image + fid_s:>9,.0f} {50000 * per_image + fid_s:>9,.0f}")
    finally:
        featurizer.close()


def _conv_gflop(fast_module: torch.nn.Module, x: torch.Tensor) -> float:
    """GFLOP (2 per multiply-add) of one image through the convolutions of the fast
    Inception module, counted from the layers' shapes during one forward pass."""
    from ganrepro.metrics.inception_fast import ConvBNReLU

    macs = [0]

    def count(module, _inp, out):
        k, c, kh, kw = module.weight.shape
        macs[0] += out[0].numel() * c * kh * kw

    hooks = [m.register_forward_hook(count) for m in fast_module.modules() if isinstance(m, ConvBNReLU)]
    try:
        fast_module(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return 2 * macs[0] / 1e9


def _matmul_gflops(device: str, size: int = 2048) -> float:
    """GFLOP/s of a size^3 fp32 matrix product on the current torch threads (best of 3)."""
    a = torch.randn(size, size, device=device)
    best = min(timed(lambda: a @ a, 1, device) for _ in range(3))
    return 2 * size ** 3 / best / 1e9


def inception_side_by_side(batch_size: int, rounds: int, threads: tuple[int, ...], device: str) -> Iterator[str]:
    """The reference TorchScript Inception and the `fast` rebuild of the same verified file,
    timed side by side: per thread count, `rounds` rounds that each time one batch of each
    (the order alternating between rounds), after one untimed batch of each. Prints the
    median img/s of each, their ratio, how far the fast features are from the reference,
    and the fast path's GFLOP/s per thread against a large fp32 matrix product's on the
    same threads (the ceiling of a direct fp32 convolution)."""
    import dataclasses

    from ganrepro.errors import MetricsError
    from ganrepro.metrics import inception

    dev = torch.device(device)
    fast = inception.load(None, dev, "fast")
    if fast.kind != "fast":
        raise MetricsError(f"the fast Inception path does not know the network in {fast.path}")
    reference = dataclasses.replace(fast, kind="reference", fast=None)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(batch_size, 3, 299, 299),
                                                          dtype=np.uint8)).float()
    with torch.no_grad():
        gflop = _conv_gflop(fast.fast, ((x - 128) / 128).to(dev).contiguous(memory_format=torch.channels_last))
    before = torch.get_num_threads()
    yield (f"Inception side by side: {fast.name}; batch {batch_size} at 299x299, fp32, {rounds} interleaved "
           f"rounds; {gflop:.1f} GFLOP of convolution per image")
    try:
        for n in threads:
            torch.set_num_threads(n)
            ref_feats, fast_feats = reference(x), fast(x)           # untimed, and the features compared
            diff = float((fast_feats - ref_feats).abs().max() / ref_feats.abs().max())
            seconds: dict[str, list[float]] = {"reference": [], "fast": []}
            for r in range(rounds):
                order = (("reference", reference), ("fast", fast))
                for name, extractor in order if r % 2 == 0 else order[::-1]:
                    sync(device)
                    t0 = time.perf_counter()
                    extractor(x)
                    sync(device)
                    seconds[name].append(time.perf_counter() - t0)
            ref_rate = batch_size / float(np.median(seconds["reference"]))
            fast_rate = batch_size / float(np.median(seconds["fast"]))
            ceiling = f", matmul {_matmul_gflops(device):,.0f}" if dev.type == "cpu" else ""
            yield (f"threads {n}: reference {ref_rate:,.2f} img/s, fast {fast_rate:,.2f} img/s, "
                   f"ratio {fast_rate / ref_rate:.2f}x (max |fast - reference| / max |reference| = {diff:.1e}); "
                   f"GFLOP/s: reference {ref_rate * gflop:,.0f}, fast {fast_rate * gflop:,.0f}{ceiling}")
    finally:
        torch.set_num_threads(before)


def bench_inception(batch_size: int, rounds: int, threads: tuple[int, ...], device: str) -> Iterator[str]:
    """`ganrepro bench inception`: the device, then `inception_side_by_side`."""
    device = resolve_device(device)
    yield device_line()
    yield from inception_side_by_side(batch_size, rounds, threads, device)
