"""Draw a benchmark run as a PNG: ``python -m benchmarks.chart RESULTS.json --out CHART.png``.

One panel per unit (req/s, events/s, msg/s, handshakes/s), one bar per case at the chosen
concurrency (default 16, else the highest measured), coloured by group: the official SDK and bare
gRPC as baselines, ours, our JSON bridge. Each bar is labelled with its rate, and ours with their
ratio to the SDK baseline of the same unit. Drawn with matplotlib (its Agg backend: no display).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["draw", "main"]

COLOURS = {"baseline": "#9e9e9e", "ours": "#1f77b4", "bridge": "#2ca02c"}
SDK_BASELINE = {"req/s": "sdk-grpc", "events/s": "sdk-grpc-stream"}
"""The SDK case each unit's ratios are given against."""
PANEL = {"msg/s": "req/s"}
"""Units drawn in another's panel: a bare echo message is one round trip, as a request is."""
AXIS = {"req/s": "requests (or echo messages) per second"}


def _rate(case: dict[str, Any], concurrency: int) -> tuple[float, int] | None:
    runs = [r for r in case.get("runs") or [] if r.get("units_per_s")]
    if not runs:
        return None
    chosen = next(
        (r for r in runs if r["concurrency"] == concurrency), max(runs, key=lambda r: r["concurrency"])
    )
    return float(chosen["units_per_s"]), int(chosen["concurrency"])


def draw(document: dict[str, Any], out: Path, concurrency: int = 16) -> Path:
    """Draw ``document`` (what ``python -m benchmarks --json`` writes) into the PNG ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[tuple[str, str, float, int]]] = {}
    for case in document["cases"]:
        measured = _rate(case, concurrency)
        if measured is not None and case.get("status") == "ok":
            unit = PANEL.get(case["unit"], case["unit"])
            panels.setdefault(unit, []).append((case["name"], case["group"], *measured))
    if not panels:
        raise ValueError("the results hold no measured rate to draw")
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(9, 1.2 + 0.45 * sum(map(len, panels.values())) + 0.6 * len(panels))
    )
    axes = [axes] if len(panels) == 1 else list(axes)
    for ax, (unit, bars) in zip(axes, sorted(panels.items()), strict=True):
        bars.sort(key=lambda bar: bar[2])
        names = [f"{name} (c={c})" for name, _, _, c in bars]
        rates = [rate for _, _, rate, _ in bars]
        ax.barh(names, rates, color=[COLOURS.get(group, "#ff7f0e") for _, group, _, _ in bars])
        sdk = next((rate for name, _, rate, _ in bars if name == SDK_BASELINE.get(unit)), None)
        for y, (_, group, rate, _) in enumerate(bars):
            label = f"{rate:,.0f}"
            if sdk and group != "baseline":
                label += f"  ({rate / sdk:.1f}x SDK)"
            ax.text(rate, y, " " + label, va="center", fontsize=8)
        ax.set_xlabel(AXIS.get(unit, unit))
        ax.set_xlim(0, max(rates) * 1.35)
        ax.tick_params(axis="y", labelsize=8)
    meta = document.get("meta", {})
    when, commit = str(meta.get("started", ""))[:10], str(meta.get("commit", ""))[:7]
    figure.suptitle(
        f"a2a-grpc benchmarks, {when} (commit {commit}): "
        "grey = baselines, blue = ours, green = our JSON bridge",
        fontsize=9,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chart", description=summary)
    parser.add_argument("results", type=Path, help="the JSON a run wrote (python -m benchmarks --json PATH)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--concurrency", type=int, default=16, help="the level to draw (default: 16)")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.results.read_text())
        written = draw(document, args.out, args.concurrency)
    except (OSError, ValueError, KeyError) as exc:
        print(f"benchmarks.chart: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
