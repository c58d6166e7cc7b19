"""Metrics: FID/KID through clean-fid, Precision/Recall, IS, cached real statistics."""

from ganrepro.metrics.evaluate import NAMES, Options, evaluate, write_json

__all__ = ["NAMES", "Options", "evaluate", "write_json"]
