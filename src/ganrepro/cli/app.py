"""The `ganrepro` command group: logging, and errors a user can fix as one line."""

from __future__ import annotations

import logging

import click

from ganrepro import __version__
from ganrepro.errors import GanreproError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GanreproError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:      # a full disk under a write that bypassed files.atomic_write
            from ganrepro.files import unhandled_disk_full

            if (full := unhandled_disk_full(err)) is None:
                raise
            raise click.ClickException(str(full)) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ganrepro")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
def main(verbose: bool) -> None:
    """Reproduce 'Generative Adversarial Transformers' step by step."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
