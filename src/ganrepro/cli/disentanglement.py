"""`ganrepro disentanglement`: the paper's Table 3 scores (DCI, modularity) of a snapshot
trained on `shapes`, against the colour areas of its generated scenes."""

from __future__ import annotations

import json
import logging

import click

from ganrepro.cli.app import main
from ganrepro.cli.options import SEED
from ganrepro.settings.limits import BATCH_MAX, NUM_GEN_MAX

log = logging.getLogger(__name__)


@main.command("disentanglement")
@click.option("--snapshot", required=True, type=click.Path(dir_okay=False),
              help="snapshot-KIMG.pt of a model trained on a `shapes` dataset (RGB).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSON file to write.")
@click.option("--num-images", default=1000, show_default=True, type=click.IntRange(10, NUM_GEN_MAX),
              help="Generated images scored (the paper used 1,000).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the latents and noise.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, BATCH_MAX))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def disentanglement(snapshot: str, out: str, num_images: int, seed: int, batch_size: int, device: str) -> None:
    """Score how single latent values line up with single scene colours (docs/metrics.md)."""
    from ganrepro import devices
    from ganrepro.files import atomic_write_text
    from ganrepro.metrics.evaluate import measure_disentanglement as measure
    from ganrepro.models import load_snapshot

    dev = devices.resolve(device)
    G, meta = load_snapshot(snapshot, dev)
    record = {"format": 1, "snapshot": snapshot, "model": meta["model"], "kimg": meta["kimg"],
              **measure(G, num_images, seed, batch_size, dev)}
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    log.info("%s kimg %s: D %.3f C %.3f I %.3f modularity %.3f", meta["model"], meta["kimg"],
             record["disentanglement"], record["completeness"], record["informativeness"], record["modularity"])
