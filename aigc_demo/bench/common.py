"""Small helpers every benchmark shares: medians and a plain table printer."""

from __future__ import annotations

import json
import statistics
from typing import Any


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as an aligned text table, then the same rows as one JSON line."""
    print(f"\n{title}")
    if not rows:
        return
    headers = list(rows[0])
    cells = [[f"{r[h]:.4g}" if isinstance(r[h], float) else str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print("JSON " + json.dumps(rows))
