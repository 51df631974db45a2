"""What `GET /v1/model` says about the loaded model: its config and its card.

A model directory may hold ``card.json`` beside ``config.json`` (``name``,
``summary``, ``licence``, ``card``: the machine-readable part of its model
card; the bundled model has one). Without it the name is the folder's name and
the licence is unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

CARD_NAME = "card.json"


def describe_model(directory: str | Path, input_size: int) -> dict:
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    card_path = directory / CARD_NAME
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    return {
        "name": card.get("name") or directory.name,
        "summary": card.get("summary"),
        "input_size": input_size,
        "variant": config.get("variant", "gencrop"),
        "arch": config.get("arch"),
        "in_channels": config.get("in_channels"),
        "licence": card.get("licence"),
        "card": card.get("card"),
    }
