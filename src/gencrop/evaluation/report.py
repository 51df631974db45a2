"""Evaluation reports: ``summary.json``, ``per_image.csv``, ``index.html`` and one picture per photo.

The CSV is the record: every figure in ``summary.json`` (the method's and the
baselines') is a mean over its rows, so :func:`summary_from_csv` recomputes
them exactly. The HTML page shows the figures and, for every photo, the
ground truth, the prediction, the subject and the score heatmap, sortable
by IoU so the failures are one click away.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .. import __version__
from ..data.benchmarks import BenchmarkPhoto
from ..geometry import Box, summarize
from ..io import atomic_open, json_safe, read_json, save_image, write_json
from ..visualize import CROP_COLOR, SUBJECT_COLOR, TRUTH_COLOR, colormap
from .runner import EvalRun, PhotoResult

__all__ = [
    "THRESHOLD",
    "ThumbnailWriter",
    "draw_thumbnail",
    "write_report",
    "read_rows",
    "summary_from_csv",
    "compare_runs",
    "format_summary",
]

THRESHOLD = 0.75
FRAC_KEY = f"frac_iou_ge_{THRESHOLD}"
THUMB_DIR = "thumbs"

MAX_OTHER_GTS = 12  # other acceptable crops drawn thin when there are at most this many


# ----------------------------------------------------------------------------
# pictures
# ----------------------------------------------------------------------------
def _rect(draw: ImageDraw.ImageDraw, box: Box, scale: float, color, width: int, dash: int = 0) -> None:
    x1, y1, x2, y2 = (v * scale for v in box.xyxy)
    if x2 <= x1 or y2 <= y1:
        return
    if not dash:
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=color, width=width)
        return
    for ax, ay, bx, by in ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1)):
        length = math.hypot(bx - ax, by - ay)
        n = max(1, int(length // (2 * dash)))
        for k in range(n):
            t0, t1 = (2 * k) / (2 * n), (2 * k + 1) / (2 * n)
            draw.line(
                [ax + (bx - ax) * t0, ay + (by - ay) * t0, ax + (bx - ax) * t1, ay + (by - ay) * t1],
                fill=color,
                width=width,
            )


def draw_thumbnail(
    image: Image.Image, result: PhotoResult, photo: BenchmarkPhoto, heatmap: np.ndarray | None, max_side: int = 360
) -> Image.Image:
    """The photo with the ground truth scored against (thick green; other acceptable crops thin),
    the prediction (orange), the subject (cyan, dashed, mask tinted) and, beside it, the score
    heatmap over the photo: the colours of :mod:`gencrop.visualize`, as ``gencrop crop --visualize``."""
    W, H = image.size
    scale = min(1.0, max_side / max(W, H))
    tw, th = max(1, round(W * scale)), max(1, round(H * scale))
    base = image.resize((tw, th), Image.BILINEAR).convert("RGB")
    lw = max(2, round(max(tw, th) / 120))

    left = base.copy()
    mask = photo.subject_mask(tw, th, scale) if result.subject is not None or photo.mask_file is not None else None
    if mask is not None and mask.any():
        arr = np.asarray(left, np.float32)
        tint = np.array(SUBJECT_COLOR, np.float32)
        arr[mask] = arr[mask] * 0.65 + tint * 0.35
        left = Image.fromarray(arr.astype(np.uint8))
    others = [g for k, g in enumerate(photo.gts) if k != result.gt_index]
    if 0 < len(others) <= MAX_OTHER_GTS:  # a few alternatives help; GAICD's ~90 would hide the photo
        layer = Image.new("RGBA", left.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        for gt in others:
            _rect(d, gt, scale, TRUTH_COLOR + (150,), 1)
        left = Image.alpha_composite(left.convert("RGBA"), layer).convert("RGB")
    d = ImageDraw.Draw(left)
    if result.subject is not None:
        _rect(d, result.subject, scale, SUBJECT_COLOR, max(1, lw - 1), dash=max(3, lw * 3))
    if result.gt is not None:
        _rect(d, result.gt, scale, TRUTH_COLOR, lw)
    if result.pred is not None:
        _rect(d, result.pred, scale, CROP_COLOR, lw)

    if heatmap is None:
        return left
    # gencrop.visualize's presentation: scored (subject) cells relative to the top one, others not drawn
    hm = np.asarray(Image.fromarray(np.asarray(heatmap, np.float32), "F").resize((tw, th), Image.NEAREST))
    drawn = ~np.isnan(hm)
    arr = np.asarray(base, np.float32).copy()
    arr[drawn] = arr[drawn] * 0.45 + colormap(hm[drawn]).astype(np.float32) * 0.55
    right = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(right)
    if result.pred is not None:
        _rect(d, result.pred, scale, CROP_COLOR, lw)
    gap = max(4, lw * 2)
    out = Image.new("RGB", (2 * tw + gap, th), (255, 255, 255))
    out.paste(left, (0, 0))
    out.paste(right, (tw + gap, 0))
    return out


class ThumbnailWriter:
    """Writes ``thumbs/<index>.jpg`` for each photo as the run goes (the runner's ``on_photo``)."""

    def __init__(self, report_dir: str | os.PathLike, max_side: int = 360):
        self.dir = Path(report_dir) / THUMB_DIR
        self.max_side = max_side
        self.heatmaps = False  # whether any picture has the heatmap panel (the page lays them out wider)

    def __call__(self, result: PhotoResult, photo: BenchmarkPhoto, image, prediction) -> None:
        if image is None or not result.ok:
            return
        heatmap = prediction.heatmap if prediction is not None else None
        self.heatmaps |= heatmap is not None
        pic = draw_thumbnail(image, result, photo, heatmap, self.max_side)
        rel = f"{THUMB_DIR}/{result.index:05d}.jpg"
        save_image(pic, self.dir.parent / rel, quality=88)
        result.thumb = rel


# ----------------------------------------------------------------------------
# CSV and summary
# ----------------------------------------------------------------------------
def _box_cols(prefix: str, box: Box | None) -> dict:
    vals = box.xywh if box is not None else ("",) * 4
    return {f"{prefix}_{k}": v for k, v in zip("xywh", vals)}


def _csv_rows(run: EvalRun, baselines: dict[str, EvalRun]) -> list[dict]:
    rows = []
    for r in run.results:
        row = {
            "index": r.index,
            "name": r.name,
            "status": "ok" if r.ok else "failed",
            "error": r.error,
            "width": r.width,
            "height": r.height,
            "num_gts": r.num_gts,
            "gt_index": r.gt_index,
        }
        row.update(_box_cols("gt", r.gt))
        row.update(_box_cols("pred", r.pred))
        row.update(_box_cols("raw", r.raw))
        row.update(_box_cols("subject", r.subject))
        found = r.subject_found
        row["subject_source"] = getattr(found, "source", "")
        row["subject_class"] = getattr(found, "cls", "")
        row["subject_score"] = getattr(found, "score", "")
        row.update({"iou": r.iou if r.ok else "", "disp": r.disp if r.ok else "", "bde": r.disp / 4 if r.ok else ""})
        for bname, brun in baselines.items():
            b = brun.results[r.index]
            row[f"iou[{bname}]"] = b.iou if b.ok else ""
            row[f"disp[{bname}]"] = b.disp if b.ok else ""
        row["thumb"] = r.thumb
        rows.append(row)
    return rows


def write_report(
    report_dir: str | os.PathLike, run: EvalRun, baselines: dict[str, EvalRun] | None = None, command: str = ""
) -> dict:
    """Write ``summary.json``, ``per_image.csv`` and ``index.html``; returns the summary."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    baselines = baselines or {}
    rows = _csv_rows(run, baselines)
    fields = list(rows[0]) if rows else ["index", "name", "status", "iou", "disp"]
    with atomic_open(report_dir / "per_image.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    n_ok = len(run.ok)
    summary = {
        "benchmark": run.benchmark,
        "description": run.description,
        "method": run.method,
        **run.summary(),
        "num_failed": len(run.failed),
        "failed": [{"name": r.name, "error": r.error} for r in run.failed[:100]],
        "num_missing": len(run.missing),
        "missing": run.missing[:100],
        "baselines": {name: b.summary() for name, b in baselines.items()},
        "seconds": round(run.seconds, 3),
        "seconds_per_photo": round(run.seconds / n_ok, 4) if n_ok else None,
        "info": run.info,
        "command": command,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "gencrop_version": __version__,
    }
    write_json(report_dir / "summary.json", json_safe(summary))
    with atomic_open(report_dir / "index.html", "w", encoding="utf-8") as f:
        f.write(_html(run, baselines, summary))
    return summary


def read_rows(report_dir: str | os.PathLike) -> list[dict]:
    with open(Path(report_dir) / "per_image.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summary_from_csv(report_dir: str | os.PathLike) -> dict:
    """Recompute every figure of ``summary.json`` from ``per_image.csv``."""
    rows = read_rows(report_dir)
    ok = [r for r in rows if r["status"] == "ok"]
    out = summarize([float(r["iou"]) for r in ok], [float(r["disp"]) for r in ok], THRESHOLD)
    out["num_failed"] = len(rows) - len(ok)
    baselines = {}
    for col in rows[0] if rows else {}:
        if col.startswith("iou["):
            name = col[4:-1]
            vals = [r for r in rows if r[col] != ""]
            baselines[name] = summarize(
                [float(r[col]) for r in vals], [float(r[f"disp[{name}]"]) for r in vals], THRESHOLD
            )
    out["baselines"] = baselines
    return out


# ----------------------------------------------------------------------------
# console
# ----------------------------------------------------------------------------
def format_summary(summary: dict) -> str:
    """The figures in the published evaluation's order, plus the threshold fraction.

    The published code printed the BDE as ``Mean disp`` although it is the mean
    displacement already divided by 4; it is named BDE here, as everywhere else.
    """
    lines = [f"{summary['description'] or summary['benchmark']}: {summary['method']}, {summary['num_images']} photos"]
    if summary.get("num_missing"):
        lines.append(f"  ({summary['num_missing']} annotated photos are missing from the folder)")
    if summary.get("num_failed"):
        lines.append(f"  ({summary['num_failed']} photos failed; see summary.json)")
    lines.append(f"Mean IoU: {_fmt(summary['mean_iou'])}")
    lines.append(f"BDE: {_fmt(summary['mean_bde'])}")
    lines.append(f"IoU >= {THRESHOLD}: {_fmt(summary[FRAC_KEY])}")
    return "\n".join(lines)


def _fmt(v, digits: int = 4) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def compare_runs(run_dirs: list[str | os.PathLike]) -> str:
    """One table of several reports (and the baselines stored in them), for the console."""
    rows = []
    for d in run_dirs:
        path = Path(d) / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (not an evaluation report folder)")
        s = read_json(path)
        rows.append((str(d), s["benchmark"], s["method"], s))
        for name, b in (s.get("baselines") or {}).items():
            rows.append(("", s["benchmark"], name, b))
    header = ("run", "benchmark", "method", "photos", "IoU", "BDE", f"IoU>={THRESHOLD}")
    table = [header] + [
        (run, bench, method, str(s["num_images"]), _fmt(s["mean_iou"]), _fmt(s["mean_bde"]), _fmt(s.get(FRAC_KEY)))
        for run, bench, method, s in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for k, r in enumerate(table):
        cells = [c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    sets = {(b, s["num_images"]) for _, b, _, s in rows}
    if len(sets) > 1:
        lines.append("note: the runs cover different benchmarks or photo counts; compare with care")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------
_CSS = (
    ":root { --fg:#1d2330; --muted:#6b7385; --bg:#f5f6f8; --card:#fff; --line:#e2e5ea;\n"
    f"        --gt:rgb{TRUTH_COLOR}; --pred:rgb{CROP_COLOR}; --subj:rgb{SUBJECT_COLOR}; }}"
    """
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { padding:20px 28px 8px; }
h1 { font-size:22px; margin:0 0 4px; }
.sub { color:var(--muted); }
.warn { color:#b04a00; }
section { padding:8px 28px; }
table.fig { border-collapse:collapse; background:var(--card); border:1px solid var(--line); border-radius:8px; overflow:hidden; }
table.fig th, table.fig td { padding:7px 16px; text-align:right; border-bottom:1px solid var(--line); }
table.fig th:first-child, table.fig td:first-child { text-align:left; }
table.fig th { background:#eef0f4; font-weight:600; }
table.fig tr.main td { font-weight:600; }
table.fig td.best { color:#0a7a3c; }
.legend span { display:inline-block; margin-right:18px; color:var(--muted); }
.legend i { display:inline-block; width:22px; height:0; border-top:3px solid; vertical-align:middle; margin-right:6px; }
.controls { display:flex; gap:12px; align-items:center; flex-wrap:wrap; margin:6px 0 2px; }
.controls button { border:1px solid var(--line); background:var(--card); padding:5px 10px; border-radius:6px; cursor:pointer; font:inherit; }
.controls button.on { background:var(--fg); color:#fff; border-color:var(--fg); }
.controls input { border:1px solid var(--line); padding:5px 8px; border-radius:6px; font:inherit; min-width:220px; }
#grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(300px,1fr)); gap:14px; align-items:start; padding:10px 28px 28px; }
#grid.wide { grid-template-columns:repeat(auto-fill,minmax(460px,1fr)); }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; overflow:hidden; border-top:4px solid hsl(var(--h),70%,45%); }
.card img { display:block; width:100%; height:auto; background:#ddd; }
.card .cap { padding:6px 10px 8px; display:flex; justify-content:space-between; gap:8px; }
.card .name { color:var(--muted); overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.card .num { white-space:nowrap; font-variant-numeric:tabular-nums; }
.card .num b { font-size:15px; }
.nopic { padding:40px 10px; text-align:center; color:var(--muted); }
details { margin:8px 0; }
"""
)

_JS = """
const grid = document.getElementById('grid');
const cards = Array.from(grid.children);
function sortBy(key, dir, btn) {
  document.querySelectorAll('.controls button').forEach(b => b.classList.remove('on'));
  btn.classList.add('on');
  cards.sort((a, b) => {
    const x = a.dataset[key], y = b.dataset[key];
    const c = key === 'name' ? x.localeCompare(y) : parseFloat(x) - parseFloat(y);
    return dir * c || parseInt(a.dataset.index) - parseInt(b.dataset.index);
  });
  cards.forEach(c => grid.appendChild(c));
}
document.getElementById('filter').addEventListener('input', e => {
  const q = e.target.value.toLowerCase();
  cards.forEach(c => { c.style.display = c.dataset.name.toLowerCase().includes(q) ? '' : 'none'; });
});
"""


def _html(run: EvalRun, baselines: dict[str, EvalRun], summary: dict) -> str:
    esc = html.escape
    methods = [(run.method, summary, True)] + [(n, summary["baselines"][n], False) for n in baselines]

    def best(key, lower):
        vals = [s[key] for _, s, _ in methods if s[key] is not None and math.isfinite(s[key])]
        return (min(vals) if lower else max(vals)) if vals else None

    bests = {"mean_iou": best("mean_iou", False), "mean_bde": best("mean_bde", True), FRAC_KEY: best(FRAC_KEY, False)}
    fig_rows = []
    for name, s, main in methods:
        cells = "".join(
            f'<td class="{"best" if s[k] is not None and s[k] == bests[k] and len(methods) > 1 else ""}">{_fmt(s[k])}</td>'
            for k in ("mean_iou", "mean_bde", FRAC_KEY)
        )
        fig_rows.append(
            f'<tr class="{"main" if main else ""}"><td>{esc(name)}</td><td>{s["num_images"]}</td>{cells}</tr>'
        )

    notes = []
    if summary["num_missing"]:
        shown = ", ".join(esc(m) for m in run.missing[:8])
        notes.append(
            f'<p class="warn">{summary["num_missing"]} annotated photos are not in the folder and are '
            f"not scored (e.g. {shown}).</p>"
        )
    if summary["num_failed"]:
        items = "".join(f"<li>{esc(r.name)}: {esc(r.error)}</li>" for r in run.failed[:100])
        notes.append(
            f'<details class="warn"><summary>{summary["num_failed"]} photos failed</summary><ul>{items}</ul></details>'
        )

    cards = []
    for r in run.ok:
        hue = int(round(120 * max(0.0, min(1.0, r.iou))))
        pic = (
            f'<img loading="lazy" src="{esc(r.thumb)}" alt="{esc(r.name)}">'
            if r.thumb
            else '<div class="nopic">no picture</div>'
        )
        extra = ""
        if baselines:
            diffs = []
            for bname, brun in baselines.items():
                b = brun.results[r.index]
                if b.ok:
                    diffs.append(f"{bname} {b.iou:.3f}")
            extra = f' title="{esc(" | ".join(diffs))}"'
        cards.append(
            f'<div class="card" style="--h:{hue}" data-index="{r.index}" data-iou="{r.iou!r}" '
            f'data-bde="{r.disp / 4!r}" data-name="{esc(r.name)}"{extra}>{pic}'
            f'<div class="cap"><span class="name" title="{esc(r.name)}">{esc(r.name)}</span>'
            f'<span class="num">IoU <b>{r.iou:.3f}</b> · BDE {r.disp / 4:.3f}</span></div></div>'
        )

    masks = run.info.get("subject_masks", "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(run.method)} on {esc(run.benchmark)} · gencrop evaluation</title>
<style>{_CSS}</style></head>
<body>
<header>
<h1>{esc(run.method)} on {esc(summary["description"] or run.benchmark)}</h1>
<div class="sub">{summary["num_images"]} photos · {summary["created"]} · gencrop {esc(__version__)}
{(" · subject masks: " + esc(masks)) if masks else ""}</div>
</header>
<section>
<table class="fig"><thead><tr><th>method</th><th>photos</th><th>mean IoU ↑</th><th>BDE ↓</th>
<th>IoU ≥ {THRESHOLD}</th></tr></thead><tbody>
{"".join(fig_rows)}
</tbody></table>
{"".join(notes)}
</section>
<section>
<div class="legend"><span><i style="border-color:var(--gt)"></i>ground truth (thick: the one scored)</span>
<span><i style="border-color:var(--pred)"></i>prediction</span>
<span><i style="border-color:var(--subj);border-top-style:dashed"></i>subject (mask tinted)</span>
<span>right panel: heatmap, each subject cell's weight in the crop relative to the top cell
(blue 0 → red top); uncoloured cells are not weighted by the model's scores</span></div>
<div class="controls">sort:
<button class="on" onclick="sortBy('iou', 1, this)">IoU, worst first</button>
<button onclick="sortBy('iou', -1, this)">IoU, best first</button>
<button onclick="sortBy('bde', -1, this)">BDE, worst first</button>
<button onclick="sortBy('name', 1, this)">name</button>
<input id="filter" type="search" placeholder="filter by name">
</div>
</section>
<div id="grid"{' class="wide"' if run.info.get("heatmaps") else ""}>
{chr(10).join(cards)}
</div>
<script>{_JS}
sortBy('iou', 1, document.querySelector('.controls button'));
</script>
</body></html>
"""
