"""Bad-input sweep: run every command on hostile, broken or wrong inputs and classify what each does.

Not a test: a measuring tool (issue 19). Each case writes its files into its own temporary folder, runs
one installed command as a real subprocess with a timeout, and is classified, first match wins:

  code ran     the case's marker file appeared (a planted pickle's ``__reduce__`` or a YAML tag ran code)
  lost         a protected input file's bytes changed, or it vanished
  hang         the command outlived its timeout (killed with its process group)
  traceback    'Traceback (most recent call last)' in its stdout or stderr
  crash        killed by a signal we did not send (e.g. the memory cap), no traceback
  silent       exit 0 where an error was expected (or the case's own check found a bad output)
  clear error  a non-zero exit without a traceback
  ok           exit 0 where success was acceptable (``expect`` holds ``ok``)

Root writes into read-only folders, so as root those cases are "not testable"; run them as another user
(the interpreter and the repository must be readable to it), e.g.
``su nobody -s /bin/bash -c "python scripts/bad_input_sweep.py --only 'read-only|out-ro|out-dir' --work /tmp/ro"``.

Every subprocess runs with a 6 GiB address-space cap, so a reader that never stops ends as a crash or
a traceback (MemoryError) rather than taking the machine down.

    python scripts/bad_input_sweep.py                      # all cases, 2 at a time
    python scripts/bad_input_sweep.py --only train --jobs 4 --json sweep.json --markdown sweep.md

Shared once per sweep (in --work): the demo dataset, a tiny backbone file, a 2-iteration adapter
checkpoint, a 2-step train_clip training state and a built feature cache; cases copy or link them.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import dataclasses
import hashlib
import http.server
import json
import os
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MEM_CAP = 6 << 30
TRACEBACK = "Traceback (most recent call last)"
MARKER = "CODE_RAN"


# --------------------------------------------------------------------------------------- case model
@dataclasses.dataclass
class Spec:
    """What a case's setup hands back: the command line and what to watch."""

    argv: List[str]
    protect: Sequence[Path] = ()           # inputs whose bytes must survive
    env: Dict[str, str] = dataclasses.field(default_factory=dict)
    fsize: Optional[int] = None            # RLIMIT_FSIZE in bytes (disk full)
    check: Optional[Callable[[Any], Optional[str]]] = None  # (result) -> reason it is silent, or None
    kill_after: Optional[float] = None     # SIGKILL the run after this many seconds, then run `rerun`
    rerun: Optional[List[str]] = None
    says: Optional[str] = None             # a success must say this (regex over stdout + stderr), e.g. a warning


@dataclasses.dataclass
class Case:
    name: str
    command: str
    setup: Callable[["Ctx"], Spec]
    expect: str = "clear error"            # "clear error", "ok" or "ok|clear error"
    timeout: float = 90.0
    needs: Sequence[str] = ()              # shared artefacts the case needs


@dataclasses.dataclass
class Result:
    case: str
    command: str
    expect: str
    cls: str
    rc: Optional[int]
    seconds: float
    first_line: str
    detail: str = ""


class Ctx:
    """A case's folder plus the shared artefacts."""

    def __init__(self, root: Path, shared: "Shared") -> None:
        self.dir, self.shared = root, shared
        self.marker = root / MARKER

    def p(self, rel: str) -> Path:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, rel: str, data: Any) -> Path:
        path = self.p(rel)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
        return path

    def special(self, rel: str, kind: str) -> Path:
        """``kind``: zero (symlink to /dev/zero), fifo, dir, empty, binary, missing."""
        path = self.p(rel)
        if kind == "zero":
            path.symlink_to("/dev/zero")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "binary":
            path.write_bytes(bytes(range(256)) * 64)
        elif kind == "random":
            path.write_bytes(os.urandom(4096))
        return path

    def plant_pickle(self, rel: str) -> Path:
        """A torch.save file whose unpickling creates the marker (the 'code ran' probe)."""
        import torch
        path = self.p(rel)
        torch.save({"params": Planted(str(self.marker)), "state_dict": Planted(str(self.marker))}, path)
        return path

    def plain_pickle(self, rel: str) -> Path:
        import pickle
        path = self.p(rel)
        path.write_bytes(pickle.dumps({"train": Planted(str(self.marker))}))
        return path

    def yaml_tag(self) -> str:
        return f'!!python/object/apply:os.system ["touch {self.marker}"]'

    def run_now(self, argv: List[str], timeout: float = 300) -> subprocess.CompletedProcess:
        """A preliminary command of the setup (e.g. build what the case then damages); must succeed."""
        proc = subprocess.run(argv, cwd=self.dir, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode:
            raise RuntimeError(f"setup command failed ({proc.returncode}): {proc.stderr[-600:]}")
        return proc

    def ro(self, rel: str) -> Path:
        if os.geteuid() == 0:  # root writes anywhere: a read-only folder proves nothing
            raise NotTestable("read-only folders cannot be tested as root")
        path = self.p(rel)
        path.mkdir(exist_ok=True)
        path.chmod(0o555)
        return path


class NotTestable(Exception):
    """The case cannot be run on this machine (e.g. permissions as root)."""


class Planted:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def script(name: str) -> str:
    return str(BIN / name)


def sha(path: Path) -> Optional[str]:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# ------------------------------------------------------------------------------------ running
def _limits(fsize: Optional[int]) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (MEM_CAP, MEM_CAP))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return apply


def _run(argv: List[str], cwd: Path, env: Dict[str, str], timeout: float, fsize: Optional[int],
         kill_after: Optional[float] = None):
    """(rc or None on timeout, stdout, stderr, killed_by_us)."""
    out, err = cwd / ".stdout", cwd / ".stderr"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                preexec_fn=_limits(fsize))
        limit = kill_after if kill_after is not None else timeout
        try:
            rc = proc.wait(timeout=limit)
            killed = False
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            rc, killed = None, True
    read = lambda p: p.read_bytes()[-200_000:].decode("utf-8", "replace")  # noqa: E731
    return rc, read(out), read(err), killed


def first_line(text: str) -> str:
    """The error line if there is one (not the log's INFO/WARNING chatter), else the last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for pattern in (r"\berror\b|Error\b", r"refus|cannot|must|not |expected|failed"):
        for ln in lines:
            if re.search(pattern, ln, re.I) and not re.search(r"\b(INFO|WARNING)\b", ln[:40]):
                return ln[:200]
    return (lines[-1] if lines else "")[:200]


def run_case(case: Case, shared: "Shared", keep: bool, setup_only: bool = False) -> Result:
    start = time.time()
    missing = [n for n in case.needs if shared.get(n) is None]
    if missing:
        return Result(case.name, case.command, case.expect, "setup failed", None, 0.0,
                      f"shared artefact(s) not built: {missing}")
    folder = Path(tempfile.mkdtemp(prefix=re.sub(r"\W", "_", case.name)[:40] + "_", dir=shared.work / "cases"))
    ctx = Ctx(folder, shared)
    try:
        spec = case.setup(ctx)
    except NotTestable as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return Result(case.name, case.command, case.expect, "not testable", None, 0.0, str(exc))
    except Exception as exc:  # the sweep's own bug: say so, do not hide it
        return Result(case.name, case.command, case.expect, "setup failed", None, 0.0, f"{type(exc).__name__}: {exc}")
    if setup_only:
        shutil.rmtree(folder, ignore_errors=True)
        return Result(case.name, case.command, case.expect, "set up", None, 0.0, " ".join(spec.argv)[-200:])
    before = {p: sha(p) for p in spec.protect}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYIQA_WEIGHTS_DIR": str(ctx.p("weights_env")),
           "TORCH_HOME": str(folder / "torch_home"), "PYTHONWARNINGS": "ignore", **spec.env}
    ctx.p("weights_env").mkdir(exist_ok=True)
    rc, out, err, killed = _run(spec.argv, folder, env, case.timeout, spec.fsize, spec.kill_after)
    detail = ""
    if spec.kill_after is not None and spec.rerun is not None:
        rc, out2, err2, killed = _run(spec.rerun, folder, env, case.timeout, spec.fsize)
        out, err = out + out2, err + err2
    after = {p: sha(p) for p in spec.protect}
    changed = [str(p.name) for p in spec.protect if before[p] != after[p]]
    if ctx.marker.exists():
        cls = "code ran"
    elif changed:
        cls, detail = "lost", f"changed: {changed}"
    elif killed:
        cls = "hang"
    elif TRACEBACK in err or TRACEBACK in out:
        cls = "traceback"
    elif rc is not None and rc < 0:
        cls, detail = "crash", f"signal {-rc}"
    elif rc == 0:
        reason = spec.check(ctx) if spec.check else None
        if not reason and spec.says and not re.search(spec.says, out + err):
            reason = f"did not say /{spec.says}/"
        if reason:
            cls, detail = "silent", reason
        else:
            cls = "ok" if "ok" in case.expect else "silent"
    else:
        cls = "clear error"
        reason = spec.check(ctx) if spec.check else None
        if reason and reason.startswith("!"):  # an error exit that still did harm
            cls, detail = "silent", reason[1:]
    text = err if err.strip() else out
    if cls == "traceback":
        tb_lines = [ln for ln in (err + out).splitlines() if ln.strip()]
        errs = [ln for ln in tb_lines if re.match(r"^\w[\w.]*(Error|Exception|Interrupt)\b", ln)]
        line = (errs[-1] if errs else tb_lines[-1])[:200]
    else:
        line = first_line(text)
    if not keep:
        for p in folder.rglob("*"):
            try:
                if p.is_dir() and not p.is_symlink():
                    p.chmod(0o755)
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)
    return Result(case.name, case.command, case.expect, cls, rc, round(time.time() - start, 1), line, detail)


# --------------------------------------------------------------------------------- shared artefacts
class Shared:
    """Artefacts built once: demo data, tiny backbone, checkpoint, train_clip state, feature cache."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.items: Dict[str, Any] = {}
        (work / "cases").mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> Any:
        return self.items.get(name)

    def build(self, names: set) -> None:
        sys.path.insert(0, str(REPO / "scripts"))
        from pyiqa.data.demo_dataset import build_demo_dataset
        from pyiqa.archs.clip_backbone import save_random_backbone
        import torch
        demo = build_demo_dataset(self.work / "demo")
        self.items["demo"] = {k: Path(v).resolve() if isinstance(v, Path) else v for k, v in demo.items()}
        self.items["backbone"] = self.work / "tiny.pt"
        if not self.items["backbone"].exists():
            save_random_backbone(self.items["backbone"], config="tiny", dtype=torch.float16, seed=0)
        self.items["outside"] = self.work / "outside.png"
        shutil.copy(self.items["demo"]["image_dir"] / "astronaut_pristine.png", self.items["outside"])
        from mllm_stub_server import StubServer
        self.items["stub"] = StubServer(latency=0.0).start()
        self.items["huge"] = _start_server(_huge_reply)
        self.items["trickle"] = _start_server(_trickle_reply)
        jobs = {"checkpoint": self._checkpoint, "clip_state": self._clip_state, "cache": self._cache}
        with cf.ThreadPoolExecutor(3) as pool:
            futures = {pool.submit(fn): k for k, fn in jobs.items() if k in names}
            for fut in cf.as_completed(futures):
                key = futures[fut]
                try:
                    self.items[key] = fut.result()
                except Exception as exc:
                    print(f"shared artefact {key} failed: {exc}", file=sys.stderr)

    def _train(self, name: str, opt: Dict[str, Any]) -> Path:
        import yaml
        folder = self.work / name
        exp = folder / "experiments" / opt["name"]
        if (exp / "DONE").exists():  # a --work folder reused: built already
            return exp
        folder.mkdir(exist_ok=True)
        cfg = folder / "opt.yml"
        cfg.write_text(yaml.safe_dump(opt, sort_keys=False))
        proc = subprocess.run([script("pyiqa-train" if "datasets" in opt else "pyiqa-train-clip"), "-opt",
                               str(cfg), "--root", str(folder)], cwd=folder, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
        if proc.returncode:
            raise RuntimeError(f"{name}: {proc.stderr[-1500:]}")
        (exp / "DONE").write_text("")
        return exp

    def _checkpoint(self) -> Dict[str, Path]:
        exp = self._train("ckpt", train_opt(self, "sweep_ckpt"))
        return {"net": exp / "models" / "net_latest.pth", "state": exp / "training_states" / "2.state"}

    def _clip_state(self) -> Path:
        exp = self._train("clip", clip_opt(self, "sweep_clip"))
        states = sorted((exp / "training_states").glob("*.state"))
        if not states:
            raise RuntimeError(f"no training state under {exp}")
        return states[-1]

    def _cache(self) -> Path:
        opt = train_opt(self, "sweep_cache")
        opt["train"]["feature_cache"] = True
        opt["train"]["feature_cache_dir"] = str(self.work / "cache" / "fc")
        self._train("cache", opt)
        return self.work / "cache" / "fc"


def _start_server(handler_body: Callable) -> str:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            try:
                handler_body(self)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def _huge_reply(h) -> None:
    """A 200 whose content is 30 MB: far beyond any max_tokens."""
    body = json.dumps({"id": "x", "object": "chat.completion", "model": "stub",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "very sharp " * 3_000_000}}]}
                      ).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _trickle_reply(h) -> None:
    """Headers, then one byte of the body every 0.5 s, forever (each read succeeds within any timeout)."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "100000000")
    h.end_headers()
    for _ in range(10_000):
        h.wfile.write(b" ")
        h.wfile.flush()
        time.sleep(0.5)


# ------------------------------------------------------------------------------------ base configs
def demo_dataset(shared: Shared, meta: Optional[Path] = None, split: Any = "default") -> Dict[str, Any]:
    d = shared.get("demo")
    return {"name": "demo", "type": "GeneralNRDataset", "dataroot_target": str(d["root"]),
            "meta_info_file": str(meta or d["meta_info_file"]),
            "split_file": str(d["split_file"]) if split == "default" else split,
            "split_index": 1, "mos_range": [0, 100], "mos_normalize": True, "num_worker_per_gpu": 0}


def train_opt(shared: Shared, name: str, **kw: Any) -> Dict[str, Any]:
    ds = demo_dataset(shared, kw.pop("meta", None), kw.pop("split", "default"))
    return {
        "name": name, "num_gpu": 0, "manual_seed": 123,
        "datasets": {"train": {**ds, "augment": {"hflip": True, "random_crop": 224}, "use_shuffle": True,
                               "batch_size_per_gpu": 4},
                     "val": {**ds, "batch_size_per_gpu": 13}},
        "network": {"type": "UniQA", "backbone": str(shared.get("backbone")), "prompts": ["quality"],
                    "test_crop": "center"},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"optim": {"type": "Adam", "lr": 1e-3}, "total_iter": 2, "warmup_iter": -1,
                  "mos_loss_opt": {"type": "MSELoss"}},
        "val": {"val_freq": 1000, "key_metric": "srcc", "metrics": {"srcc": {"type": "calculate_srcc"}}},
        "logger": {"print_freq": 1, "save_latest_freq": 2, "use_tb_logger": False},
    }


def test_opt(shared: Shared, name: str, ckpt: Optional[str] = None, **kw: Any) -> Dict[str, Any]:
    ds = demo_dataset(shared, kw.pop("meta", None))
    return {"name": name, "num_gpu": 0, "manual_seed": 123,
            "datasets": {"test": {**ds, "batch_size_per_gpu": 13}},
            "network": {"type": "UniQA", "backbone": str(shared.get("backbone")), "prompts": ["quality"],
                        "test_crop": "center"},
            "path": {"pretrain_network_g": ckpt or str(shared.get("checkpoint")["net"]), "strict_load_g": True}}


def clip_opt(shared: Shared, name: str, corpus: Optional[str] = None) -> Dict[str, Any]:
    d = shared.get("demo")
    source = ({"type": "json", "path": corpus, "data_root": str(d["root"])} if corpus else
              {"type": "demo", "root": str(d["root"]), "split_index": 1, "phase": "train"})
    return {"name": name, "num_gpu": 0, "manual_seed": 1, "precision": "fp32",
            "model": {"config": "tiny-64px"},
            "data": {"train": [source], "num_workers": 0},
            "train": {"batch_size": 8, "total_steps": 2, "lr": 1e-3, "warmup_steps": 1},
            "logger": {"print_freq": 1, "save_latest_freq": 2, "use_tb_logger": False}}


def set_key(opt: Dict[str, Any], dotted: str, value: Any) -> Dict[str, Any]:
    node = opt
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return opt


DELETE = object()


def dump(ctx: Ctx, rel: str, opt: Dict[str, Any]) -> Path:
    import yaml
    return ctx.write(rel, yaml.safe_dump(opt, sort_keys=False))



# ------------------------------------------------------------------------------------------- cases
# Each family: a base setup that writes valid inputs (run once unchanged as a control, expect "ok"),
# and mutations of it. A mutation gets the Ctx and the base's files and returns the Spec.

AGIQA_HEADER = "name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align"


def tiny_png(path: Path, seed: int = 0, size=(40, 30)) -> Path:
    import numpy as np
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def agiqa_layout(ctx: Ctx, rows: int = 12, mos: Optional[Dict[int, str]] = None,
                 names: Optional[Dict[int, str]] = None) -> Path:
    """AGIQA-3K as published (data.csv + file/), ``rows`` images; ``mos``/``names`` override cells."""
    root = ctx.p("ds/x").parent
    lines = [AGIQA_HEADER]
    for i in range(rows):
        name = f"AttnGAN_normal_{i:03d}.jpg"
        tiny_png(root / "file" / name, i)
        name = (names or {}).get(i, name)
        lines.append(f"{name},statue of a man,,,,{(mos or {}).get(i, f'{0.5 + 0.3 * i:.3f}')},0.3,{4 - 0.2 * i:.3f},0.6")
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return root


def prepare(ctx: Ctx, root: Path, name: str = "agiqa3k", *extra: str, out: str = "out") -> List[str]:
    return [script("pyiqa-prepare-dataset"), name, "--root", str(root), "--out", str(ctx.dir / out), *extra]


def prepare_cases() -> List[Case]:
    C = "pyiqa-prepare-dataset"
    cases: List[Case] = []

    def add(name, fn, expect="clear error", timeout=90):
        cases.append(Case(f"prepare/{name}", C, fn, expect, timeout))

    def csv_case(content: Any, expect="clear error"):
        def fn(ctx):
            root = agiqa_layout(ctx)
            data = root / "data.csv"
            if content in ("zero", "fifo", "dir"):
                data.unlink()
                ctx.special(str(data.relative_to(ctx.dir)), content)
            else:
                data.write_bytes(content(data.read_text()) if callable(content) else content)
            return Spec(prepare(ctx, root), protect=[data] if data.is_file() and not data.is_symlink() else [])
        return fn, expect

    add("control", lambda ctx: Spec(prepare(ctx, agiqa_layout(ctx))), "ok")
    for label, content, expect in [
            ("csv-0-bytes", b"", "clear error"),
            ("csv-header-only", (AGIQA_HEADER + "\n").encode(), "clear error"),
            ("csv-unclosed-quote", lambda t: (t.replace(",statue", ',"statue', 1)).encode(), "clear error"),
            ("csv-60MB-field", lambda t: t.replace("statue of a man", "x" * 60_000_000, 1).encode(), "clear error"),
            ("csv-binary", bytes(range(256)) * 100, "clear error"),
            ("csv-utf16", lambda t: t.encode("utf-16"), "ok|clear error"),
            ("csv-latin1", lambda t: t.replace("statue", "statue caf\xe9").encode("latin-1"), "ok|clear error"),
            ("csv-nul-bytes", lambda t: t.replace(",0.3,", ",0.3\x00,").encode(), "clear error"),
            ("csv-devzero", "zero", "clear error"),
            ("csv-fifo", "fifo", "clear error"),
            ("csv-is-dir", "dir", "clear error"),
            ("csv-missing-column", lambda t: t.replace("mos_quality", "mos_qualityX").encode(), "clear error"),
            # a repeated line with the same score is kept once and logged (issue 18: real files repeat rows)
            ("csv-duplicate-rows", lambda t: (t + t.splitlines()[1] + "\n").encode(), "ok|clear error"),
            ("csv-extra-cells", lambda t: t.replace(",0.6\n", ",0.6,extra,more\n", 1).encode(), "clear error"),
    ]:
        fn, exp = csv_case(content, expect)
        add(label, fn, exp)
    for label, cell in [("mos-inf", "inf"), ("mos-1e309", "1e309"), ("mos-nan", "nan"), ("mos-minus50", "-50"),
                        ("mos-text", "good"), ("mos-empty", ""), ("mos-1e300", "1e300"), ("mos-hex", "0x10")]:
        add(label, lambda ctx, cell=cell: Spec(prepare(ctx, agiqa_layout(ctx, mos={3: cell}))))
    add("name-dotdot", lambda ctx: Spec(prepare(ctx, agiqa_layout(ctx, names={2: "../../outside.png"}))))
    add("name-absolute", lambda ctx: Spec(prepare(ctx, agiqa_layout(ctx, names={2: "/etc/passwd"}))))
    add("name-absolute-image", lambda ctx: Spec(prepare(ctx, agiqa_layout(
        ctx, names={2: str(ctx.shared.get("outside"))}))))
    add("name-empty", lambda ctx: Spec(prepare(ctx, agiqa_layout(ctx, names={2: ""}))))
    add("name-newline-injection", lambda ctx: Spec(prepare(ctx, agiqa_layout(ctx, names={2: '"a\nb.jpg"'}))))

    def all_missing(ctx):
        root = agiqa_layout(ctx)
        shutil.rmtree(root / "file")
        return Spec(prepare(ctx, root))
    add("images-all-missing", all_missing)
    add("root-missing", lambda ctx: Spec(prepare(ctx, ctx.dir / "nowhere")))
    add("root-is-file", lambda ctx: Spec(prepare(ctx, ctx.write("afile", "x"))))
    add("unknown-dataset", lambda ctx: Spec(prepare(ctx, agiqa_layout(ctx), "agiqa4k")))
    for label, vals in [("few-label-negative", ["-5"]), ("few-label-zero", ["0"]), ("few-label-1e100", ["1e100"]),
                        ("few-label-text", ["abc"]), ("few-label-huge", [str(10 ** 30)])]:
        add(label, lambda ctx, vals=vals: Spec(prepare(ctx, agiqa_layout(ctx), "agiqa3k", "--few-label", *vals)))

    def out_ro(ctx):
        ctx.ro("out")
        return Spec(prepare(ctx, agiqa_layout(ctx)))
    add("out-read-only", out_ro)

    def out_is_file(ctx):
        ctx.write("out", "I am a file")
        return Spec(prepare(ctx, agiqa_layout(ctx)), protect=[ctx.dir / "out"])
    add("out-is-file", out_is_file)

    # an output path that is a link to an input: replacing the link (atomic write) keeps the input and
    # is fine; writing through it is "lost"
    def out_links_input(ctx):
        root = agiqa_layout(ctx)
        ctx.p("out/x")
        (ctx.dir / "out" / "meta_info_AGIQA3KDataset.csv").symlink_to(root / "data.csv")
        return Spec(prepare(ctx, root), protect=[root / "data.csv"])
    add("out-meta-symlink-to-input", out_links_input, "ok|clear error")

    def out_is_root(ctx):
        root = agiqa_layout(ctx)
        (root / "meta_info_AGIQA3KDataset.csv").hardlink_to(root / "data.csv")
        return Spec(prepare(ctx, root, out=str(root)), protect=[root / "data.csv"])
    add("out-meta-hardlink-to-input", out_is_root, "ok|clear error")

    def kadid(ctx, dmos="4.1", dist=None):
        root = ctx.p("kadid/x").parent
        lines = ["dist_img,ref_img,dmos,var"]
        for r in range(1, 5):
            tiny_png(root / "images" / f"I{r:02d}.png", 100 + r)
            for t in range(1, 3):
                name = f"I{r:02d}_{t:02d}_01.png"
                tiny_png(root / "images" / name, r * 10 + t)
                lines.append(f"{name},I{r:02d}.png,{3.5 - t * 0.3:.2f},0.4")
        lines[3] = f"{dist or lines[3].split(',')[0]},I01.png,{dmos},0.4"
        (root / "dmos.csv").write_text("\n".join(lines) + "\n")
        return Spec(prepare(ctx, root, "kadid10k"))
    add("kadid-control", kadid, "ok")
    add("kadid-dmos-1e309", lambda ctx: kadid(ctx, "1e309"))
    add("kadid-dmos-99", lambda ctx: kadid(ctx, "99"))
    add("kadid-dist-dotdot", lambda ctx: kadid(ctx, dist="../../../outside.png"))
    return cases


# ---- pyiqa-generate-descriptions
def gen_base(ctx: Ctx, names: Optional[List[str]] = None, mos: Optional[List[str]] = None,
             endpoint: Optional[str] = None, extra: Sequence[str] = (), meta_text: Optional[str] = None):
    root = ctx.p("imgs/x").parent
    names = names or ["a.png", "b.png", "c.png"]
    for i in range(3):
        tiny_png(root / f"{'abc'[i]}.png", i, (64, 48))
    mos = mos or ["10", "50", "90"]
    meta = ctx.write("meta.csv", meta_text if meta_text is not None else
                     "image_name,mos\n" + "".join(f"{n},{m}\n" for n, m in zip(names, mos)))
    argv = [script("pyiqa-generate-descriptions"), "--meta", str(meta), "--root", str(root), "--task", "quality",
            "--mos-range", "0", "100", "--out", str(ctx.dir / "out.jsonl"), "--endpoint",
            endpoint or ctx.shared.get("stub").url, "--model", "stub", "--no-progress", "--retries", "1",
            "--backoff", "0", "--timeout", "5", *extra]
    return argv, meta


def gen_cases() -> List[Case]:
    C = "pyiqa-generate-descriptions"
    cases: List[Case] = []

    def add(name, fn, expect="clear error", timeout=90):
        cases.append(Case(f"gen/{name}", C, fn, expect, timeout))

    def simple(**kw):
        def fn(ctx):
            argv, meta = gen_base(ctx, **kw)
            return Spec(argv, protect=[meta])
        return fn
    add("control", simple(), "ok")
    add("meta-missing", lambda ctx: Spec(gen_base(ctx)[0][:2] + [str(ctx.dir / "nope.csv")] + gen_base(ctx)[0][3:]))
    for kind in ("zero", "fifo", "empty", "binary", "dir"):
        def fn(ctx, kind=kind):
            argv, meta = gen_base(ctx)
            meta.unlink()
            ctx.special("meta.csv", kind)
            return Spec(argv)
        add(f"meta-{kind}", fn)
    add("meta-header-only", simple(meta_text="image_name,mos\n"))
    add("meta-unclosed-quote", simple(meta_text='image_name,mos\n"a.png,10\nb.png,50\n'))
    add("image-dotdot", simple(names=["a.png", "../../outside.png", "c.png"]))
    add("image-absolute-etc-passwd", simple(names=["a.png", "/etc/passwd", "c.png"]))
    add("image-missing", simple(names=["a.png", "zzz.png", "c.png"]))
    for kind in ("zero", "fifo", "empty", "binary"):
        def fn(ctx, kind=kind):
            argv, meta = gen_base(ctx)
            (ctx.dir / "imgs" / "b.png").unlink()
            ctx.special("imgs/b.png", kind)
            return Spec(argv)
        add(f"image-{kind}", fn, timeout=60)
    for label, m in [("mos-nan", "nan"), ("mos-inf", "inf"), ("mos-text", "good"), ("mos-empty", ""),
                     ("mos-1e309", "1e309")]:
        add(label, simple(mos=["10", m, "90"]))
    for label, extra in [("mos-range-reversed", ["--mos-range", "100", "0"]),
                         ("mos-range-equal", ["--mos-range", "5", "5"]),
                         ("mos-range-nan", ["--mos-range", "nan", "1"]),
                         ("concurrency-0", ["--concurrency", "0"]), ("concurrency-negative", ["--concurrency", "-3"]),
                         ("concurrency-1e9", ["--concurrency", "1000000000"]),
                         ("timeout-0", ["--timeout", "0"]), ("timeout-negative", ["--timeout", "-1"]),
                         ("timeout-nan", ["--timeout", "nan"]),
                         ("retries-negative", ["--retries", "-1"]), ("max-tokens-0", ["--max-tokens", "0"]),
                         ("max-tokens-huge", ["--max-tokens", str(10 ** 15)]),
                         ("max-side-negative", ["--max-side", "-1"]), ("jpeg-quality-0", ["--jpeg-quality", "0"]),
                         ("jpeg-quality-101", ["--jpeg-quality", "101"]), ("limit-negative", ["--limit", "-1"]),
                         ("temperature-nan", ["--temperature", "nan"]),
                         ("image-column-unknown", ["--image-column", "nope"]),
                         ("facts-column-unknown", ["--facts-column", "nope"]),
                         ("mos-column-is-names", ["--mos-column", "image_name"]),
                         ]:
        add(label, simple(extra=extra))
    # documented successes: local OpenAI-compatible servers need no key (a placeholder is sent, and said);
    # --max-consecutive-failures 0 means "never stop early" (--help)
    add("api-key-env-unset", simple(extra=["--api-key-env", "SWEEP_SURELY_UNSET_VAR"]), "ok")
    add("max-consecutive-failures-0", simple(extra=["--max-consecutive-failures", "0"]), "ok")
    add("endpoint-not-a-url", simple(endpoint="not a url"))
    add("endpoint-file-scheme", simple(endpoint="file:///etc/passwd"))

    def refused(ctx):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return Spec(gen_base(ctx, endpoint=f"http://127.0.0.1:{port}/v1")[0])
    add("endpoint-connection-refused", refused)

    def huge(ctx):
        argv, _ = gen_base(ctx, endpoint=ctx.shared.get("huge"), extra=["--max-consecutive-failures", "2"])
        out = ctx.dir / "out.jsonl"
        return Spec(argv, check=lambda c: (f"!{out.stat().st_size} bytes stored" if out.exists() and
                                           out.stat().st_size > 1_000_000 else None))
    add("reply-30MB", huge, timeout=120)
    add("reply-trickles-forever", lambda ctx: Spec(gen_base(ctx, endpoint=ctx.shared.get("trickle"))[0]),
        timeout=60)

    def prompts(kind):
        def fn(ctx):
            path = ctx.p("prompts.yml")
            if kind == "tag":
                path.write_text(f"system: {ctx.yaml_tag()}\n")
            elif kind == "missing":
                pass
            else:
                ctx.special("prompts.yml", kind)
            return Spec(gen_base(ctx, extra=["--prompts", str(path)])[0])
        return fn
    for kind in ("tag", "missing", "empty", "binary", "zero", "fifo"):
        add(f"prompts-{kind}", prompts(kind))

    def out_is(kind):
        def fn(ctx):
            argv, meta = gen_base(ctx)
            i = argv.index("--out") + 1
            if kind == "meta":
                argv[i] = str(meta)
            elif kind == "symlink":
                (ctx.dir / "link.jsonl").symlink_to(meta)
                argv[i] = str(ctx.dir / "link.jsonl")
            elif kind == "hardlink":
                (ctx.dir / "hard.jsonl").hardlink_to(meta)
                argv[i] = str(ctx.dir / "hard.jsonl")
            elif kind == "image":
                argv[i] = str(ctx.dir / "imgs" / "a.png")
                return Spec(argv, protect=[meta, ctx.dir / "imgs" / "a.png"])
            elif kind == "ro":
                argv[i] = str(ctx.ro("ro") / "out.jsonl")
            elif kind == "dir":
                argv[i] = str(ctx.ro("adir").parent)
            elif kind == "garbage":
                ctx.special("out.jsonl", "binary")
                return Spec(argv, protect=[meta])
            return Spec(argv, protect=[meta])
        return fn
    for kind in ("meta", "symlink", "hardlink", "image", "ro", "dir"):
        add(f"out-{kind}", out_is(kind))
    add("out-existing-binary", out_is("garbage"), "ok|clear error")
    return cases



# ---- pyiqa-purify-comments and pyiqa-build-corpus
def purify_base(ctx: Ctx, comments: Optional[str] = None, backbone: Optional[str] = None,
                extra: Sequence[str] = ()):
    com = ctx.write("comments.jsonl", comments if comments is not None else "".join(
        json.dumps({"image": f"{i}.jpg", "comments": [f"lovely warm light number {i}", "sharp and well framed",
                                                      "too dark on the left side"]}) + "\n" for i in range(3)))
    desc = ctx.write("desc.jsonl", "".join(json.dumps({"image": f"{i}.jpg", "task": "aesthetics", "text":
                                                       "warm light, balanced framing"}) + "\n" for i in range(3)))
    argv = [script("pyiqa-purify-comments"), "--comments", str(com), "--descriptions", str(desc), "--backbone",
            backbone or str(ctx.shared.get("backbone")), "--out", str(ctx.dir / "kept.jsonl"), "--device", "cpu",
            "--keep", "2", *extra]
    return argv, com, desc


def purify_cases() -> List[Case]:
    C = "pyiqa-purify-comments"
    cases: List[Case] = []

    def add(name, fn, expect="clear error", timeout=90):
        cases.append(Case(f"purify/{name}", C, fn, expect, timeout))

    def simple(**kw):
        def fn(ctx):
            argv, com, desc = purify_base(ctx, **kw)
            return Spec(argv, protect=[com, desc])
        return fn
    add("control", simple(), "ok")
    for which in ("comments", "desc"):
        for kind in ("zero", "fifo", "binary", "empty", "missing"):
            def fn(ctx, which=which, kind=kind):
                argv, com, desc = purify_base(ctx)
                target = com if which == "comments" else desc
                target.unlink()
                if kind != "missing":
                    ctx.special(target.name, kind)
                return Spec(argv)
            add(f"{which}-{kind}", fn)
    add("comments-image-dotdot", simple(comments=json.dumps({"image": "../../etc/passwd", "comments": ["nice"]}) + "\n"))
    add("comments-not-a-list", simple(comments=json.dumps({"image": "0.jpg", "comments": 42}) + "\n"))
    add("comments-60MB-line", simple(comments=json.dumps({"image": "0.jpg", "comments": ["x " * 30_000_000]}) + "\n"))
    add("comments-csv-unclosed-quote", lambda ctx: Spec(purify_base(ctx, extra=["--format", "csv"],
                                                                     comments='image,comments\n"0.jpg,nice\n')[0]))
    for label, extra in [("keep-0", ["--keep", "0"]), ("keep-negative", ["--keep", "-1"]),
                         ("keep-1e100", ["--keep", "1e100"]), ("batch-size-0", ["--batch-size", "0"]),
                         ("min-tokens-negative", ["--min-tokens", "-1"]), ("encoding-bogus", ["--encoding", "klingon"]),
                         ("delimiter-empty", ["--delimiter", ""]), ("device-bogus", ["--device", "tpu9"])]:
        add(label, simple(extra=extra))
    add("backbone-planted-pickle", lambda ctx: Spec(purify_base(ctx, backbone=str(ctx.plant_pickle("bb.pt")))[0]))
    add("backbone-devzero", lambda ctx: Spec(purify_base(ctx, backbone=str(ctx.special("bb.pt", "zero")))[0]))
    add("backbone-text", lambda ctx: Spec(purify_base(ctx, backbone=str(ctx.write("bb.pt", "hello")))[0]))
    add("backbone-missing", lambda ctx: Spec(purify_base(ctx, backbone=str(ctx.dir / "nope.pt"))[0]))

    def out_is(kind):
        def fn(ctx):
            argv, com, desc = purify_base(ctx)
            i = argv.index("--out") + 1
            argv[i] = {"comments": str(com), "desc": str(desc), "ro": str(ctx.ro("ro") / "k.jsonl"),
                       "dir": str(ctx.dir)}[kind]
            return Spec(argv, protect=[com, desc])
        return fn
    for kind in ("comments", "desc", "ro", "dir"):
        add(f"out-{kind}", out_is(kind))
    return cases


def corpus_base(ctx: Ctx, lines: Optional[str] = None, extra: Sequence[str] = (), root: Optional[str] = None):
    d = ctx.shared.get("demo")
    names = ["images/astronaut_pristine.png", "images/coffee_pristine.png", "images/chelsea_darken1.png"]
    desc = ctx.write("desc.jsonl", lines if lines is not None else "".join(
        json.dumps({"image": n, "text": f"a photo number {i}"}) + "\n" for i, n in enumerate(names)))
    argv = [script("pyiqa-build-corpus"), "--descriptions", str(desc), "--root", root or str(d["root"]),
            "--out", str(ctx.dir / "corpus.json"), *extra]
    return argv, desc


def corpus_cases() -> List[Case]:
    C = "pyiqa-build-corpus"
    cases: List[Case] = []

    def add(name, fn, expect="clear error", timeout=90):
        cases.append(Case(f"corpus/{name}", C, fn, expect, timeout, needs=()))

    def simple(**kw):
        def fn(ctx):
            argv, desc = corpus_base(ctx, **kw)
            return Spec(argv, protect=[desc])
        return fn

    def line(image, text="a photo"):
        return json.dumps({"image": image, "text": text}) + "\n"
    add("control", simple(), "ok")
    add("image-dotdot", lambda ctx: Spec(corpus_base(ctx, lines=line("images/astronaut_pristine.png")
                                                     + line("../outside.png"))[0]))
    add("image-absolute", lambda ctx: Spec(corpus_base(ctx, lines=line("images/astronaut_pristine.png")
                                                       + line("/etc/passwd"))[0]))
    add("image-absolute-real-image", lambda ctx: Spec(corpus_base(ctx, lines=line(
        "images/astronaut_pristine.png") + line(str(ctx.shared.get("outside"))))[0]))
    add("text-not-string", simple(lines=json.dumps({"image": "images/coffee_pristine.png", "text": 5}) + "\n"))
    add("all-lines-torn", simple(lines='{"image": "images/coffee_pri\n{"ima\n'))
    add("60MB-text", simple(lines=line("images/coffee_pristine.png", "x" * 60_000_000)))
    add("no-image-exists", simple(lines=line("images/nope.png")))
    for kind in ("zero", "fifo", "binary", "empty", "missing"):
        def fn(ctx, kind=kind):
            argv, desc = corpus_base(ctx)
            desc.unlink()
            if kind != "missing":
                ctx.special("desc.jsonl", kind)
            return Spec(argv)
        add(f"desc-{kind}", fn)
    for label, w in [("weight-text", "desc.jsonl=abc"), ("weight-negative", "desc.jsonl=-1"),
                     ("weight-1e100", "desc.jsonl=1e100"), ("weight-unknown-source", "nope.jsonl=2"),
                     ("weight-no-equals", "desc.jsonl")]:
        add(label, simple(extra=["--weight", w]))

    def comments(ctx, payload):
        argv, desc = corpus_base(ctx)
        kept = ctx.write("kept.jsonl", json.dumps(payload) + "\n")
        return Spec(argv + ["--comments", str(kept)], protect=[desc])
    add("comments-image-dotdot", lambda ctx: comments(ctx, {"image": "../outside.png", "comments": ["nice"]}))
    add("comments-not-a-list", lambda ctx: comments(ctx, {"image": "images/coffee_pristine.png", "comments": "nice"}))
    add("root-missing", lambda ctx: Spec(corpus_base(ctx, root=str(ctx.dir / "nowhere"))[0]))
    add("root-is-file", lambda ctx: Spec(corpus_base(ctx, root=str(ctx.write("f", "x")))[0]))

    def out_is(kind):
        def fn(ctx):
            argv, desc = corpus_base(ctx)
            i = argv.index("--out") + 1
            if kind == "symlink":
                (ctx.dir / "link.json").symlink_to(desc)
                argv[i] = str(ctx.dir / "link.json")
            else:
                argv[i] = {"desc": str(desc), "ro": str(ctx.ro("ro") / "c.json"), "dir": str(ctx.dir)}[kind]
            return Spec(argv, protect=[desc])
        return fn
    for kind in ("desc", "ro", "dir"):
        add(f"out-{kind}", out_is(kind))
    add("out-symlink", out_is("symlink"), "ok|clear error")  # replacing the link keeps the input: fine

    def report_links_input(ctx):
        argv, desc = corpus_base(ctx)
        (ctx.dir / "corpus_report.md").symlink_to(desc)
        return Spec(argv, protect=[desc])
    add("report-symlink-to-input", report_links_input, "ok|clear error")
    return cases


# ---- pyiqa-train-clip and python -m train_clip.export
def clip_cases() -> List[Case]:
    C = "pyiqa-train-clip"
    cases: List[Case] = []

    def add(name, fn, expect="clear error", timeout=120, needs=()):
        cases.append(Case(f"train-clip/{name}", C, fn, expect, timeout, needs))

    def run(ctx, opt, extra=()):
        return [script("pyiqa-train-clip"), "-opt", str(dump(ctx, "clip.yml", opt)), "--root", str(ctx.dir), *extra]

    def changed(key, value):
        return lambda ctx: Spec(run(ctx, set_key(clip_opt(ctx.shared, "c"), key, value)))

    def corpus(entries):
        def fn(ctx):
            path = ctx.write("corpus.json", json.dumps(entries))
            return Spec(run(ctx, clip_opt(ctx.shared, "c", str(path))), protect=[path])
        return fn
    good = [{"image_path": f"images/{c}_{d}.png", "prompt": [f"a {d} photo"]}
            for c in ("astronaut", "coffee", "chelsea") for d in ("pristine", "darken1", "darken3")]
    add("control", lambda ctx: Spec(run(ctx, clip_opt(ctx.shared, "c"))), "ok")
    add("corpus-control", corpus(good), "ok")
    add("corpus-image-dotdot", corpus(good + [{"image_path": "../../outside.png", "prompt": ["x"]}]))
    add("corpus-image-absolute", corpus(good + [{"image_path": "/etc/passwd", "prompt": ["x"]}]))
    add("corpus-empty-list", corpus([]))
    add("corpus-prompt-not-text", corpus([{"image_path": "images/coffee_darken3.png", "prompt": [3]}]))
    add("corpus-is-dict", corpus({"a": 1}))
    for kind in ("zero", "fifo", "binary", "missing"):
        def fn(ctx, kind=kind):
            path = ctx.dir / "corpus.json"
            if kind != "missing":
                ctx.special("corpus.json", kind)
            return Spec(run(ctx, clip_opt(ctx.shared, "c", str(path))))
        add(f"corpus-{kind}", fn)
    for label, key, value in [("total-steps-1e100", "train.total_steps", 1e100), ("total-steps-4.5", "train.total_steps", 4.5),
                              ("total-steps-negative", "train.total_steps", -1), ("batch-size-0", "train.batch_size", 0),
                              ("batch-size-1e12", "train.batch_size", 10 ** 12), ("lr-text", "train.lr", "fast"),
                              ("lr-nan", "train.lr", float("nan")), ("num-workers-negative", "data.num_workers", -1),
                              ("unknown-key", "train.totl_steps", 3), ("scale-reversed", "data.transform", {"scale": [1.0, 0.5]}),
                              ("manual-seed-text", "manual_seed", "abc"), ("name-dotdot", "name", "../../escaped"),
                              ("name-absolute", "name", "/tmp/sweep_escaped_clip"),
                              ("backbone-missing", "model", {"backbone": "/nonexistent/bb.pt"}),
                              ("save-freq-0", "logger.save_latest_freq", 0), ("data-train-empty", "data.train", [])]:
        add(label, changed(key, value))
    add("backbone-planted-pickle", lambda ctx: Spec(run(ctx, set_key(clip_opt(ctx.shared, "c"), "model",
                                                                        {"backbone": str(ctx.plant_pickle("bb.pt"))}))))
    add("backbone-devzero", lambda ctx: Spec(run(ctx, set_key(clip_opt(ctx.shared, "c"), "model",
                                                                 {"backbone": str(ctx.special("bb.pt", "zero"))}))))
    for kind in ("zero", "fifo", "binary", "empty"):
        add(f"opt-{kind}", lambda ctx, kind=kind: Spec([script("pyiqa-train-clip"), "-opt",
                                                        str(ctx.special("o.yml", kind)), "--root", str(ctx.dir)]))
    add("opt-yaml-tag", lambda ctx: Spec([script("pyiqa-train-clip"), "-opt", str(ctx.write(
        "o.yml", f"name: {ctx.yaml_tag()}\n")), "--root", str(ctx.dir)]))
    add("opt-missing", lambda ctx: Spec([script("pyiqa-train-clip"), "-opt", str(ctx.dir / "no.yml")]))
    add("force-yml-malformed", lambda ctx: Spec(run(ctx, clip_opt(ctx.shared, "c"), ["--force_yml", "train.total_steps"])))
    add("root-read-only", lambda ctx: Spec(run(ctx, clip_opt(ctx.shared, "c"))[:-1] + [str(ctx.ro("ro"))]))

    def resume_planted(ctx):
        states = ctx.p("experiments/c/training_states/x").parent
        ctx.plant_pickle(f"experiments/c/training_states/{5}.state")
        return Spec(run(ctx, clip_opt(ctx.shared, "c"), ["--auto_resume"]))
    add("auto-resume-planted-state", resume_planted)
    add("disk-full", lambda ctx: Spec(run(ctx, clip_opt(ctx.shared, "c")), fsize=100_000), timeout=120)

    def kill_rerun(ctx):
        opt = set_key(clip_opt(ctx.shared, "c"), "train.total_steps", 40)
        argv = run(ctx, opt, ["--auto_resume"])
        return Spec(argv, kill_after=25, rerun=argv)
    add("kill-then-auto-resume", kill_rerun, "ok", timeout=240)

    E = "python -m train_clip.export"

    def export(kind):
        def fn(ctx):
            state = ctx.p("s/1.state")
            shutil.copy(ctx.shared.get("clip_state"), state)
            out = str(ctx.dir / "bb.pt")
            if kind == "same":
                out = str(state)
            elif kind == "symlink":
                (ctx.dir / "bb.pt").symlink_to(state)
            elif kind == "hardlink":
                (ctx.dir / "bb.pt").hardlink_to(state)
            elif kind == "ro":
                out = str(ctx.ro("ro") / "bb.pt")
            elif kind == "dir":
                out = str(ctx.dir)
            elif kind in ("planted", "zero", "text", "adapter"):
                state.unlink()
                if kind == "planted":
                    ctx.plant_pickle("s/1.state")
                elif kind == "zero":
                    ctx.special("s/1.state", "zero")
                elif kind == "text":
                    ctx.write("s/1.state", "hello")
                else:
                    shutil.copy(ctx.shared.get("checkpoint")["net"], state)
            elif kind == "missing":
                state.unlink()
            return Spec([sys.executable, "-m", "train_clip.export", "--state", str(state), "--out", out],
                        protect=[state] if state.is_file() and not state.is_symlink() else [])
        return fn
    for kind in ("control", "same", "symlink", "hardlink", "ro", "dir", "planted", "zero", "text", "adapter", "missing"):
        needs = ("clip_state", "checkpoint") if kind == "adapter" else ("clip_state",)
        cases.append(Case(f"export/{kind}", E, export(kind), "ok" if kind == "control" else "clear error", 90, needs))
    return cases



# ---- pyiqa-train, the feature cache, pyiqa-test
def train_argv(ctx: Ctx, opt: Dict[str, Any], extra: Sequence[str] = (), rel: str = "t.yml") -> List[str]:
    return [script("pyiqa-train"), "-opt", str(dump(ctx, rel, opt)), "--root", str(ctx.dir), *extra]


def demo_meta(ctx: Ctx, edit: Callable[[List[List[str]]], None], rel: str = "meta.csv") -> Path:
    """A copy of the demo meta CSV (image names made absolute-free, relative to the demo root) edited."""
    import csv
    import io
    rows = list(csv.reader(ctx.shared.get("demo")["meta_info_file"].read_text().splitlines()))
    edit(rows)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return ctx.write(rel, buf.getvalue())


def first_train_row(rows: List[List[str]]) -> int:
    col = rows[0].index("ratio802_seed123_split_01")
    return next(i for i, r in enumerate(rows) if i and r[col] == "train")


def _has_cuda() -> bool:
    import torch  # only here: listing the cases stays quick
    return torch.cuda.is_available()


def train_cases() -> List[Case]:
    C = "pyiqa-train"
    cases: List[Case] = []
    N = ("checkpoint",)

    def add(name, fn, expect="clear error", timeout=120, needs=()):
        cases.append(Case(f"train/{name}", C, fn, expect, timeout, needs))

    def changed(*pairs, extra=(), says=None):
        def fn(ctx):
            opt = train_opt(ctx.shared, "t")
            for key, value in zip(pairs[::2], pairs[1::2]):
                set_key(opt, key, value)
            return Spec(train_argv(ctx, opt, extra), says=says)
        return fn
    add("control", changed(), "ok")
    for label, key, value in [
            ("total-iter-1e100", "train.total_iter", 1e100), ("total-iter-4.5", "train.total_iter", 4.5),
            ("total-iter-negative", "train.total_iter", -3), ("total-iter-text", "train.total_iter", "many"),
            ("total-iter-10e30-int", "train.total_iter", 10 ** 30), ("total-iter-bool", "train.total_iter", True),
            ("batch-size-0", "datasets.train.batch_size_per_gpu", 0),
            ("batch-size-1e100", "datasets.train.batch_size_per_gpu", 1e100),
            ("random-crop-100000", "datasets.train.augment.random_crop", 100000),
            ("random-crop-negative", "datasets.train.augment.random_crop", -1),
            ("random-crop-32-below-sample-size", "datasets.train.augment.random_crop", 32),
            ("lr-nan", "train.optim.lr", float("nan")), ("lr-inf", "train.optim.lr", float("inf")),
            ("lr-text", "train.optim.lr", "1e-3x"), ("optim-unknown", "train.optim.type", "Adamm"),
            ("unknown-top-key", "trian", {"total_iter": 3}), ("workers-negative", "datasets.train.num_worker_per_gpu", -1),
            ("workers-1e6", "datasets.train.num_worker_per_gpu", 10 ** 6),
            ("mos-range-reversed", "datasets.train.mos_range", [100, 0]),
            ("mos-range-nan", "datasets.train.mos_range", [float("nan"), 1]),
            ("manual-seed-text", "manual_seed", "abc"), ("manual-seed-huge", "manual_seed", 10 ** 40),
            ("val-freq-0", "val.val_freq", 0),
            ("name-dotdot", "name", "../../escaped_run"), ("name-absolute", "name", "/tmp/sweep_escaped_run"),
            ("name-empty", "name", ""), ("enlarge-1e100", "datasets.train.dataset_enlarge_ratio", 1e100),
            ("split-index-99", "datasets.train.split_index", 99), ("prompts-unknown", "network.prompts", ["qualty"]),
            ("backbone-missing", "network.backbone", "/nonexistent/bb.pt"),
            ("meta-missing", "datasets.train.meta_info_file", "/nonexistent/meta.csv"),
            ("dataroot-missing", "datasets.train.dataroot_target", "/nonexistent/root"),
            ("datasets-null", "datasets", None),
            ("save-latest-freq-0", "logger.save_latest_freq", 0), ("print-freq-negative", "logger.print_freq", -5)]:
        add(label, changed(key, value))
    # Allowed to succeed when they say so: a GPU config on a machine without CUDA trains on CPU with a warning
    # (the release's YAMLs say num_gpu: 1); ``val: null`` beside datasets.val trains without validation (issue
    # 19 leaves the choice: refuse, or train without validation and say which).
    add("num-gpu-99", changed("num_gpu", 99, says=r"CUDA is not available: training on CPU"),
        "clear error" if _has_cuda() else "ok|clear error")
    add("val-null-beside-datasets-val", changed("val", None, says=r"training WITHOUT validation; datasets\.val is "
                                                                 r"not used"), "ok|clear error")
    add("force-yml-malformed", changed(extra=["--force_yml", "train.total_iter"]))
    add("force-yml-tag", lambda ctx: Spec(train_argv(ctx, train_opt(ctx.shared, "t"),
                                                     ["--force_yml", f"name={ctx.yaml_tag()}"])))
    add("force-yml-1e100", changed(extra=["--force_yml", "train.total_iter=1e100"]))
    for kind in ("zero", "fifo", "binary", "empty", "dir"):
        add(f"opt-{kind}", lambda ctx, kind=kind: Spec([script("pyiqa-train"), "-opt", str(ctx.special("o.yml", kind)),
                                                        "--root", str(ctx.dir)]))
    add("opt-missing", lambda ctx: Spec([script("pyiqa-train"), "-opt", str(ctx.dir / "missing.yml")]))
    add("opt-yaml-tag", lambda ctx: Spec([script("pyiqa-train"), "-opt", str(ctx.write(
        "o.yml", f"name: {ctx.yaml_tag()}\n")), "--root", str(ctx.dir)]))
    add("opt-yaml-tag-nested", lambda ctx: Spec([script("pyiqa-train"), "-opt", str(ctx.write(
        "o.yml", dump(ctx, "base.yml", train_opt(ctx.shared, "t")).read_text().replace(
            "total_iter: 2", f"total_iter: {ctx.yaml_tag()}"))), "--root", str(ctx.dir)]))
    add("opt-yaml-billion-laughs", lambda ctx: Spec([script("pyiqa-train"), "-opt", str(ctx.write("o.yml", "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(8)))), "--root", str(ctx.dir)]), timeout=60)

    def meta_case(edit):
        def fn(ctx):
            meta = demo_meta(ctx, edit)
            return Spec(train_argv(ctx, train_opt(ctx.shared, "t", meta=meta)), protect=[meta])
        return fn

    def cell(col, value):
        def edit(rows):
            rows[first_train_row(rows)][rows[0].index(col)] = value
        return edit
    add("meta-image-dotdot", meta_case(cell("image_name", "../outside.png")))
    add("meta-image-absolute", meta_case(cell("image_name", "/etc/passwd")))
    add("meta-mos-nan", meta_case(cell("mos", "nan")))
    add("meta-mos-inf", meta_case(cell("mos", "inf")))
    add("meta-mos-out-of-range", meta_case(cell("mos", "-50")))
    add("meta-header-only", meta_case(lambda rows: rows.__delitem__(slice(1, None))))
    for kind in ("zero", "fifo", "binary"):
        add(f"meta-{kind}", lambda ctx, kind=kind: Spec(train_argv(ctx, train_opt(
            ctx.shared, "t", meta=ctx.special("meta.csv", kind)))))

    def image_case(kind, workers=0):
        def fn(ctx):
            img = ctx.p("img/x.png")
            img.unlink(missing_ok=True)
            ctx.special("img/x.png", kind)
            meta = demo_meta(ctx, cell("image_name", str(img)))
            opt = train_opt(ctx.shared, "t", meta=meta)
            opt["datasets"]["train"]["num_worker_per_gpu"] = workers
            opt["datasets"]["train"]["dataroot_target"] = opt["datasets"]["val"]["dataroot_target"] = "/"
            return Spec(train_argv(ctx, opt))
        return fn
    # an image that never ends or never opens: decoding must not wait or read forever
    add("image-devzero", image_case("zero"), "ok|clear error", timeout=120)
    add("image-fifo-worker", image_case("fifo", 1), "ok|clear error", timeout=120)
    add("split-planted-pickle", lambda ctx: Spec(train_argv(ctx, train_opt(ctx.shared, "t", split=str(
        ctx.plain_pickle("split.pkl"))))))
    add("split-devzero", lambda ctx: Spec(train_argv(ctx, train_opt(ctx.shared, "t", split=str(
        ctx.special("split.pkl", "zero"))))))
    add("split-text", lambda ctx: Spec(train_argv(ctx, train_opt(ctx.shared, "t", split=str(ctx.write("split.pkl", "hi"))))))
    add("pretrain-planted-pickle", lambda ctx: Spec(train_argv(ctx, set_key(
        train_opt(ctx.shared, "t"), "path.pretrain_network_g", str(ctx.plant_pickle("net.pth"))))))
    add("resume-planted-pickle", lambda ctx: Spec(train_argv(ctx, set_key(
        train_opt(ctx.shared, "t"), "path.resume_state", str(ctx.plant_pickle("r.state"))))))
    add("backbone-planted-pickle", lambda ctx: Spec(train_argv(ctx, set_key(
        train_opt(ctx.shared, "t"), "network.backbone", str(ctx.plant_pickle("bb.pt"))))))
    add("backbone-devzero", lambda ctx: Spec(train_argv(ctx, set_key(
        train_opt(ctx.shared, "t"), "network.backbone", str(ctx.special("bb.pt", "zero"))))))
    add("backbone-text", lambda ctx: Spec(train_argv(ctx, set_key(
        train_opt(ctx.shared, "t"), "network.backbone", str(ctx.write("bb.pt", "not a model"))))))
    add("backbone-is-adapter-checkpoint", lambda ctx: Spec(train_argv(ctx, set_key(
        train_opt(ctx.shared, "t"), "network.backbone", str(ctx.shared.get("checkpoint")["net"])))), needs=N)
    # a training state holds the network's weights (resuming needs them): loading them strictly is right
    add("pretrain-is-training-state", lambda ctx: Spec(train_argv(ctx, set_key(
        train_opt(ctx.shared, "t"), "path.pretrain_network_g", str(ctx.shared.get("checkpoint")["state"]))),
        says=r"Loaded network weights from \S+\.state \(strict=True\)"), "ok|clear error", needs=N)

    def auto_resume_planted(ctx):
        ctx.plant_pickle("experiments/t/training_states/9.state")
        return Spec(train_argv(ctx, train_opt(ctx.shared, "t"), ["--auto_resume"]))
    add("auto-resume-planted-state", auto_resume_planted)
    add("root-read-only", lambda ctx: Spec(train_argv(ctx, train_opt(ctx.shared, "t"))[:-1] + [str(ctx.ro("ro"))]))
    add("root-is-file", lambda ctx: Spec(train_argv(ctx, train_opt(ctx.shared, "t"))[:-1] + [str(ctx.write("f", "x"))]))

    def exp_is_file(ctx):
        ctx.write("experiments/t", "a file where the run folder goes")
        return Spec(train_argv(ctx, train_opt(ctx.shared, "t")), protect=[ctx.dir / "experiments" / "t"])
    add("experiment-folder-is-file", exp_is_file)

    def disk_full(ctx):
        opt = set_key(train_opt(ctx.shared, "t"), "datasets.train.num_worker_per_gpu", 1)
        return Spec(train_argv(ctx, opt), fsize=200 * 1024)
    add("disk-full-ulimit-f-200", disk_full, timeout=150)

    def kill_rerun(ctx):
        opt = set_key(train_opt(ctx.shared, "t"), "train.total_iter", 60)
        argv = train_argv(ctx, opt, ["--auto_resume"])
        return Spec(argv, kill_after=30, rerun=argv)
    add("kill-then-auto-resume", kill_rerun, "ok", timeout=300)

    # ---- the feature cache
    F = "pyiqa-train (feature cache)"

    def cache_opt(ctx, cache):
        opt = train_opt(ctx.shared, "t")
        opt["train"]["feature_cache"] = True
        opt["train"]["feature_cache_dir"] = str(cache)
        return opt

    def cache_copy(ctx) -> Path:
        dst = ctx.dir / "cache"
        shutil.copytree(ctx.shared.get("cache"), dst)
        return dst

    def shard(cache: Path, suffix: str) -> Path:
        return sorted(cache.glob(f"*_views_*/shard-*{suffix}"))[0]  # the training views: what is trained on

    def fadd(name, fn, expect="clear error", timeout=150):
        cases.append(Case(f"cache/{name}", F, fn, expect, timeout, ("cache",)))

    def rebuilt(ctx):  # a damaged shard must be noticed (logged), not read
        log = (ctx.dir / ".stdout").read_text(errors="replace") + (ctx.dir / ".stderr").read_text(errors="replace")
        return None if re.search(r"rebuil|cannot be trusted|does not match|invalid|stale|changed", log, re.I) else \
            "exit 0 and nothing in the log says the damaged shard was noticed"

    def damage(fn_damage, expect="ok|clear error", check=True):
        def fn(ctx):
            cache = cache_copy(ctx)
            fn_damage(ctx, cache)
            return Spec(train_argv(ctx, cache_opt(ctx, cache)), check=rebuilt if check else None)
        return fn
    fadd("control", lambda ctx: Spec(train_argv(ctx, cache_opt(ctx, cache_copy(ctx)))), "ok")

    def object_npy(ctx, cache):
        import numpy as np
        npy = shard(cache, ".npy")
        np.save(npy, np.array([Planted(str(ctx.marker))], dtype=object), allow_pickle=True)
    fadd("npy-object-array-planted", damage(object_npy), "ok|clear error")

    def wrong_shape(ctx, cache):
        import numpy as np
        np.save(shard(cache, ".npy"), np.zeros((3, 5), np.float16))
    fadd("npy-wrong-shape", damage(wrong_shape), "ok|clear error")

    def permute_rows(ctx, cache):
        meta = shard(cache, ".json")
        info = json.loads(meta.read_text())
        info["rows"] = list(reversed(info["rows"]))
        meta.write_text(json.dumps(info))
    fadd("json-rows-permuted", damage(permute_rows), "ok|clear error")

    def replace_with(suffix, kind):
        def dmg(ctx, cache):
            target = shard(cache, suffix)
            target.unlink()
            ctx.special(str(target.relative_to(ctx.dir)), kind)
        return dmg
    for suffix in (".npy", ".json"):
        for kind in ("zero", "fifo", "binary", "empty"):
            fadd(f"{suffix[1:]}-{kind}", damage(replace_with(suffix, kind)), "ok|clear error")

    def truncate(ctx, cache):
        npy = shard(cache, ".npy")
        npy.write_bytes(npy.read_bytes()[:200])
    fadd("npy-truncated", damage(truncate), "ok|clear error")

    def cache_is_file(ctx):
        path = ctx.write("cache", "not a folder")
        return Spec(train_argv(ctx, cache_opt(ctx, path)), protect=[path])
    fadd("dir-is-file", cache_is_file)
    fadd("dir-read-only-empty", lambda ctx: Spec(train_argv(ctx, cache_opt(ctx, ctx.ro("cache")))))

    def ro_full(ctx):
        if os.geteuid() == 0:
            raise NotTestable("read-only folders cannot be tested as root")
        cache = cache_copy(ctx)
        for p in sorted(cache.rglob("*"), reverse=True):
            p.chmod(0o555 if p.is_dir() else 0o444)
        cache.chmod(0o555)
        return Spec(train_argv(ctx, cache_opt(ctx, cache)))
    fadd("dir-read-only-complete", ro_full, "ok")
    fadd("dir-devzero", lambda ctx: Spec(train_argv(ctx, cache_opt(ctx, ctx.special("cache", "zero")))))
    for label, key, value in [("views-0", "views_per_image", 0), ("views-negative", "views_per_image", -2),
                              ("views-1e100", "views_per_image", 1e100), ("views-4.5", "views_per_image", 4.5),
                              ("flag-string", "feature_cache", "yes"), ("dir-number", "feature_cache_dir", 123)]:
        fadd(label, lambda ctx, key=key, value=value: Spec(train_argv(ctx, set_key(
            cache_opt(ctx, ctx.dir / "cache"), f"train.{key}", value))))

    def image_changed(ctx):
        """Build the cache on a 12-image copy, then change one image's pixels keeping size and mtime."""
        import numpy as np
        from PIL import Image
        root = ctx.p("ds/x").parent
        lines = ["image_name,mos"]
        for i in range(12):
            tiny_png(root / f"{i}.png", i, (240, 224))
            lines.append(f"{i}.png,{5 * i}")
        meta = ctx.write("ds/meta.csv", "\n".join(lines) + "\n")
        opt = cache_opt(ctx, ctx.dir / "cache")
        for part in ("train", "val"):
            opt["datasets"][part].update(dataroot_target=str(root), meta_info_file=str(meta))
            opt["datasets"][part].pop("split_file")
            opt["datasets"][part].pop("split_index")
        opt["datasets"]["train"]["augment"] = {"hflip": True, "random_crop": 224}
        opt["datasets"]["train"]["batch_size_per_gpu"] = 4
        opt["datasets"].pop("val")
        opt.pop("val")
        argv = train_argv(ctx, opt)
        ctx.run_now(argv)
        shutil.rmtree(ctx.dir / "experiments")
        img = root / "3.png"
        st = img.stat()
        size = st.st_size
        for seed in range(200, 400):
            tiny_png(root / "tmp.png", seed, (240, 224))
            if (root / "tmp.png").stat().st_size == size:
                os.replace(root / "tmp.png", img)
                break
        else:
            raise RuntimeError("no same-size image found")
        os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
        return Spec(argv, check=rebuilt)
    fadd("image-changed-same-size-mtime", image_changed, "ok", timeout=300)

    # ---- pyiqa-test
    T = "pyiqa-test"

    def tadd(name, fn, expect="clear error", timeout=120):
        cases.append(Case(f"test/{name}", T, fn, expect, timeout, N))

    def test_argv(ctx, opt, extra=()):
        return [script("pyiqa-test"), "-opt", str(dump(ctx, "test.yml", opt)), "--root", str(ctx.dir), *extra]

    def with_ckpt(make):
        def fn(ctx):
            path = make(ctx)
            return Spec(test_argv(ctx, test_opt(ctx.shared, "r", str(path))))
        return fn
    tadd("control", lambda ctx: Spec(test_argv(ctx, test_opt(ctx.shared, "r"))), "ok")
    tadd("ckpt-planted-pickle", with_ckpt(lambda ctx: ctx.plant_pickle("n.pth")))
    tadd("ckpt-devzero", with_ckpt(lambda ctx: ctx.special("n.pth", "zero")))
    tadd("ckpt-fifo", with_ckpt(lambda ctx: ctx.special("n.pth", "fifo")))
    tadd("ckpt-text", with_ckpt(lambda ctx: ctx.write("n.pth", "text")))
    tadd("ckpt-missing", with_ckpt(lambda ctx: ctx.dir / "none.pth"))
    tadd("ckpt-is-training-state", lambda ctx: dataclasses.replace(with_ckpt(
        lambda c: c.shared.get("checkpoint")["state"])(ctx), says=r"Loaded network weights from \S+\.state \(strict="
                                                              r"True\)"), "ok|clear error")  # as above
    tadd("ckpt-is-backbone", with_ckpt(lambda ctx: ctx.shared.get("backbone")))

    def nan_ckpt(ctx):
        import torch
        ck = torch.load(ctx.shared.get("checkpoint")["net"], weights_only=True, map_location="cpu")

        def poison(obj):
            if isinstance(obj, torch.Tensor) and obj.is_floating_point():
                return torch.full_like(obj, float("nan"))
            if isinstance(obj, dict):
                return {k: poison(v) for k, v in obj.items()}
            return obj
        path = ctx.p("nan.pth")
        torch.save(poison(ck), path)
        pred = ctx.dir / "results" / "r" / "predictions_demo.csv"
        return Spec(test_argv(ctx, test_opt(ctx.shared, "r", str(path))),
                    check=lambda c: None if pred.exists() else "!no predictions CSV written")
    tadd("ckpt-nan-tensors", nan_ckpt, "ok")
    tadd("prompts-differ-from-checkpoint", lambda ctx: Spec(test_argv(ctx, set_key(
        test_opt(ctx.shared, "r"), "network.prompts", ["quality", "blur", "noise", "lowhigh"]))))
    tadd("results-read-only", lambda ctx: Spec(test_argv(ctx, test_opt(ctx.shared, "r"))[:-1] + [str(ctx.ro("ro"))]))

    def pred_links_meta(ctx):
        meta = demo_meta(ctx, lambda rows: None)
        ctx.p("results/r/x")
        (ctx.dir / "results" / "r" / "predictions_demo.csv").symlink_to(meta)
        return Spec(test_argv(ctx, test_opt(ctx.shared, "r", meta=meta)), protect=[meta])
    tadd("predictions-symlink-to-meta", pred_links_meta, "ok|clear error")
    tadd("meta-fifo", lambda ctx: Spec(test_argv(ctx, test_opt(ctx.shared, "r", meta=ctx.special("m.csv", "fifo")))))
    tadd("meta-header-only", lambda ctx: Spec(test_argv(ctx, test_opt(ctx.shared, "r", meta=demo_meta(
        ctx, lambda rows: rows.__delitem__(slice(1, None)))))))
    tadd("opt-yaml-tag", lambda ctx: Spec([script("pyiqa-test"), "-opt", str(ctx.write(
        "o.yml", f"name: {ctx.yaml_tag()}\n")), "--root", str(ctx.dir)]))
    tadd("opt-binary", lambda ctx: Spec([script("pyiqa-test"), "-opt", str(ctx.special("o.yml", "binary"))]))
    tadd("batch-size-0", lambda ctx: Spec(test_argv(ctx, set_key(test_opt(ctx.shared, "r"),
                                                               "datasets.test.batch_size_per_gpu", 0))))
    return cases



# ---- protocol runners: pyiqa-run-splits, pyiqa-eval-zero-shot, pyiqa-results-table
def protocol_cases() -> List[Case]:
    cases: List[Case] = []
    R = "pyiqa-run-splits"

    def radd(name, fn, expect="clear error", timeout=120):
        cases.append(Case(f"run-splits/{name}", R, fn, expect, timeout))

    def splits(*extra, opt_edit=None, dry=True):
        def fn(ctx):
            opt = train_opt(ctx.shared, "s")
            if opt_edit:
                opt_edit(ctx, opt)
            argv = [script("pyiqa-run-splits"), "-opt", str(dump(ctx, "s.yml", opt)), "--root", str(ctx.dir / "runs"),
                    "--results", str(ctx.dir / "results"), *(["--dry_run"] if dry else []), *extra]
            escaped = ctx.dir.parent / "escaped_tag"
            return Spec(argv, check=lambda c: "!wrote outside --root" if any(
                p.name.startswith("s_..") or "escaped" in p.name for p in c.dir.parent.iterdir()) else None)
        return fn
    radd("control-dry-run", splits("--splits", "1"), "ok")
    radd("control-one-split", splits("--splits", "1", dry=False), "ok", timeout=240)
    for label, extra in [("splits-0", ["--splits", "0"]), ("splits-huge", ["--splits", "1-100000"]),
                         ("splits-text", ["--splits", "abc"]), ("splits-empty", ["--splits", ""]),
                         ("splits-reversed", ["--splits", "5-1"]), ("splits-11", ["--splits", "11"]),
                         ("labels-7", ["--labels", "7"]), ("labels-negative", ["--labels", "-50"]),
                         ("gpus-text", ["--gpus", "x"]), ("gpus-negative", ["--gpus", "-1"]),
                         ("dataroot-no-equals", ["--test-on", "koniq10k", "--dataroot", "koniq10k"]),
                         ("dataroot-missing-folder", ["--test-on", "koniq10k", "--dataroot", "koniq10k=/nonexistent"]),
                         ("test-on-unknown", ["--test-on", "koniq11k"]), ("tag-dotdot", ["--tag", "../../../escaped"]),
                         ("tag-slash", ["--tag", "a/b"]), ("force-yml-malformed", ["--force_yml", "train.total_iter"]),
                         ("force-yml-1e100", ["--force_yml", "train.total_iter=1e100"])]:
        radd(label, splits("--splits", "1", *extra))
    radd("results-is-file", lambda ctx: Spec(splits("--splits", "1")(ctx).argv[:-3] + [
        "--results", str(ctx.write("results", "x")), "--dry_run"], protect=[ctx.dir / "results"]))
    radd("opt-yaml-tag", lambda ctx: Spec([script("pyiqa-run-splits"), "-opt", str(ctx.write(
        "o.yml", f"name: {ctx.yaml_tag()}\n")), "--dry_run", "--root", str(ctx.dir)]))
    radd("opt-devzero", lambda ctx: Spec([script("pyiqa-run-splits"), "-opt", str(ctx.special("o.yml", "zero")),
                                         "--dry_run", "--root", str(ctx.dir)]))
    radd("split-file-planted", splits("--splits", "1", opt_edit=lambda ctx, opt: [
        opt["datasets"][k].update(split_file=str(ctx.plain_pickle("sp.pkl"))) for k in ("train", "val")], dry=False))

    Z = "pyiqa-eval-zero-shot"

    def zadd(name, fn, expect="clear error", timeout=150):
        cases.append(Case(f"zero-shot/{name}", Z, fn, expect, timeout))

    def zs(*extra, dataroot=None, backbone=None, out=None):
        def fn(ctx):
            d = ctx.shared.get("demo")
            argv = [script("pyiqa-eval-zero-shot"), "--datasets", "demo", "--dataroot",
                    f"demo={dataroot(ctx) if dataroot else d['root']}", "--backbone",
                    backbone(ctx) if backbone else str(ctx.shared.get("backbone")), "--limit", "4", "--batch-size", "4",
                    "--workers", "0", "--device", "cpu", "--out", out(ctx) if out else str(ctx.dir / "zs"), *extra]
            return Spec(argv)
        return fn
    zadd("control", zs(), "ok")

    def missing_root(ctx):
        spec = zs(dataroot=lambda c: str(c.dir / "not_there"))(ctx)
        spec.check = lambda c: "!created the missing --dataroot folder" if (c.dir / "not_there").exists() else None
        return spec
    zadd("dataroot-missing-folder", missing_root)
    zadd("dataroot-is-file", zs(dataroot=lambda c: str(c.write("f", "x"))))
    def unrelated_root(ctx):
        # a folder of the user's own files, not a dataset (the case once named /etc: as root, a build was
        # written there); nothing may be created in it
        mine = ctx.write("mine/notes.txt", "my own files")
        spec = zs(dataroot=lambda c: str(mine.parent))(ctx)
        spec.protect = [mine]
        spec.check = lambda c: (f"!wrote into the named --dataroot: {sorted(x.name for x in mine.parent.iterdir())}"
                                if sorted(x.name for x in mine.parent.iterdir()) != ["notes.txt"] else None)
        return spec
    zadd("dataroot-unrelated-folder", unrelated_root)
    zadd("dataroot-no-equals", lambda ctx: Spec(zs()(ctx).argv[:4] + ["demo"] + zs()(ctx).argv[5:]))
    for label, extra in [("dataset-unknown", ["--datasets", "koniq11k"]), ("limit-0", ["--limit", "0"]),
                         ("limit-negative", ["--limit", "-1"]), ("limit-1e100", ["--limit", "1e100"]),
                         ("batch-size-0", ["--batch-size", "0"]), ("batch-size-negative", ["--batch-size", "-4"]),
                         ("workers-negative", ["--workers", "-1"]), ("device-bogus", ["--device", "quantum"]),
                         ("models-unknown", ["--models", "uniqa-xl"]), ("meta-dir-missing", ["--meta-dir", "/nonexistent"])]:
        zadd(label, zs(*extra))
    zadd("backbone-planted-pickle", zs(backbone=lambda c: str(c.plant_pickle("bb.pt"))))
    zadd("backbone-devzero", zs(backbone=lambda c: str(c.special("bb.pt", "zero"))))
    zadd("backbone-text", zs(backbone=lambda c: str(c.write("bb.pt", "x"))))
    zadd("backbone-missing", zs(backbone=lambda c: str(c.dir / "no.pt")))
    zadd("out-is-file", zs(out=lambda c: str(c.write("zs", "x"))))
    zadd("out-read-only", zs(out=lambda c: str(c.ro("zs"))))

    def out_json_links(ctx):
        meta = demo_meta(ctx, lambda rows: None, "keep.csv")
        ctx.p("zs/x")
        (ctx.dir / "zs" / "demo.json").symlink_to(meta)
        spec = zs()(ctx)
        spec.protect = [meta]
        return spec
    zadd("out-json-symlink-to-user-file", out_json_links, "ok|clear error")

    T = "pyiqa-results-table"

    def tadd(name, fn, expect="clear error", timeout=90):
        cases.append(Case(f"results-table/{name}", T, fn, expect, timeout))

    def results(ctx) -> Path:
        root = ctx.p("results/x").parent
        stats = {"median": 0.5, "mean": 0.49, "std": 0.01, "n": 10}
        ctx.write("results/koniq_10/summary.json", json.dumps(
            {"name": "koniq_10", "dataset": "koniq10k", "config": None, "labels": None, "prompts": ["quality"],
             "splits": list(range(1, 11)), "protocols": {"release": {"srcc": stats, "plcc": stats}},
             "honest_unavailable": "no val"}))
        models = {m: {"srcc": 0.3, "plcc": 0.3, "krcc": 0.2} for m in ("uniqa", "uniqa-single")}
        ctx.write("results/zero_shot/demo.json", json.dumps(
            {"dataset": "demo", "images": 130, "backbone": "random", "random_weights": True, "models": models,
             "limit": None}))
        return root

    def table(edit=None, strict=False, out=None):
        def fn(ctx):
            root = results(ctx)
            if edit:
                edit(ctx, root)
            protect = [p for p in root.rglob("*.json") if p.is_file() and not p.is_symlink()]
            argv = [script("pyiqa-results-table"), str(root), *(["--strict"] if strict else []),
                    *(["--out", out(ctx)] if out else [])]
            return Spec(argv, protect=protect)
        return fn
    tadd("control", table(), "ok")

    def zero_json(kind):
        def edit(ctx, root):
            (root / "zero_shot" / "demo.json").unlink()
            ctx.special("results/zero_shot/demo.json", kind)
        return edit
    for kind in ("zero", "fifo", "binary", "empty", "dir"):
        tadd(f"zero-shot-json-{kind}", table(zero_json(kind), strict=True))
        tadd(f"zero-shot-json-{kind}-lenient", table(zero_json(kind)), "ok|clear error")

    def write(rel, text):
        return lambda ctx, root: ctx.write(f"results/{rel}", text)
    tadd("summary-60MB", table(write("koniq_10/summary.json", json.dumps({"pad": "x" * 60_000_000})), strict=True))
    tadd("summary-deep-nesting", table(write("koniq_10/summary.json", "[" * 200_000 + "]" * 200_000), strict=True))
    tadd("summary-list", table(write("koniq_10/summary.json", "[1, 2]"), strict=True))
    tadd("summary-srcc-text", table(write("koniq_10/summary.json", json.dumps({
        "name": "koniq_10", "dataset": "koniq10k", "protocols": {"release": {"srcc": {"median": "high"}}}})), strict=True))
    tadd("summary-srcc-nan", table(write("koniq_10/summary.json", '{"name": "koniq_10", "dataset": "koniq10k", '
                                         '"prompts": ["quality"], "splits": [1], "protocols": {"release": {"srcc": '
                                         '{"median": NaN, "mean": NaN, "std": null, "n": 1}}}}'), strict=True))
    tadd("summary-dataset-dotdot", table(write("koniq_10/summary.json", json.dumps({
        "name": "../../x", "dataset": "../../etc", "protocols": {}})), strict=True))
    tadd("zero-shot-srcc-2", table(write("zero_shot/demo.json", json.dumps({
        "dataset": "demo", "images": 1, "backbone": "random", "random_weights": True, "limit": None,
        "models": {"uniqa": {"srcc": 2.0, "plcc": 0.1, "krcc": 0.1}}})), strict=True))
    tadd("results-missing", lambda ctx: Spec([script("pyiqa-results-table"), str(ctx.dir / "none")]))
    tadd("results-is-file", lambda ctx: Spec([script("pyiqa-results-table"), str(ctx.write("r.json", "{}"))]))
    tadd("results-empty", lambda ctx: Spec([script("pyiqa-results-table"), str(ctx.ro("empty"))]))
    tadd("out-read-only", table(out=lambda c: str(c.ro("ro"))))
    tadd("out-is-file", table(out=lambda c: str(c.write("TABLE", "x"))))

    def table_md_links(ctx, root):
        (root / "TABLE.md").symlink_to(root / "koniq_10" / "summary.json")
    tadd("table-md-symlink-to-input", table(table_md_links), "ok|clear error")
    return cases


# ---- pyiqa (the scoring command) and pyiqa install-weights
def cli_cases() -> List[Case]:
    P = "pyiqa"
    cases: List[Case] = []

    def add(name, fn, expect="clear error", timeout=90, needs=()):
        cases.append(Case(f"pyiqa/{name}", P, fn, expect, timeout, needs))

    def score(*extra, target=None, protect_img=True):
        def fn(ctx):
            img = tiny_png(ctx.p("imgs/a.png"), 0, (96, 80))
            tiny_png(ctx.p("imgs/b.png"), 1, (96, 80))
            t = target(ctx) if target else str(img)
            argv = [script("pyiqa"), "uniqa", "-t", t, "--backbone", str(ctx.shared.get("backbone")), "--device", "cpu",
                    "--workers", "0", "-q"]
            for x in extra:
                argv.append(x(ctx) if callable(x) else x)
            return Spec(argv, protect=[img, ctx.dir / "imgs" / "b.png"] if protect_img else [])
        return fn
    add("control", score(), "ok")
    add("control-folder", score(target=lambda c: str(c.dir / "imgs")), "ok")
    add("out-equals-target", score("-o", lambda c: str(c.dir / "imgs" / "a.png")))

    def link(kind):
        def make(ctx):
            dst = ctx.dir / "out.csv"
            (dst.symlink_to if kind == "sym" else dst.hardlink_to)(ctx.dir / "imgs" / "a.png")
            return str(dst)
        return make
    add("out-symlink-to-target", score("-o", link("sym")))
    add("out-hardlink-to-target", score("-o", link("hard")))
    add("out-is-image-in-target-folder", score("-o", lambda c: str(c.dir / "imgs" / "b.png"),
                                               target=lambda c: str(c.dir / "imgs")))
    add("out-read-only-folder", score("-o", lambda c: str(c.ro("ro") / "s.csv")))
    add("out-is-folder", score("-o", lambda c: str(c.ro("adir"))))
    add("out-parent-missing", score("-o", lambda c: str(c.dir / "no" / "such" / "s.csv")), "ok|clear error")
    for kind in ("zero", "fifo", "empty", "binary", "dir"):
        add(f"target-{kind}", score(target=lambda c, kind=kind: str(c.special(f"t_{kind}.png", kind))), timeout=60)
    add("target-missing", score(target=lambda c: str(c.dir / "none.png")))
    add("target-empty-folder", score(target=lambda c: str(c.ro("emptydir"))))

    def fifo_in_folder(ctx):
        ctx.special("imgs/c.png", "fifo")
        return str(ctx.dir / "imgs")
    add("folder-with-fifo-image", score(target=fifo_in_folder), "ok|clear error", timeout=60)

    def devzero_in_folder(ctx):
        ctx.special("imgs/c.png", "zero")
        return str(ctx.dir / "imgs")
    add("folder-with-devzero-image", score(target=devzero_in_folder), "ok|clear error", timeout=60)

    def bomb(ctx):
        """A 30000x30000 PNG of a few hundred KiB: 2.7 GB decoded."""
        import zlib
        import struct
        w = h = 30000
        raw = zlib.compress(b"".join(b"\x00" + b"\x00" * w for _ in range(h)), 9)

        def chunk(tag, data):
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + \
            chunk(b"IDAT", raw) + chunk(b"IEND", b"")
        return str(ctx.write("bomb.png", png))
    add("decompression-bomb-limit-0", score("--max-image-pixels", "0", target=bomb), timeout=120)
    add("decompression-bomb-default", score(target=bomb), timeout=120)
    for label, extra in [("workers-negative", ["--workers", "-1"]), ("batch-size-0", ["--batch-size", "0"]),
                         ("batch-size-negative", ["--batch-size", "-2"]), ("num-crops-0", ["--num-crops", "0"]),
                         ("num-crops-huge", ["--num-crops", "100000000"]), ("max-side-negative", ["--max-side", "-1"]),
                         ("max-image-pixels-negative", ["--max-image-pixels", "-5"]), ("crops-unknown", ["--crops", "random99"]),
                         ("device-bogus", ["--device", "gpu9"])]:
        add(label, score(*extra))
    add("metric-unknown", lambda ctx: Spec([script("pyiqa"), "uniqaa", "-t", str(tiny_png(ctx.p("a.png")))]))
    add("backbone-planted-pickle", lambda ctx: Spec([script("pyiqa"), "uniqa", "-t", str(tiny_png(ctx.p("a.png"))),
                                                     "--backbone", str(ctx.plant_pickle("bb.pt")), "--workers", "0"]))
    add("backbone-devzero", lambda ctx: Spec([script("pyiqa"), "uniqa", "-t", str(tiny_png(ctx.p("a.png"))),
                                              "--backbone", str(ctx.special("bb.pt", "zero")), "--workers", "0"]))
    add("backbone-text", lambda ctx: Spec([script("pyiqa"), "uniqa", "-t", str(tiny_png(ctx.p("a.png"))),
                                           "--backbone", str(ctx.write("bb.pt", "x")), "--workers", "0"]))
    add("adapter-planted-pickle", score("--adapter", lambda c: str(c.plant_pickle("ad.pth"))))
    add("adapter-devzero", score("--adapter", lambda c: str(c.special("ad.pth", "zero"))))
    add("adapter-is-training-state", score("--adapter", lambda c: str(c.shared.get("checkpoint")["state"])),
        needs=("checkpoint",))
    add("weights-dir-planted", lambda ctx: Spec([script("pyiqa"), "uniqa", "-t", str(tiny_png(ctx.p("a.png"))),
                                                 "--workers", "0"], env={"PYIQA_WEIGHTS_DIR": str(
                                                     ctx.plant_pickle("w/UniQA_weight.pt").parent)}))

    I = "pyiqa install-weights"

    def iadd(name, fn, expect="clear error", needs=("checkpoint",)):
        cases.append(Case(f"install-weights/{name}", I, fn, expect, 90, needs))

    def install(name="uniqa-koniq", ckpt=None, wdir=None):
        def fn(ctx):
            c = ckpt(ctx) if ckpt else ctx.shared.get("checkpoint")["net"]
            env = {"PYIQA_WEIGHTS_DIR": str(wdir(ctx) if wdir else ctx.p("w/x").parent)}
            protect = [Path(c)] if Path(c).is_file() and not Path(c).is_symlink() else []
            return Spec([script("pyiqa"), "install-weights", name, str(c)], protect=protect, env=env)
        return fn
    iadd("control", install(), "ok|clear error")
    iadd("planted-pickle", install(ckpt=lambda c: c.plant_pickle("ck.pth")))
    iadd("devzero", install(ckpt=lambda c: c.special("ck.pth", "zero")))
    iadd("fifo", install(ckpt=lambda c: c.special("ck.pth", "fifo")))
    iadd("text", install(ckpt=lambda c: c.write("ck.pth", "x")))
    iadd("missing", install(ckpt=lambda c: c.dir / "none.pth"))
    iadd("training-state", install(ckpt=lambda c: c.shared.get("checkpoint")["state"]))
    iadd("backbone-file", install(ckpt=lambda c: c.shared.get("backbone")))
    iadd("name-unknown", install(name="uniqa-nope"))
    iadd("name-dotdot", install(name="../../escaped"))
    iadd("weights-dir-read-only", install(wdir=lambda c: c.ro("w")))

    def into_itself(ctx):
        wdir = ctx.p("w/x").parent
        ck = ctx.p("ck.pth")
        shutil.copy(ctx.shared.get("checkpoint")["net"], ck)
        for name in ("uniqa_koniq.pth", "UniQA_koniq.pth", "uniqa-koniq.pth"):
            (wdir / name).symlink_to(ck)
        return Spec([script("pyiqa"), "install-weights", "uniqa-koniq", str(wdir / "uniqa-koniq.pth")],
                    protect=[ck], env={"PYIQA_WEIGHTS_DIR": str(wdir)})
    iadd("checkpoint-is-installed-target", into_itself, "ok|clear error")
    return cases


def all_cases() -> List[Case]:
    return (prepare_cases() + gen_cases() + purify_cases() + corpus_cases() + clip_cases() + train_cases()
            + protocol_cases() + cli_cases())


# ------------------------------------------------------------------------------------------ report
CLASSES = ["clear error", "ok", "traceback", "silent", "lost", "code ran", "hang", "crash", "setup failed", "not testable", "set up"]


def markdown(results: List[Result]) -> str:
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| case | command | expected | class | rc | s | first line of stderr |", "|---|---|---|---|---|---|---|"]
    for r in results:
        line = esc(r.first_line + (f" [{r.detail}]" if r.detail else ""))
        lines.append(f"| {r.case} | {r.command} | {r.expect} | **{r.cls}** | {r.rc} | {r.seconds} | {line} |")
    counts = {c: sum(r.cls == c for r in results) for c in CLASSES}
    lines += ["", "| class | cases |", "|---|---|"] + [f"| {c} | {n} |" for c, n in counts.items() if n]
    lines.append(f"| total | {len(results)} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run the cases whose name or command matches this regex")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    parser.add_argument("--work", type=Path, help="folder for shared artefacts and case folders "
                        "(default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep each case's folder")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--setup-only", action="store_true",
                        help="run every case's setup but not its command (checks the sweep itself)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    cases = all_cases()
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SystemExit(f"duplicate case names: {sorted(dupes)}")
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.name) or re.search(args.only, c.command)]
    if args.list:
        for c in cases:
            print(f"{c.name:45s} {c.command:30s} {c.expect}")
        print(f"{len(cases)} cases")
        return 0
    work = (args.work or Path(tempfile.mkdtemp(prefix="bad_input_sweep_"))).resolve()
    shared = Shared(work)
    t0 = time.time()
    shared.build({n for c in cases for n in c.needs})
    print(f"shared artefacts in {work} ({time.time() - t0:.0f} s); {len(cases)} cases, {args.jobs} at a time",
          file=sys.stderr)
    results: List[Result] = []
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_case, c, shared, args.keep, args.setup_only) for c in cases]
        for fut in cf.as_completed(futures):
            r = fut.result()
            results.append(r)
            print(f"[{len(results):3d}/{len(cases)}] {r.cls:12s} {r.case} ({r.seconds} s)", file=sys.stderr)
    order = {c.name: i for i, c in enumerate(cases)}
    results.sort(key=lambda r: order[r.case])
    report = markdown(results)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    print(f"{len(results)} cases in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
