"""Atomic writes leave the permissions a plain ``open()`` would: umask for a new file, the old mode
for a replaced one (``mkstemp`` alone gives 0o600, which a colleague on a shared server cannot read)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import os, stat, sys
from pathlib import Path
from pyiqa.utils.atomic import atomic_write, write_if_changed, current_umask
root = Path(sys.argv[1])
atomic_write(root / "new.json", lambda f: f.write(b"{}"))
write_if_changed(root / "sub" / "table.md", b"x")
with open(root / "plain.txt", "w") as f:
    f.write("x")
(root / "kept.txt").write_text("old"); os.chmod(root / "kept.txt", 0o640)
atomic_write(root / "kept.txt", lambda f: f.write(b"new"))
print(oct(current_umask()), *(oct(stat.S_IMODE(os.stat(root / n).st_mode))
                              for n in ("new.json", "sub/table.md", "plain.txt", "kept.txt")))
"""


@pytest.mark.parametrize("umask, expected", [(0o022, "0o644"), (0o077, "0o600"), (0o002, "0o664")])
def test_atomic_writes_follow_the_umask(tmp_path, umask, expected):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", f"import os; os.umask({umask}); exec({CHILD!r})",
                          str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    mask, new, nested, plain, kept = out.stdout.split()
    assert mask == oct(umask)
    assert new == nested == plain == expected  # exactly what open() gives
    assert kept == "0o640"  # a replaced file keeps its own mode, as open(path, 'w') does
    assert (tmp_path / "kept.txt").read_text() == "new"
    assert not [p for p in tmp_path.rglob("*.tmp")]
