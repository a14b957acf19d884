"""CPU time and memory of a process, read from Linux's /proc (no dependency).

Where /proc is missing (not Linux) every reader returns None and the report
says "n/a" instead of a number.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["busy_cpu_seconds", "cpu_seconds", "reset_peak_rss", "rss_mib"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_MiB = 1024 * 1024


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds ``pid`` has used so far, all its threads together."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of stat


def rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    """A memory figure of ``pid`` in MiB: ``VmRSS`` (now) or ``VmHWM`` (peak since start or reset)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / _MiB  # the kernel reports kB
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset ``pid``'s VmHWM to its current RSS (Linux 4.0+, same user or root); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (all cores, all processes) since boot."""
    try:
        line = Path("/proc/stat").read_text().split("\n", 1)[0]
    except OSError:
        return None
    values = [int(v) for v in line.split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    guest = sum(values[8:10])  # guest time is already counted in user time
    return (sum(values) - idle - guest) / _TICKS
