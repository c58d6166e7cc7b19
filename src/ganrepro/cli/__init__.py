"""`ganrepro`: the command line every Snakemake rule calls, one module per stage.

Errors a user can fix (GanreproError) are printed as one line, `Error: ...`, with exit
status 1 and no traceback. Each command imports what it needs inside its body, so
`ganrepro --help` and the cheap commands start without torch.
"""

from ganrepro.cli import bench, checkpoints, config, data, disentanglement, evaluate, generate, models, report, train  # noqa: F401  (register)
from ganrepro.cli.app import main

__all__ = ["main"]
