"""The numbers: FID and KID through clean-fid, Precision/Recall, Inception Score."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from cleanfid import fid as cleanfid
from scipy import linalg

from ganrepro.errors import MetricsError

IS_SPLITS = 10
PR_K = 3


def mean_cov(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between two Gaussians, by clean-fid's implementation. With fewer
    samples than feature dimensions the covariances are singular and FID is biased upward
    (SciPy warns each time; the sample count is in every metric's name instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # clean-fid passes sqrtm's `disp`
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return float(cleanfid.frechet_distance(mu1, sigma1, mu2, sigma2))


def kid(feats1: np.ndarray, feats2: np.ndarray, seed: int) -> float:
    """Kernel Inception Distance (unbiased MMD^2, cubic kernel) by clean-fid. clean-fid
    draws its subsets from NumPy's global generator: seed it here, and put it back."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return float(cleanfid.kernel_distance(np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)))
    finally:
        np.random.set_state(state)


def _kth_neighbour_radii(feats: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (self excluded)."""
    radii = []
    for rows in feats.split(chunk):
        d = torch.cdist(rows, feats)
        radii.append(d.kthvalue(k + 1, dim=1).values)                 # +1: the point itself is at 0
    return torch.cat(radii)


def _covered(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """For each query, whether it lies inside any support point's k-NN ball."""
    inside = []
    for rows in queries.split(chunk):
        inside.append((torch.cdist(rows, support) <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K, device: str | torch.device = "cpu",
                     chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): precision is the share of
    generated samples inside the real manifold (union of k-NN balls of the reals), recall
    the share of reals inside the generated manifold."""
    if min(len(real), len(fake)) <= k:
        raise MetricsError(f"precision/recall with k={k} needs more than {k} real and generated images")
    r = torch.as_tensor(real, dtype=torch.float32, device=device)
    f = torch.as_tensor(fake, dtype=torch.float32, device=device)
    precision = _covered(f, r, _kth_neighbour_radii(r, k, chunk), chunk).float().mean().item()
    recall = _covered(r, f, _kth_neighbour_radii(f, k, chunk), chunk).float().mean().item()
    return precision, recall


def inception_score(probs: np.ndarray, splits: int = IS_SPLITS) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over `splits` equal parts."""
    if len(probs) < splits:
        raise MetricsError(f"the Inception Score with {splits} splits needs at least {splits} images")
    scores = []
    for part in np.array_split(np.asarray(probs, np.float64), splits):
        p_y = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(p_y + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
