"""Facts of the evaluation protocol that the metrics code and the workflow share, in a
module without torch (the Snakefile reads them to build the DAG)."""

from __future__ import annotations

from pathlib import Path

# NVIDIA's TorchScript Inception (the TF network of the FID paper, as clean-fid uses it).
NVIDIA_FILE = "inception-2015-12-05.pt"
# clean-fid's modes: "clean" (PIL bicubic resize, any Inception copy) and
# "legacy_tensorflow" (the TF pipeline's resize inside NVIDIA's network: the protocol of
# the official FID-50k numbers).
FID_MODES = ("clean", "legacy_tensorflow")


def available_modes(weights_dir: str | Path) -> list[str]:
    """The modes this machine can measure in: legacy_tensorflow needs NVIDIA's file."""
    return list(FID_MODES) if (Path(weights_dir) / NVIDIA_FILE).is_file() else ["clean"]
