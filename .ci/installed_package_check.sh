#!/usr/bin/env bash
# The package works without the clone: build the wheel, install it (non-editable) into a fresh venv and
# run the installed commands from an empty folder, with the shipped configs found by name.
#
#   bash .ci/installed_package_check.sh            # PYTHON=... to choose the interpreter
#
# The fresh venv borrows the heavy dependencies (torch, open_clip, ...) from $PYTHON's environment
# through a .pth file, so only the wheel itself is installed; its copy of pyiqa must be the one
# imported (checked). Prints the seconds each step took. Needs about 2-4 minutes on 2 CPU cores.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pyiqa_installed.XXXXXX")"
trap 'status=$?; if [ "$status" -eq 0 ]; then rm -rf "$WORK"; else echo "left $WORK for inspection" >&2; fi' EXIT
unset PYTHONPATH  # only the venv (and the outer environment's dependencies) may provide modules
SHORT=(train.total_epoch=1 train.scheduler.T_max=1 val.val_freq=11 logger.save_latest_freq=11)

step() {  # step NAME COMMAND...: run it, print its time; a failure stops the script (set -e)
    local name="$1" t0 t1
    shift
    echo "=== $name"
    t0=$(date +%s%3N)
    "$@"
    t1=$(date +%s%3N)
    printf '[time] %-32s %4d.%02d s\n' "$name" $(( (t1 - t0) / 1000 )) $(( (t1 - t0) % 1000 / 10 ))
}

fail() { echo "FAILED: $*" >&2; exit 1; }

build_wheel() {
    # from a copy of what setup.py packages, so no build/ or egg-info is left in (or reused from) the clone
    mkdir -p "$WORK/src"
    cp -r "$REPO/setup.py" "$REPO/README.md" "$REPO/LICENSE" "$REPO/pyiqa" "$REPO/train_clip" "$WORK/src/"
    find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
    "$PYTHON" -m pip wheel "$WORK/src" -w "$WORK/wheel" --no-deps -q
    WHEEL="$(ls "$WORK"/wheel/*.whl)"
    # every shipped config is in the wheel
    "$PYTHON" - "$WHEEL" "$REPO/pyiqa/configs" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, configs = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
wanted = {f"pyiqa/configs/{p.relative_to(configs).as_posix()}" for p in configs.rglob("*.yml")}
missing = sorted(wanted - names)
if not wanted or missing:
    sys.exit(f"the wheel lacks shipped configs: {missing or 'none found in ' + str(configs)}")
print(f"{Path(wheel).name}: {len(wanted)} configs")
EOF
}

make_venv() {
    "$PYTHON" -m venv "$WORK/venv"
    local new_site
    new_site="$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # the dependencies of the outer environment, appended after the venv's own site-packages
    "$PYTHON" -c 'import sysconfig; p = sysconfig.get_paths(); print("\n".join(dict.fromkeys([p["purelib"], p["platlib"]])))' \
        > "$new_site/zz_outer_environment.pth"
    "$WORK/venv/bin/python" -m pip install --no-deps -q "$WHEEL"
}

check_import() {
    "$VPY" - "$WORK/venv" <<'EOF'
import sys
from pathlib import Path
import pyiqa
from pyiqa.utils.shipped_configs import configs_root
venv, where = Path(sys.argv[1]).resolve(), Path(pyiqa.__file__).resolve()
print("pyiqa imported from", where, "; configs in", configs_root())
if venv not in where.parents or venv not in configs_root().resolve().parents:
    sys.exit(f"pyiqa was imported from {where}, not from the wheel installed in {venv}")
EOF
}

list_configs() {
    "$BIN/pyiqa-train" --list-configs | tee "$WORK/list.txt"
    grep -q "UniQA/demo .*$WORK/venv/.*/pyiqa/configs/train/UniQA/demo.yml" "$WORK/list.txt" \
        || fail "pyiqa-train --list-configs does not list the installed UniQA/demo"
}

train_demo() {
    "$BIN/pyiqa-train" -opt UniQA/demo --force_yml "${SHORT[@]}"
    test -f experiments/UniQA_demo/models/net_best.pth || fail "no experiments/UniQA_demo in the current folder"
}

test_demo() {
    "$BIN/pyiqa-test" -opt UniQA/demo
    test -f results/UniQA_demo_test/predictions_demo.csv || fail "no results/UniQA_demo_test/predictions_demo.csv"
}

score_image() {
    "$VPY" -c 'import numpy as np; from PIL import Image; Image.fromarray((np.random.default_rng(0).random((96, 128, 3)) * 255).astype("uint8")).save("image.png")'
    "$BIN/pyiqa" uniqa -t image.png --backbone random > scores.csv
    cat scores.csv
    grep -q '^image.png,' scores.csv || fail "pyiqa uniqa wrote no score for image.png"
}

zero_shot() {
    "$BIN/pyiqa-eval-zero-shot" --datasets demo --backbone random-tiny --limit 26
    test -f results/zero_shot/demo.json || fail "no results/zero_shot/demo.json in the current folder"
}

prepare_help() {
    "$BIN/pyiqa-prepare-dataset" --help > prepare_help.txt
    head -3 prepare_help.txt
}

foreign_pyiqa() {  # IQA-PyTorch's metadata beside ours: import pyiqa must refuse, naming it
    mkdir -p foreign/pyiqa-0.1.13.dist-info
    printf 'Metadata-Version: 2.1\nName: pyiqa\nVersion: 0.1.13\n' > foreign/pyiqa-0.1.13.dist-info/METADATA
    if PYTHONPATH="$PWD/foreign" "$VPY" -c 'import pyiqa' 2> foreign.err; then
        fail "import pyiqa succeeded beside a foreign 'pyiqa' distribution"
    fi
    grep -q "IQA-PyTorch" foreign.err || { cat foreign.err >&2; fail "the refusal does not name IQA-PyTorch"; }
    tail -1 foreign.err
}

T0=$(date +%s)
step "build wheel" build_wheel
step "fresh venv + install wheel" make_venv
VPY="$WORK/venv/bin/python"
BIN="$WORK/venv/bin"
mkdir "$WORK/run"
cd "$WORK/run"  # empty: no clone, no options/ here
step "import pyiqa (the wheel's copy)" check_import
step "pyiqa-train --list-configs" list_configs
step "pyiqa-train -opt UniQA/demo" train_demo
step "pyiqa-test -opt UniQA/demo" test_demo
step "pyiqa uniqa -t image.png" score_image
step "pyiqa-eval-zero-shot demo" zero_shot
step "pyiqa-prepare-dataset --help" prepare_help
step "foreign pyiqa refused" foreign_pyiqa
echo "installed package check passed in $(( $(date +%s) - T0 )) s"
