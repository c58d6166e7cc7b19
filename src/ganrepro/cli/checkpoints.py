"""`ganrepro download` and `ganrepro import-checkpoint`: released checkpoints."""

from __future__ import annotations

import re

import click

from ganrepro.cli.app import main
from ganrepro.errors import ConfigError
from ganrepro.settings.registry import MODELS

_SHA256 = re.compile(r"[0-9a-f]{64}")


@main.command("download")
@click.argument("url")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where the file goes.")
@click.option("--sha256", help="Expected SHA-256 (64 lower-case hex digits) [default: trust the first "
              "complete download and verify against its recorded digest from then on].")
@click.option("--size", type=click.IntRange(1), help="Expected size in bytes.")
def download_command(url, out, sha256, size) -> None:
    """Download URL (http, https or file) to --out: resumable, verified, atomic (a
    released checkpoint, an archive). An existing verified file is kept."""
    from ganrepro.data.download import fetch

    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise ConfigError(f"--sha256 must be 64 lower-case hexadecimal digits (got {sha256!r})")
    digest = fetch(url, out, sha256, size)
    click.echo(f"{out}: sha256 {digest}")


@main.command("import-checkpoint")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The ganrepro snapshot to write (with --network D: the discriminator file).")
@click.option("--network", default="Gs", show_default=True, type=click.Choice(["Gs", "G", "D"]),
              help="Gs = the EMA generator (what the official metrics measure), G = the trained one, "
                   "D = the discriminator (written as a discriminator file, see ganrepro.checkpoints.discriminator).")
@click.option("--expect-sha256", help="Refuse the file unless its SHA-256 is this.")
@click.option("--expect-model", type=click.Choice([name for name, entry in MODELS.items() if entry.from_tf]),
              help="Refuse the file unless it imports as this model.")
def import_checkpoint_command(file, out, network, expect_sha256, expect_model) -> None:
    """Import an official GANformer checkpoint (the released TensorFlow pickles, or a
    PyTorch network-snapshot-*.pkl) as a ganrepro snapshot, or its discriminator as a
    discriminator file (--network D). The file is read with a restricted unpickler: no
    code from it runs, and any global outside the official formats is refused."""
    from ganrepro.checkpoints.released import import_checkpoint

    if expect_sha256 is not None and not _SHA256.fullmatch(expect_sha256):
        raise ConfigError(f"--expect-sha256 must be 64 lower-case hexadecimal digits (got {expect_sha256!r})")
    info = import_checkpoint(file, out, network, expect_sha256, expect_model)
    hp = info["hparams"]
    click.echo(f"{out}: {info['model']} at {hp['resolution']} px, {info['parameters']:,} parameters, "
               f"from {info['source']['format']} {file} ({network}, sha256 {info['source']['sha256']})")
