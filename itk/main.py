"""The A2A Integration Test Kit's entry point for a2a-grpc: the kit's runner starts
``uv run main.py --httpPort H --grpcPort G`` in this folder. The agent is examples/itk-agent."""

from __future__ import annotations

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(
        str(Path(__file__).resolve().parent.parent / "examples" / "itk-agent" / "main.py"),
        run_name="__main__",
    )
