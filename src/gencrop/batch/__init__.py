"""Cropping a whole catalogue on a cluster: Ray Data jobs, resumable, from and to object storage.

``gencrop batch`` and :func:`crop_catalogue` (needs the ``ray`` extra); see docs/scale.md.
:mod:`gencrop.batch.catalogue` (sources, the results table, resuming) needs pyarrow only,
:mod:`gencrop.batch.ray_job` (the crop actor and the job) Ray as well.
"""

from __future__ import annotations

__all__ = ["crop_catalogue", "read_results", "CropPhotos"]


def __getattr__(name: str):
    # Ray loads in seconds: only when a job is run, never on `import gencrop.batch`
    if name in ("crop_catalogue", "CropPhotos"):
        from . import ray_job

        return getattr(ray_job, name)
    if name == "read_results":
        from .catalogue import read_results

        return read_results
    raise AttributeError(f"module 'gencrop.batch' has no attribute {name!r}")
