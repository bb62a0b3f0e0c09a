"""Reproducible CPU numerics: the instruction set oneDNN and MKL may use.

PyTorch's CPU kernels come from oneDNN (convolutions) and MKL (matrix products), which pick
their code path by the CPU's instruction set: the same training on an AVX-512 machine and on an
AVX2 machine rounds differently, and after a few epochs the predictions differ (measured in
BENCHMARKS.md: 0.0652 vs 0.0637 for the same patient after two epochs of a toy training). Pinning
both libraries to AVX2 (``train.cpu_isa=avx2``, the default; every x86-64 CPU since about 2015
has it) makes a machine with AVX-512 compute what an AVX2 machine computes. ``native`` lets them
use the fastest path (numbers then depend on the machine).

The libraries read these settings once, when the process first uses them, so they must be set
before the first convolution: the CLI sets them when it resolves a run's configuration, a
training unit sets them on start (a fresh Ray worker or kernel), and Ray tasks on a cluster get
them in their runtime environment.

Example:
    >>> env_for("avx2")
    {'ONEDNN_MAX_CPU_ISA': 'AVX2', 'MKL_CBWR': 'AVX2'}
"""
from __future__ import annotations

import os

#: ``train.cpu_isa`` -> the environment that pins it
ISA_ENV = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}, "native": {}}


def env_for(isa: str) -> dict[str, str]:
    """The environment variables ``train.cpu_isa=isa`` sets."""
    if isa not in ISA_ENV:
        raise ValueError(f"cpu_isa must be one of {list(ISA_ENV)}, got {isa!r}")
    return dict(ISA_ENV[isa])


def pin_cpu_isa(isa: str) -> dict[str, str]:
    """Set the environment for ``isa`` in this process (a variable the user set is kept) and
    return the effective values, for the unit's record."""
    for k, v in env_for(isa).items():
        os.environ.setdefault(k, v)
    return effective()


def effective() -> dict[str, str]:
    """What oneDNN and MKL are told in this process (``native`` when nothing is set)."""
    return {k: os.environ.get(k, "native") for k in ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR")}
