"""The evaluation protocol, in a module without torch (the Snakefile reads it to build the
DAG): the FID modes, the metric-name convention, and the plan of how each snapshot is
measured, which the evaluate rules and `ganrepro evaluate` by hand both follow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

# NVIDIA's TorchScript Inception (the TF network of the FID paper, as clean-fid uses it).
NVIDIA_FILE = "inception-2015-12-05.pt"
# clean-fid's modes: "clean" (PIL bicubic resize, any Inception copy) and
# "legacy_tensorflow" (the TF pipeline's resize inside NVIDIA's network: the protocol of
# the official FID-50k numbers).
FID_MODES = ("clean", "legacy_tensorflow")


def available_modes(weights_dir: str | Path) -> list[str]:
    """The modes this machine can measure in: legacy_tensorflow needs NVIDIA's file."""
    return list(FID_MODES) if (Path(weights_dir) / NVIDIA_FILE).is_file() else ["clean"]


def count_suffix(n: int) -> str:
    """The count in a metric's name, in StyleGAN's naming: 10000 -> '10k' (fid10k),
    50000 -> '50k', 500 -> '500', 0 -> '0'."""
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


def suffix_count(suffix: str) -> int:
    """The inverse of count_suffix: '10k' -> 10000, '200' -> 200."""
    return int(suffix[:-1]) * 1000 if suffix.endswith("k") else int(suffix)


# Disentanglement (DCI and modularity, ganrepro.metrics.disentanglement) reads the colours of
# the procedural scenes, so only datasets of these sources are scored; its scores are
# recorded under metrics["dci<count>"] (dci1k over 1,000 images) at the last checkpoint.
DISENTANGLEMENT_SOURCES = ("shapes",)
DCI = "dci"


def dci_name(n: int) -> str:
    """The metrics key of the disentanglement scores over n images: 1000 -> 'dci1k'."""
    return f"{DCI}{count_suffix(n)}"


# ---------------------------------------------------------------- the evaluation plan
# Which snapshot is measured: a training checkpoint, the last checkpoint of a run (also at
# final_num_gen and under `repeats` sampling seeds), or a released checkpoint (at
# final_num_gen alone, under `repeats` seeds).
CHECKPOINT, LAST, RELEASED = "checkpoint", "last", "released"
STAGES = (CHECKPOINT, LAST, RELEASED)


@dataclass(frozen=True)
class EvaluationPlan:
    """How one snapshot is measured, from the config's metrics section."""
    names: tuple[str, ...]          # fid, kid, pr, is
    num_gen: tuple[int, ...]        # generated-image counts, all from one pass
    num_real: int | str             # reals of the reference statistics, or "all"
    repeats: int                    # sampling seeds seed, seed+1, ...
    seed: int
    fid_mode: str
    batch_size: int
    weights_dir: str
    device: str
    extractor: str
    disentanglement: int | None = None   # images scored for DCI/modularity, None = not scored


def stage_of(kimg: int, last_kimg: int) -> str:
    """A training checkpoint's stage: LAST when it is its config's last kimg."""
    return LAST if int(kimg) == int(last_kimg) else CHECKPOINT


def plan(metrics: Mapping[str, Any], stage: str, source: str | None = None) -> EvaluationPlan:
    """The plan of a snapshot of `stage` under a (resolved) metrics section: num_gen at every
    checkpoint; the last one also final_num_gen (from the same pass) and `repeats` seeds, and
    the disentanglement scores over metrics.disentanglement images where its dataset's
    `source` is one the colour segmenter reads; a released checkpoint final_num_gen (else
    num_gen) under `repeats` seeds."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    num_gen, final = int(metrics["num_gen"]), metrics.get("final_num_gen")
    if stage == RELEASED:
        counts = (int(final or num_gen),)
    elif stage == LAST and final and final != num_gen:
        counts = (num_gen, int(final))
    else:
        counts = (num_gen,)
    n = metrics.get("disentanglement")
    disentangle = int(n) if n and stage == LAST and source in DISENTANGLEMENT_SOURCES else None
    return EvaluationPlan(
        names=tuple(metrics["names"]), num_gen=counts, num_real=metrics["num_real"],
        repeats=int(metrics["repeats"]) if stage != CHECKPOINT else 1, seed=int(metrics["seed"]),
        fid_mode=metrics["fid_mode"], batch_size=int(metrics["batch_size"]),
        weights_dir=str(metrics["weights_dir"]), device=metrics["device"], extractor=metrics["extractor"],
        disentanglement=disentangle)


def job_metrics(metrics: Mapping[str, Any], stage: str, source: str | None = None) -> dict[str, Any]:
    """The metrics section one evaluation job is given: what its plan does not read is set
    to a neutral value (final_num_gen null, repeats 1 below the last checkpoint, no
    disentanglement there or for another source; a released checkpoint's count moved into
    num_gen), so that an edit changes the params of exactly the jobs whose plan it changes.
    Planned as LAST (or as its own stage) for the same source it gives the snapshot the
    plan `plan(metrics, stage, source)`."""
    job = dict(metrics)
    p = plan(metrics, stage, source)
    job["num_gen"] = p.num_gen[0]
    job["final_num_gen"] = p.num_gen[1] if len(p.num_gen) > 1 else None
    job["repeats"] = p.repeats
    job["disentanglement"] = p.disentanglement
    return job
