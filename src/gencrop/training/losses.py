"""The GenCrop training loss.

``L1(frame) + 0.1 * L1(every cell's crop) + 10 * subject boundary loss``, all
on normalised xyxy boxes (pixels of the square input divided by its size).
The per-cell term keeps every cell's regression meaningful, not only the
weighted mix; the boundary term discourages cutting through the subject.
"""

from __future__ import annotations

import torch

__all__ = ["CELL_WEIGHT", "SBL_WEIGHT", "SBL_MARGIN", "subject_boundary_loss", "gencrop_loss"]

CELL_WEIGHT = 0.1
SBL_WEIGHT = 10.0
SBL_MARGIN = 0.025
# Subject edges this close to the frame or the image edge are the photographer's choice: not penalised.
_TOUCH_ATOL = 0.01


def subject_boundary_loss(
    subject_mask_xyxy: torch.Tensor,
    crop_xyxy: torch.Tensor,
    valid_xyxy: torch.Tensor,
    pred_xyxy: torch.Tensor,
    margin: float = SBL_MARGIN,
) -> torch.Tensor:
    """Mean over all B x 4 edges of ``max(0, margin - |pred - subject|)``.

    An edge is exempt where the subject mask's edge coincides (within 0.01)
    with the true frame's or the valid image region's edge: there the subject
    is legitimately cut by the frame or by the photo's border.
    """
    subject = subject_mask_xyxy.float()
    touches = torch.isclose(subject, crop_xyxy.float(), atol=_TOUCH_ATOL) | torch.isclose(
        subject, valid_xyxy.float(), atol=_TOUCH_ATOL
    )
    penalty = torch.clamp(margin - (pred_xyxy.float() - subject).abs(), min=0.0)
    return (penalty * (~touches)).mean()


def gencrop_loss(
    pred: torch.Tensor,
    cell_crops: torch.Tensor,
    crop: torch.Tensor,
    valid: torch.Tensor,
    subject_mask: torch.Tensor,
    use_sbl: bool = True,
) -> tuple[torch.Tensor, dict]:
    """Total loss and its parts (detached floats). Inputs: normalised xyxy, pred (B,4), cell_crops (B,N,4).

    Computed in float32 whatever the autocast dtype, so fp16 training sums the same way.
    """
    pred, cell_crops, crop = pred.float(), cell_crops.float(), crop.float()
    l1 = (pred - crop).abs().mean()
    l1_cells = (cell_crops - crop[:, None, :]).abs().mean()
    total = l1 + CELL_WEIGHT * l1_cells
    parts = {"l1": float(l1.detach()), "l1_cells": float(l1_cells.detach())}
    if use_sbl:
        sbl = subject_boundary_loss(subject_mask, crop, valid, pred)
        total = total + SBL_WEIGHT * sbl
        parts["sbl"] = float(sbl.detach())
    return total, parts


def batch_loss(out, batch: dict, dim: float, use_sbl: bool = True) -> tuple[torch.Tensor, dict]:
    """:func:`gencrop_loss` of a model output on a training batch (boxes in input pixels of size ``dim``)."""
    return gencrop_loss(
        out.crop,
        out.cell_crops,
        batch["crop"] / dim,
        batch["valid"] / dim,
        batch["subject_mask_box"] / dim,
        use_sbl=use_sbl,
    )
