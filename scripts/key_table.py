"""Write the README's table of experiment keys from their declarations in pyiqa/engine/options.py.

    python scripts/key_table.py          # rewrite the table in README.md
    python scripts/key_table.py --check  # exit 1 when README.md differs (what the test suite checks)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyiqa.engine.options import KEY_TABLE_END, KEY_TABLE_START, key_table

README = Path(__file__).resolve().parent.parent / "README.md"


def with_table(text: str) -> str:
    """``text`` with the lines between the two markers replaced by the generated table."""
    head, start, rest = text.partition(KEY_TABLE_START)
    _, end, tail = rest.partition(KEY_TABLE_END)
    if not start or not end:
        raise SystemExit(f"{README}: the markers {KEY_TABLE_START!r} and {KEY_TABLE_END!r} are missing")
    return head + start + "\n" + "\n".join(key_table()) + "\n" + end + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    new = with_table(text)
    if args.check:
        if new != text:
            print("README.md's key table differs from pyiqa/engine/options.py; run python scripts/key_table.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
