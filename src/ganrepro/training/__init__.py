"""Training stage: `ganrepro train` -> results/runs/{dataset}/{model}/ (see run_files.py)."""

from ganrepro.training.loop import TrainingError, dry_run, train

__all__ = ["train", "dry_run", "TrainingError"]
