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


def fid_cleanfid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """clean-fid's Frechet distance (scipy's general sqrtm): the reference our faster
    route is tested against, and what `ganrepro bench metrics` times it against."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # clean-fid passes sqrtm's `disp`
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return float(cleanfid.frechet_distance(mu1, sigma1, mu2, sigma2))


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(S1 S2) for covariance matrices. S1 S2 is similar to S1^1/2 S2 S1^1/2, which
    is symmetric positive semi-definite, so the trace is the sum of the square roots of its
    eigenvalues: two symmetric eigendecompositions instead of a general matrix square root
    (several times faster at 2048 dimensions; `ganrepro bench metrics` times both; same
    value, see the tests)."""
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between two Gaussians (Heusel et al. 2017):
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)."""
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2))


def fid_features(feats: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, feats2: np.ndarray) -> float:
    """FID of a feature set against reference statistics. With fewer samples than feature
    dimensions (small CPU runs) the covariances are low-rank and the exact value comes from
    the features themselves: with centred F1 (n x d) and F2 (m x d), the non-zero eigenvalues
    of S1 S2 are those of M M^T / ((n-1)(m-1)) for M = F1 F2^T, so tr (S1 S2)^1/2 is M's
    nuclear norm over sqrt((n-1)(m-1)). FID is biased upward at small n either way; the
    sample count is in every metric's name."""
    f1, f2 = np.asarray(feats, np.float64), np.asarray(feats2, np.float64)
    (n, d), m = f1.shape, len(f2)
    mu1 = f1.mean(axis=0)
    if min(n, m) >= d:
        return fid(mu1, np.cov(f1, rowvar=False), mu2, sigma2)
    c1, c2 = f1 - mu1, f2 - f2.mean(axis=0)
    trace_root = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    diff = mu1 - np.asarray(mu2, np.float64)
    return float(diff @ diff + (c1 * c1).sum() / (n - 1) + (c2 * c2).sum() / (m - 1) - 2 * trace_root)


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
