"""The Trainer's GPU speed options, exercised on a CPU: torch.compile and channels_last
compute what eager mode computes (the same losses, step by step), and a compiled run
compiles once, not every step.

Adam's eps is 1 here: with the default 1e-8 its first steps are +-lr whatever a
gradient's size, so a rounding difference in a near-zero gradient flips a whole step and
the runs part ways for reasons that have nothing to do with the options under test.
Inductor draws random numbers its own way unless told to fall back to eager's generator,
which the compiled run does here so that both runs see the same noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch._dynamo
import torch._inductor.config
from torch._dynamo.utils import counters

from ganrepro import data
from ganrepro.settings import config
from ganrepro.data.loader import ImageDataset
from ganrepro.training import distributed
from ganrepro.training.loop import Trainer

MODEL = "stylegan2"
HPARAMS = {"mapping_layers": 2, "channel_base": 64, "channel_max": 16, "z_dim": 16, "w_dim": 16}
BATCH = 8


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "toy"
    data.prepare("toy", config.resolve_dataset("toy", {"source": "shapes", "resolution": 8, "num_images": 64}), out)
    return out


def trainer(toy, out, **options) -> Trainer:
    cfg = config.resolve({"datasets": {"toy": {"source": "shapes", "resolution": 8}}, "models": [MODEL],
                          "hparams": {MODEL: HPARAMS}, "kimg": [0, 1],
                          "train": {"batch_size": BATCH, "grid": 2, "num_workers": 0, "r1_interval": 4,
                                    "eps": 1.0, **options}})
    return Trainer(cfg, toy, MODEL, out, distributed.Context())


def batches(toy, sizes) -> list[torch.Tensor]:
    images = ImageDataset(toy)
    return [torch.stack([images[(BATCH * s + i) % len(images)] for i in range(n)]) for s, n in enumerate(sizes)]


def losses(trainer: Trainer, reals: list[torch.Tensor], after_each=lambda: None) -> list[tuple[float, float]]:
    """(G loss, D loss) of each step (R1 every 4th step, style mixing drawn at random)."""
    acc = {k: torch.zeros([]) for k in ("loss_G", "loss_D", "r1", "r1_n", "pl", "pl_n")}
    out = []
    for batch in reals:
        before = (float(acc["loss_G"]), float(acc["loss_D"]))
        trainer.step(batch, len(batch), acc)
        out.append((float(acc["loss_G"]) - before[0], float(acc["loss_D"]) - before[1]))
        after_each()
    return out


@pytest.fixture(scope="module")
def eager(toy, tmp_path_factory):
    sizes = [BATCH] * 4 + [4] + [BATCH] * 3           # step 4: a batch shortened to land on a snapshot
    return sizes, losses(trainer(toy, tmp_path_factory.mktemp("eager")), batches(toy, sizes))


def test_channels_last_gives_the_losses_of_eager(toy, tmp_path, eager):
    sizes, expected = eager
    run = trainer(toy, tmp_path, channels_last=True)
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in run.D.parameters())            # the option did reach the network
    got = losses(run, batches(toy, sizes))
    np.testing.assert_allclose(got, expected, rtol=1e-3)


@pytest.mark.slow                      # compiling takes one to two minutes on 2 cores
def test_compiled_training_gives_the_losses_of_eager_and_compiles_once(toy, tmp_path, eager):
    sizes, expected = eager
    torch._dynamo.reset()
    counters.clear()
    graphs = []                                         # compiled graphs so far, after each step
    with torch._inductor.config.patch(fallback_random=True):
        got = losses(trainer(toy, tmp_path, compile=True), batches(toy, sizes),
                     after_each=lambda: graphs.append(counters["stats"]["unique_graphs"]))
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    # G's passes and D's (with and without its gradients) compile on the first step, every
    # later full batch reuses them; the shortened batch compiles once more, shape-generic
    # (so the full batches after it, and any other length, reuse that).
    assert graphs[0] > 0
    assert graphs[1:4] == [graphs[0]] * 3
    assert graphs[5:] == [graphs[4]] * 3 and graphs[4] <= 2 * graphs[0]
