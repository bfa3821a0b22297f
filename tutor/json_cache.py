"""Reading and writing the JSON cache files under the data dir (parse, chunk, token, grader-term caches).

A cache only ever saves time, so reading is forgiving (missing, damaged or not an object: start from
`{}`) and writing is atomic (a temp file per process and call, then `os.replace`), so a concurrent
reader sees the old cache or the new one, never half of one. Callers decide what a failed write means
(usually nothing: log it and carry on).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_json(path: Path | None) -> dict:
    """The object stored at `path`, or {} when there is none or it cannot be trusted."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict) -> None:
    """Replace the file at `path` with `data` in one step; raises OSError (disk full, read-only dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
