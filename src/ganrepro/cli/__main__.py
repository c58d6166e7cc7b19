"""`python -m ganrepro.cli ...` (what torchrun starts for a multi-GPU training job)."""

from ganrepro.cli import main

main()
