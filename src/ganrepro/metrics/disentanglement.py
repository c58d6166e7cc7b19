"""Disentanglement of a generator's latents: DCI and modularity against scene factors.

The paper (Section 4.3, Table 3) scores how well single latent coordinates line up with
single image attributes. Its attributes are the area each semantic class covers in a
generated image, as a pre-trained segmentor labels it; its scores are DCI (Eastwood &
Williams 2018) and modularity. We do the same on the procedural `shapes` data, where a
segmentor needs no training: every object is drawn in one of CLEVR's colours, shading only
scales a colour and a metal highlight only whitens it, so a pixel's chromaticity names
its colour class. The factors of an image are the fractions of its pixels in each of the
seven chromatic classes (gray objects look like the gray table and are left out).

What is scored, and how it differs from the paper (which does not say all of it):
- codes: the sampled input latent z, flattened (for a GANformer, its k local components
  and the global one, k + 1 blocks of z_dim). z is the one space every model shares.
- importances: the absolute weights of a Lasso fit from the standardised codes to each
  standardised factor (Eastwood & Williams' linear option), its penalty picked on held-out
  samples so that a code unrelated to every factor gets no weight (see `fit`). The paper follows Wu et al.
  2020, whose author used disentanglement_lib's gradient-boosted trees; scikit-learn is
  not a dependency here, and the Lasso is a few lines of numpy.
- informativeness: the mean held-out R^2 of those fits (1 is perfect, 0 no better than
  the mean). Eastwood & Williams report an error instead; R^2 keeps "higher is better".
- modularity: Ridgeway & Mozer's score on histogram mutual information, as
  disentanglement_lib computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ganrepro.data.shapes import COLOURS
from ganrepro.errors import MetricsError

# The chromatic CLEVR colours (gray has no hue and is left out), as unit RGB directions.
FACTOR_NAMES = tuple(name for name in COLOURS if name != "gray")
_DIRECTIONS = np.array([COLOURS[n] for n in FACTOR_NAMES], dtype=np.float64)
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)
MIN_SATURATION = 0.5      # (max - min) / max of a pixel: the colours have ~0.8, the table and
                          # shadows < 0.15; edge pixels blended with the table fall out
MIN_COSINE = 0.95         # a saturated pixel this far from every colour direction is no class
ALPHAS = (0.3, 0.1, 0.03, 0.01)   # Lasso penalties tried (on standardised data)
R2_SLACK = 0.01           # the largest penalty whose validation R^2 is this close to the best wins
MIN_R2 = 0.02             # a factor no penalty predicts better than this gets no importances
TRAIN_FRACTION = 0.8
MIN_SUPPORT = 0.05        # a factor counts where it is non-zero in this share of both the fitted
                          # and the held-out images: a colour in a handful of images is no factor,
                          # and its held-out R^2 (against a spread near 0) runs to -1e30
BINS = 20                 # histogram bins for mutual information, as disentanglement_lib


def colour_areas(images: np.ndarray) -> np.ndarray:
    """[N, H, W, 3] uint8 -> [N, 7]: the fraction of each image's pixels in each chromatic
    CLEVR colour class (FACTOR_NAMES order)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise MetricsError(f"colour areas need RGB images [N, H, W, 3], got shape {images.shape}")
    px = images.reshape(len(images), -1, 3).astype(np.float64)
    top = px.max(axis=2)
    saturation = np.where(top > 0, (top - px.min(axis=2)) / np.maximum(top, 1e-9), 0.0)
    unit = px / np.maximum(np.linalg.norm(px, axis=2, keepdims=True), 1e-9)
    cosine = unit @ _DIRECTIONS.T                           # [N, P, 7]
    best = cosine.argmax(axis=2)
    ok = (saturation >= MIN_SATURATION) & (cosine.max(axis=2) >= MIN_COSINE)
    counts = np.stack([((best == c) & ok).sum(axis=1) for c in range(len(FACTOR_NAMES))], axis=1)
    return counts / px.shape[1]


def _standardise(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return (x - mean) / np.where(sd > 0, sd, 1.0)


def lasso(X: np.ndarray, Y: np.ndarray, alpha: float, iterations: int = 3000) -> np.ndarray:
    """Weights [D, K] minimising |Y - XW|^2 / 2N + alpha |W|_1 for every column of Y at once
    (FISTA from zero: deterministic, and equal columns of X get equal weights)."""
    n = len(X)
    step = 1.0 / max(np.linalg.eigvalsh(X.T @ X / n)[-1], 1e-12)
    W = np.zeros((X.shape[1], Y.shape[1]))
    V, t = W, 1.0
    for _ in range(iterations):
        G = V - step * (X.T @ (X @ V - Y)) / n
        W_next = np.sign(G) * np.maximum(np.abs(G) - step * alpha, 0.0)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        V = W_next + (t - 1) / t_next * (W_next - W)
        if np.abs(W_next - W).max() < 1e-10:
            W = W_next
            break
        W, t = W_next, t_next
    return W


def _entropy_scores(P: np.ndarray, base: int) -> np.ndarray:
    """1 - entropy (log base `base`) of every row of P (rows sum to 1; a zero row scores 0)."""
    if base < 2:
        return np.ones(len(P))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(P > 0, P * np.log(P), 0.0).sum(axis=1) / math.log(base)
    return np.where(P.sum(axis=1) > 0, 1.0 - h, 0.0)


def dci_from_importance(R: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix R [codes, factors] >= 0.
    Disentanglement: 1 - entropy of each code over the factors, weighted by the code's
    share of all importance. Completeness: 1 - entropy of each factor over the codes,
    averaged over the factors. An all-zero R scores (0, 0)."""
    R = np.abs(np.asarray(R, dtype=np.float64))
    total = R.sum()
    if total <= 0:
        return 0.0, 0.0
    codes, factors = R.shape
    row, col = R.sum(axis=1, keepdims=True), R.sum(axis=0, keepdims=True)
    per_code = _entropy_scores(np.divide(R, row, out=np.zeros_like(R), where=row > 0), factors)
    per_factor = _entropy_scores(np.divide(R, col, out=np.zeros_like(R), where=col > 0).T, codes)
    return float((per_code * row[:, 0] / total).sum()), float(per_factor.mean())


@dataclass
class DCI:
    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray          # [codes, factors]


def _check(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = np.asarray(codes, np.float64), np.asarray(factors, np.float64)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise MetricsError(f"disentanglement needs codes [N, D] and factors [N, K] with the same N, "
                           f"got {codes.shape} and {factors.shape}")
    if len(codes) < 10:
        raise MetricsError(f"disentanglement needs at least 10 samples, got {len(codes)}")
    if not (np.isfinite(codes).all() and np.isfinite(factors).all()):
        raise MetricsError("disentanglement: the codes or factors hold NaN or infinite values")
    return codes, factors


def _r2(X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    resid = ((Y - X @ W) ** 2).sum(axis=0)
    spread = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - resid / np.where(spread > 0, spread, 1.0)


def fit(X: np.ndarray, Y: np.ndarray, alphas=ALPHAS) -> np.ndarray:
    """Lasso weights [D, K] with the penalty chosen per factor: fitted on the first 3/4 of
    the samples for every penalty, the largest one whose R^2 on the last quarter is within
    R2_SLACK of the best wins (a sparser fit that predicts as well), then refitted on all.
    A code unrelated to a factor thus gets weight 0 rather than a fitted-noise weight, and
    a factor that no fit predicts (best R^2 below MIN_R2) gets no importances at all."""
    cut = (3 * len(X)) // 4
    alphas = sorted(alphas, reverse=True)
    r2 = np.stack([_r2(X[cut:], Y[cut:], lasso(X[:cut], Y[:cut], a)) for a in alphas])   # [A, K]
    W = np.zeros((X.shape[1], Y.shape[1]))
    chosen = [int(np.flatnonzero(r2[:, k] >= r2[:, k].max() - R2_SLACK)[0]) if r2[:, k].max() >= MIN_R2
              else None for k in range(Y.shape[1])]
    for a in set(chosen) - {None}:
        cols = [k for k, c in enumerate(chosen) if c == a]
        W[:, cols] = lasso(X, Y[:, cols], alphas[a])
    return W


def _cut(n: int, train_fraction: float) -> int:
    cut = int(round(n * train_fraction))
    if not 8 <= cut <= n - 2:
        raise MetricsError(f"train_fraction {train_fraction} leaves too few samples on one side")
    return cut


def usable_factors(factors: np.ndarray, train_fraction: float = TRAIN_FRACTION) -> np.ndarray:
    """[K] bool: the factors that vary, and are non-zero in at least MIN_SUPPORT of the images,
    in both the fitted part and the held-out part of the samples."""
    cut = _cut(len(factors), train_fraction)
    ok = np.ones(factors.shape[1], dtype=bool)
    for part in (factors[:cut], factors[cut:]):
        ok &= (part.std(axis=0) > 0) & ((part != 0).mean(axis=0) >= MIN_SUPPORT)
    return ok


def dci(codes: np.ndarray, factors: np.ndarray, train_fraction: float = TRAIN_FRACTION) -> DCI:
    """DCI of codes [N, D] against factors [N, K]: Lasso importances (see `fit`) from the
    first train_fraction of the samples, informativeness as the mean R^2 on the rest.
    Only the usable factors count (`usable_factors`): one that never varies, or appears in
    too few images, carries no information."""
    codes, factors = _check(codes, factors)
    cut = _cut(len(codes), train_fraction)
    factors = factors[:, usable_factors(factors, train_fraction)]
    if factors.shape[1] == 0:
        raise MetricsError("disentanglement: no factor varies over the samples (no coloured objects found?)")
    mx, sx = codes[:cut].mean(0), codes[:cut].std(0)
    my, sy = factors[:cut].mean(0), factors[:cut].std(0)
    X, Y = _standardise(codes[:cut], mx, sx), _standardise(factors[:cut], my, sy)
    W = fit(X, Y)
    d, c = dci_from_importance(np.abs(W))
    Xt, Yt = _standardise(codes[cut:], mx, sx), _standardise(factors[cut:], my, sy)
    return DCI(d, c, float(_r2(Xt, Yt, W).mean()), np.abs(W))


def _discretise(x: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = x.min(axis=0), x.max(axis=0)
    scaled = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.minimum((scaled * bins).astype(np.int64), bins - 1)


def mutual_information(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> np.ndarray:
    """[D, K] mutual information (nats) between equal-width histogram bins of each code and
    each factor."""
    a, b = _discretise(codes, bins), _discretise(factors, bins)
    n = len(a)
    out = np.zeros((a.shape[1], b.shape[1]))
    for j in range(b.shape[1]):
        pb = np.bincount(b[:, j], minlength=bins) / n
        for i in range(a.shape[1]):
            joint = np.bincount(a[:, i] * bins + b[:, j], minlength=bins * bins).reshape(bins, bins) / n
            pa = joint.sum(axis=1)
            nz = joint > 0
            out[i, j] = (joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum()
    return out


def modularity(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> float:
    """Ridgeway & Mozer's modularity: for each code, 1 - the squared information it shares
    with all but its main factor, relative to the main one; averaged over the codes that
    carry any information. 1 when each code informs about one factor only."""
    codes, factors = _check(codes, factors)
    factors = factors[:, usable_factors(factors)]
    if factors.shape[1] < 2:
        raise MetricsError("modularity needs at least two factors that vary over the samples")
    mi = mutual_information(codes, factors, bins)
    top = mi.max(axis=1)
    keep = top > 0
    if not keep.any():
        return 0.0
    mi, top = mi[keep], top[keep]
    template = np.zeros_like(mi)
    template[np.arange(len(mi)), mi.argmax(axis=1)] = top
    deviation = ((mi - template) ** 2).sum(axis=1) / (top ** 2 * (mi.shape[1] - 1))
    return float((1.0 - deviation).mean())


SCORE_NAMES = ("disentanglement", "completeness", "informativeness", "modularity")


def scores(codes: np.ndarray, factors: np.ndarray) -> dict[str, float]:
    """The paper's Table 3 columns we can compute, as a flat record."""
    d = dci(codes, factors)
    return {"disentanglement": d.disentanglement, "completeness": d.completeness,
            "informativeness": d.informativeness, "modularity": modularity(codes, factors)}


def score_images(codes: np.ndarray, images: np.ndarray, seed: int) -> dict:
    """The scores of codes [N, D] (the flattened z of each image) against the colour areas
    of their images [N, H, W, 3] uint8, with what they were measured on, as a flat record
    (`ganrepro.metrics.evaluate.measure_disentanglement` draws both from a generator)."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise MetricsError(f"disentanglement reads colours and needs RGB images; this generator makes "
                           f"{images.shape[-1] if images.ndim == 4 else '?'}-channel ones")
    factors = colour_areas(images)
    record = scores(codes, factors)
    record.update({"num_images": len(codes), "seed": seed, "codes": int(codes.shape[1]),
                   "factors": [name for name, ok in zip(FACTOR_NAMES, usable_factors(factors)) if ok],
                   "mean_area": {name: float(a) for name, a in zip(FACTOR_NAMES, factors.mean(axis=0))}})
    return record
