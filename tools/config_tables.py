#!/usr/bin/env python3
"""Write the tables of keys in docs/configuration.md from the settings dataclasses.

Each section's table (key, default, meaning) is generated from the same dataclasses the
configuration is derived from (``a2a_grpc.cli.config.reference``). Run it after adding or changing
a settings field; tests/test_config.py fails, naming this script, while the page is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from a2a_grpc.cli.config import with_tables  # noqa: E402  (after the path is set)

PAGE = ROOT / "docs" / "configuration.md"


def main() -> int:
    old = PAGE.read_text()
    new = with_tables(old)
    if new != old:
        PAGE.write_text(new)
        print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
