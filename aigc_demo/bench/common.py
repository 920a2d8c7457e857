"""Small helpers every benchmark shares: medians, a plain table printer, a served app's CPU time."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as an aligned text table, then the same rows as one JSON line."""
    print(f"\n{title}")
    if not rows:
        return
    headers = list(dict.fromkeys(h for r in rows for h in r))  # rows may add their own columns
    cells = [[f"{r[h]:.4g}" if isinstance(r.get(h), float) else str(r.get(h, "-")) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print("JSON " + json.dumps(rows))


def served_pid(url: str) -> int | None:
    """The pid of this process's child serving `url` (`python -m aigc_demo serve ... --port N`),
    from /proc; None where there is no /proc or no such child."""
    port = str(urlparse(url).port).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"serve" in args and port in args:
            return int(proc.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used (all its threads; /proc), NaN if unknown."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
