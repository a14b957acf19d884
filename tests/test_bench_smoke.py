"""The benchmark harness end to end: ``python -m benchmarks --smoke`` in a subprocess.

Only structure and correctness are asserted (every case measured, no errors, the
expected ratios and targets present), never timings: those depend on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import main
from benchmarks.payload import Template, grpc_send_request

ROOT = Path(__file__).resolve().parent.parent
SMOKE_SECONDS = 150
TARGET_RESULTS = {"PASS", "MISS", "n/a"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_SECONDS,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-4000:]}\n{proc.stdout[-4000:]}"
    assert "| case" in proc.stdout  # the table was printed
    document: dict[str, object] = json.loads(out.read_text())
    return document


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_SECONDS + 30)
def test_smoke_measures_every_case_without_errors(smoke: dict[str, object]) -> None:
    assert set(smoke) == {"meta", "cases", "ratios", "targets"}
    meta = smoke["meta"]
    assert isinstance(meta, dict)
    levels = meta["concurrency"]
    cases = {c["name"]: c for c in smoke["cases"]}  # type: ignore[attr-defined]
    assert {"sdk-grpc", "grpc-unary", "artifact-256mib"} <= cases.keys()
    for name, case in cases.items():
        assert case["status"] == "ok", f"{name}: {case['status']}: {case['reason']}"
        assert case["server"]["pids"], name
        if case["single_shot"]:
            artifact = case["artifact"]
            assert artifact["errors"] == 0, artifact["error_samples"]
            assert artifact["received_bytes"] == artifact["total_bytes"] > 0
            assert artifact["events"] > 0
            continue
        assert [run["concurrency"] for run in case["runs"]] == levels, name
        for run in case["runs"]:
            assert run["errors"] == 0, (name, run["error_samples"])
            assert run["operations"] > 0, (name, run["concurrency"])
            assert run["units"] >= run["operations"], name
            assert run["p50_ms"] is not None, name
            assert run["p99_ms"] >= run["p50_ms"], name


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_SECONDS + 30)
def test_smoke_reports_ratios_and_targets(smoke: dict[str, object]) -> None:
    ratios = smoke["ratios"]
    assert isinstance(ratios, list)
    pairs = {(r["case"], r["baseline"], r["concurrency"]) for r in ratios}
    for level in smoke["meta"]["concurrency"]:  # type: ignore[index]
        assert ("grpc-unary", "sdk-grpc", level) in pairs
        assert ("grpc-unary", "grpc-bare", level) in pairs
    targets = smoke["targets"]
    assert isinstance(targets, list)
    assert targets
    for target in targets:
        assert target["result"] in TARGET_RESULTS, target
        assert (target["value"] is None) == (target["result"] == "n/a"), target


def test_unknown_case_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cases", "grpc-unary,no-such-case"]) == 2
    assert "no-such-case" in capsys.readouterr().err


def test_list_names_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("sdk-grpc", "sdk-jsonrpc", "grpc-bare", "grpc-bare-bidi", "grpc-unary", "artifact-256mib"):
        assert name in listed


def test_request_templates_give_every_request_a_new_message_id() -> None:
    template = grpc_send_request()
    first, second = template.render(), template.render()
    assert first != second
    assert len(first) == len(second)
    with pytest.raises(ValueError, match="slot"):
        Template(b"no slot here")


def test_the_chart_is_drawn_from_a_runs_json(smoke: dict[str, object], tmp_path: Path) -> None:
    from benchmarks.chart import draw

    out = draw(smoke, tmp_path / "chart.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    with pytest.raises(ValueError, match="no measured rate"):
        draw({"cases": [], "meta": {}}, tmp_path / "empty.png")
