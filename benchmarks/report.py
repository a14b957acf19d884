"""Results: ratios against the baselines, the issue's targets, the printed tables and the JSON file.

Every figure comes from the run at hand. A case with errors is "flagged": its
numbers are printed with a FLAGGED status and no ratio or target is computed
from them. Skipped and failed cases appear by name with their reason, never
as a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "CaseResult", "Target", "noisy_runs", "ratios", "render", "targets", "write_json"]

NOISE_CPU = 0.15
"""Other processes using more than this many cores during a window make its figures suspect."""
TARGET_CONCURRENCY = 16
"""The concurrency the issue's targets are stated at (the largest measured one stands in if absent)."""


@dataclass
class CaseResult:
    name: str
    group: str
    summary: str
    unit: str
    status: str = "ok"
    """``ok``, ``flagged`` (it had errors), ``error`` (it could not be measured) or ``skipped``."""
    reason: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    artifact: dict[str, Any] | None = None
    server: dict[str, Any] = field(default_factory=dict)
    single_shot: bool = False
    """Measured once (the large artifact), not per concurrency."""

    @property
    def usable(self) -> bool:
        return self.status == "ok"

    def run(self, concurrency: int) -> dict[str, Any] | None:
        return next((r for r in self.runs if r["concurrency"] == concurrency), None)

    def finish(self) -> None:
        """Flag the case if any run (or the artifact transfer) saw an error, or measured nothing."""
        errors = sum(r["errors"] for r in self.runs) + (self.artifact or {}).get("errors", 0)
        idle = [str(r["concurrency"]) for r in self.runs if not r["operations"]]
        if self.status == "ok" and errors:
            self.status = "flagged"
            self.reason = f"{errors} error(s), e.g. " + "; ".join(self._samples()[:2])
        elif self.status == "ok" and idle:
            self.status = "flagged"
            self.reason = f"no operation completed inside the measured window at c={','.join(idle)}"

    def _samples(self) -> list[str]:
        samples = [s for r in self.runs for s in r["error_samples"]]
        return samples + list((self.artifact or {}).get("error_samples", []))


def ratios(results: Sequence[CaseResult], baselines: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Throughput and p99 of each case over each of its baselines, at every concurrency both measured."""
    by_name = {r.name: r for r in results}
    out: list[dict[str, Any]] = []
    for result in results:
        for base_name in baselines.get(result.name, ()):
            base = by_name.get(base_name)
            if base is None or not (result.usable and base.usable):
                continue
            for run in result.runs:
                other = base.run(run["concurrency"])
                if other is None or not other["units_per_s"]:
                    continue
                out.append(
                    {
                        "case": result.name,
                        "baseline": base_name,
                        "concurrency": run["concurrency"],
                        "throughput_ratio": run["units_per_s"] / other["units_per_s"],
                        "p99_ratio": run["p99_ms"] / other["p99_ms"] if other["p99_ms"] else None,
                    }
                )
    return out


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: a measured value, a bound, and which side of it passes."""

    text: str
    cases: tuple[str, ...]
    measure: Callable[[dict[str, CaseResult], int], float | None]
    passes: Callable[[float], bool]
    per_concurrency: bool = True


def _ratio(case: str, base: str, key: str) -> Callable[[dict[str, CaseResult], int], float | None]:
    def measure(results: dict[str, CaseResult], c: int) -> float | None:
        a, b = results[case].run(c), results[base].run(c)
        if a is None or b is None or not b[key]:
            return None
        return float(a[key]) / float(b[key])

    return measure


def _shot(case: str, key: str) -> Callable[[dict[str, CaseResult], int], float | None]:
    """A figure of a single-shot case (``artifact`` dict), e.g. its RSS growth."""

    def measure(results: dict[str, CaseResult], c: int) -> float | None:
        value = (results[case].artifact or {}).get(key)
        return None if value is None else float(value)

    return measure


_rss_growth = _shot("artifact-256mib", "rss_growth_mib")


TARGETS = [
    Target("grpc-unary throughput >= 5x sdk-grpc", ("grpc-unary", "sdk-grpc"),
           _ratio("grpc-unary", "sdk-grpc", "units_per_s"), lambda v: v >= 5.0),
    Target("grpc-unary p99 <= 1/5 of sdk-grpc's", ("grpc-unary", "sdk-grpc"),
           _ratio("grpc-unary", "sdk-grpc", "p99_ms"), lambda v: v <= 0.2),
    Target("grpc-unary throughput >= 50% of grpc-bare", ("grpc-unary", "grpc-bare"),
           _ratio("grpc-unary", "grpc-bare", "units_per_s"), lambda v: v >= 0.5),
    Target("grpc-stream events/s >= 5x sdk-grpc-stream", ("grpc-stream", "sdk-grpc-stream"),
           _ratio("grpc-stream", "sdk-grpc-stream", "units_per_s"), lambda v: v >= 5.0),
    Target("grpc-unary-sqlite throughput >= 0.8x grpc-unary", ("grpc-unary-sqlite", "grpc-unary"),
           _ratio("grpc-unary-sqlite", "grpc-unary", "units_per_s"), lambda v: v >= 0.8),
    Target("grpc-stream-sqlite events/s >= 0.7x grpc-stream", ("grpc-stream-sqlite", "grpc-stream"),
           _ratio("grpc-stream-sqlite", "grpc-stream", "units_per_s"), lambda v: v >= 0.7),
    Target("jsonrpc-inproc throughput >= 3x sdk-jsonrpc", ("jsonrpc-inproc", "sdk-jsonrpc"),
           _ratio("jsonrpc-inproc", "sdk-jsonrpc", "units_per_s"), lambda v: v >= 3.0),
    Target("session-unary throughput >= 10x sdk-grpc", ("session-unary", "sdk-grpc"),
           _ratio("session-unary", "sdk-grpc", "units_per_s"), lambda v: v >= 10.0),
    Target("session-unary throughput >= 60% of grpc-bare-bidi", ("session-unary", "grpc-bare-bidi"),
           _ratio("session-unary", "grpc-bare-bidi", "units_per_s"), lambda v: v >= 0.6),
    Target("session-stream events/s >= 8x sdk-grpc-stream", ("session-stream", "sdk-grpc-stream"),
           _ratio("session-stream", "sdk-grpc-stream", "units_per_s"), lambda v: v >= 8.0),
    Target("session-artifact-256mib server peak RSS growth < 64 MiB", ("session-artifact-256mib",),
           _shot("session-artifact-256mib", "rss_growth_mib"), lambda v: v < 64.0, per_concurrency=False),
    Target("session-artifact-256mib client peak RSS growth < 64 MiB", ("session-artifact-256mib",),
           _shot("session-artifact-256mib", "client_rss_growth_mib"), lambda v: v < 64.0,
           per_concurrency=False),
    Target("session-idle: 10,000 sessions in < 1024 MiB server RSS", ("session-idle",),
           _shot("session-idle", "rss_with_sessions_mib"), lambda v: v < 1024.0, per_concurrency=False),
    Target("artifact-256mib peak RSS growth < 64 MiB", ("artifact-256mib",), _rss_growth, lambda v: v < 64.0,
           per_concurrency=False),
]  # fmt: skip


def _target_concurrency(results: dict[str, CaseResult], cases: Sequence[str]) -> int | None:
    common: set[int] | None = None
    for name in cases:
        have = {r["concurrency"] for r in results[name].runs}
        common = have if common is None else common & have
    if not common:
        return None
    return TARGET_CONCURRENCY if TARGET_CONCURRENCY in common else max(common)


def targets(results: Sequence[CaseResult]) -> list[dict[str, Any]]:
    """Each target as PASS, MISS or n/a (with the reason), from this run's figures only."""
    by_name = {r.name: r for r in results}
    out: list[dict[str, Any]] = []
    for target in TARGETS:
        row: dict[str, Any] = {"target": target.text, "value": None, "concurrency": None}
        missing = [n for n in target.cases if n not in by_name]
        unusable = [n for n in target.cases if n in by_name and not by_name[n].usable]
        if missing:
            row.update(result="n/a", reason="not run: " + ", ".join(missing))
        elif unusable:
            row.update(result="n/a", reason="; ".join(f"{n} {by_name[n].status}" for n in unusable))
        else:
            c = _target_concurrency(by_name, target.cases) if target.per_concurrency else 0
            value = None if c is None else target.measure(by_name, c)
            if value is None:
                row.update(result="n/a", reason="no common measurement")
            else:
                result = "PASS" if target.passes(value) else "MISS"
                row.update(value=value, concurrency=c or None, result=result, reason="")
        out.append(row)
    return out


# -- text ----------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


Column = tuple[str, bool, Callable[[Any], str]]
"""A table column: header, right-aligned, and how to show a row's cell."""


def _table(columns: Sequence[Column], items: Sequence[Any]) -> str:
    headers = [c[0] for c in columns]
    rows = [[show(item) for _, _, show in columns] for item in items]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    right = [c[1] for c in columns]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right, strict=True)
    )
    return "\n".join([line(headers), rule + "|", *(line(r) for r in rows)])


def _status(result: CaseResult) -> str:
    if result.status == "ok":
        return "ok"
    return f"{result.status.upper()}: {result.reason.splitlines()[0] if result.reason else ''}"


RunRow = tuple[CaseResult, dict[str, Any]]
_EMPTY: dict[str, Any] = {}


def _run_cell(key: str, digits: int) -> Callable[[RunRow], str]:
    return lambda row: _num(row[1][key], digits) if row[1] else ""


RUN_COLUMNS: list[Column] = [
    ("case", False, lambda row: row[0].name),
    ("group", False, lambda row: row[0].group),
    ("c", True, lambda row: str(row[1]["concurrency"]) if row[1] else ""),
    ("rate", True, _run_cell("units_per_s", 1)),
    ("unit", False, lambda row: row[0].unit),
    ("p50 ms", True, _run_cell("p50_ms", 2)),
    ("p99 ms", True, _run_cell("p99_ms", 2)),
    ("srv CPU", True, _run_cell("server_cpu_per_s", 2)),
    ("client CPU", True, _run_cell("client_cpu_per_s", 2)),
    ("other CPU", True, _run_cell("other_cpu_per_s", 2)),
    ("srv RSS MiB", True, _run_cell("server_rss_peak_mib", 0)),
    ("errors", True, lambda row: str(row[1]["errors"]) if row[1] else ""),
    ("status", False, lambda row: _status(row[0])),
]


def _artifact_cell(key: str, digits: int, scale: float = 1.0) -> Callable[[CaseResult], str]:
    def show(result: CaseResult) -> str:
        value = (result.artifact or {}).get(key)
        return "" if value is None else _num(value / scale, digits)

    return show


ARTIFACT_COLUMNS: list[Column] = [
    ("case", False, lambda r: r.name),
    ("MiB", True, _artifact_cell("total_bytes", 0, 2**20)),
    ("chunk KiB", True, _artifact_cell("chunk_bytes", 0, 1024)),
    ("MB/s", True, _artifact_cell("mb_per_s", 1)),
    ("seconds", True, _artifact_cell("seconds", 2)),
    ("idle RSS MiB", True, _artifact_cell("idle_rss_mib", 0)),
    ("peak RSS MiB", True, _artifact_cell("peak_rss_mib", 0)),
    ("growth MiB", True, _artifact_cell("rss_growth_mib", 0)),
    ("srv CPU", True, _artifact_cell("server_cpu_per_s", 2)),
    ("status", False, _status),
]

RATIO_COLUMNS: list[Column] = [
    ("case", False, lambda x: x["case"]),
    ("vs baseline", False, lambda x: x["baseline"]),
    ("c", True, lambda x: str(x["concurrency"])),
    ("throughput", True, lambda x: f"{x['throughput_ratio']:.2f}x"),
    ("p99 ratio", True, lambda x: _num(x["p99_ratio"], 2)),
]

TARGET_COLUMNS: list[Column] = [
    ("target", False, lambda t: t["target"]),
    ("measured", True, lambda t: "" if t["value"] is None else _num(t["value"], 2)),
    ("at", False, lambda t: f"c={t['concurrency']}" if t["concurrency"] else ""),
    ("result", False, lambda t: t["result"] + (f": {t['reason']}" if t["reason"] else "")),
]


def render(
    results: Sequence[CaseResult], ratio_rows: Sequence[dict[str, Any]], target_rows: Sequence[dict[str, Any]]
) -> str:
    """The report as Markdown tables: results, large artifact, ratios, targets."""
    runs: list[RunRow] = []
    for result in results:
        if not result.single_shot:
            runs += [(result, run) for run in result.runs] or [(result, _EMPTY)]
    parts = [_table(RUN_COLUMNS, runs)]
    single = [r for r in results if r.single_shot]
    if single:
        parts.append(_table(ARTIFACT_COLUMNS, single))
    if ratio_rows:
        parts.append(_table(RATIO_COLUMNS, ratio_rows))
    parts.append(_table(TARGET_COLUMNS, target_rows))
    return "\n\n".join(parts)


def noisy_runs(results: Sequence[CaseResult]) -> list[str]:
    """The runs during which the rest of the machine used more than NOISE_CPU cores."""
    return [
        f"{r.name} c={run['concurrency']} ({run['other_cpu_per_s']:.2f})"
        for r in results
        for run in r.runs
        if (run.get("other_cpu_per_s") or 0.0) > NOISE_CPU
    ]


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(document), indent=2) + "\n")


def as_dict(result: CaseResult) -> dict[str, Any]:
    return asdict(result)
