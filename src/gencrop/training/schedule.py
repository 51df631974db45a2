"""Learning-rate schedule: linear warm-up, then cosine decay to zero."""

from __future__ import annotations

import math

import torch

__all__ = ["warmup_steps", "cosine_with_warmup"]


def warmup_steps(requested: int, total: int) -> int:
    """The paper's 500 warm-up steps, shortened to a tenth of a short run so it still decays."""
    return max(1, min(int(requested), int(total) // 10)) if total > 0 else 1


class _CosineWithWarmup:
    """A picklable lr multiplier (so the scheduler's state saves and restores cleanly)."""

    def __init__(self, warmup: int, total: int):
        self.warmup, self.total = int(warmup), max(int(total), 1)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _CosineWithWarmup(warmup, total))
