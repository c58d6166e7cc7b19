"""Metrics: FID/KID through clean-fid, Precision/Recall, IS, cached real statistics."""

from ganrepro.metrics.evaluate import NAMES, Options, count_suffix, evaluate, write_json

__all__ = ["NAMES", "Options", "count_suffix", "evaluate", "write_json"]
