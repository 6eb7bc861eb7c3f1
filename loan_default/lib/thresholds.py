"""The versioned thresholds file shipped in the package: one place for every alarm level."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

THRESHOLDS_PATH = Path(__file__).resolve().parent.parent / "thresholds.json"


@cache
def load_thresholds(path: Path = THRESHOLDS_PATH) -> dict:
    return json.loads(path.read_text())
