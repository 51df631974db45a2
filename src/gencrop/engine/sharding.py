"""Splitting a stage's work between processes, GPUs or machines.

Every process of a job sorts the same list of keys and takes every N-th one
starting at its own index K, so N processes cover the list exactly once
without talking to each other. The shard comes from ``--part K N`` when given,
otherwise from the launcher's environment:

* ``torchrun`` and ``accelerate launch --multi_gpu`` set ``RANK`` / ``WORLD_SIZE``;
* MPI launchers (what ``accelerate launch --cpu --mpirun_hostfile`` runs) set
  ``OMPI_COMM_WORLD_RANK`` / ``PMI_RANK`` and friends.

Note that ``accelerate launch --cpu --num_processes N`` without an MPI host
file starts a single process (accelerate's own behaviour); that process then
simply does all the work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")

# (rank variable, world-size variable), most common launcher first.
_LAUNCHER_ENV = (
    ("RANK", "WORLD_SIZE"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("PMI_RANK", "PMI_SIZE"),
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),
    ("PMIX_RANK", "PMIX_SIZE"),
)
_LOCAL_RANK_ENV = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based); ``Shard(0, 1)`` is the whole job."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard must satisfy 0 <= K < N; got K={self.index}, N={self.count}")

    @property
    def is_whole(self) -> bool:
        return self.count == 1

    @property
    def tag(self) -> str:
        """A file-name-safe label such as ``part0-of-2``."""
        return f"part{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return "all" if self.is_whole else f"part {self.index}/{self.count}"

    def select(self, keys: Sequence[T]) -> list[T]:
        """This shard's share of ``keys``: every ``count``-th of the sorted keys, from ``index``."""
        return sorted(keys)[self.index :: self.count]


def shard_from_env(environ: dict | None = None) -> Shard:
    """The shard implied by a distributed launcher's environment (whole job if none)."""
    env = os.environ if environ is None else environ
    for rank_var, size_var in _LAUNCHER_ENV:
        if rank_var in env and size_var in env:
            try:
                return Shard(int(env[rank_var]), int(env[size_var]))
            except ValueError:
                continue
    return Shard()


def resolve_shard(part: Sequence[int] | None = None, environ: dict | None = None) -> Shard:
    """``--part K N`` if given, else the launcher's environment."""
    if part is not None:
        k, n = (int(v) for v in part)
        return Shard(k, n)
    return shard_from_env(environ)


def local_rank(environ: dict | None = None) -> int:
    """This process's index on its machine (which GPU it should use)."""
    env = os.environ if environ is None else environ
    for var in _LOCAL_RANK_ENV:
        if var in env:
            try:
                return int(env[var])
            except ValueError:
                pass
    return 0


def default_device(device: str | None = None) -> str:
    """``device`` if given; else this process's own GPU when there is one, else the CPU."""
    if device:
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{local_rank() % torch.cuda.device_count()}"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
