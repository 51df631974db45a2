"""Scoring cropping methods on the published benchmarks, with reports and baselines.

>>> from gencrop.data.benchmarks import load_benchmark
>>> from gencrop.evaluation import evaluate, make_baseline, write_report
>>> bench = load_benchmark("fcdb", "~/benchmarks")
>>> run = evaluate(bench, make_baseline("center:0.8"))
>>> run.summary()   # {"num_images", "mean_iou", "mean_bde", "frac_iou_ge_0.75"}
"""

from .baselines import BASELINES, ModelMethod, Prediction, make_baseline, subject_window
from .report import compare_runs, summary_from_csv, write_report
from .runner import EvalRun, PhotoResult, evaluate

__all__ = [
    "BASELINES",
    "ModelMethod",
    "Prediction",
    "make_baseline",
    "subject_window",
    "evaluate",
    "EvalRun",
    "PhotoResult",
    "write_report",
    "summary_from_csv",
    "compare_runs",
]
