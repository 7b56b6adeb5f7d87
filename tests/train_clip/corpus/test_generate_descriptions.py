"""generate_descriptions.py against a real chat-completions server on 127.0.0.1 (scripts/mllm_stub_server.py).

The server checks each request's shape, records its prompt, and answers some requests slowly, with
429/500/503, dropped connections, or malformed, empty and refused replies. Twelve tiny images, written
by the test, each carry their index in the red channel so the server knows which image it was sent.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

import pytest
from PIL import Image

from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
from mllm_stub_server import StubServer  # noqa: E402

from pyiqa.utils.entry import run_cli  # noqa: E402
from pyiqa.utils.errors import ConfigError, DataError  # noqa: E402
from train_clip.corpus import levels  # noqa: E402
from train_clip.corpus.commands import generate_descriptions  # noqa: E402  (main(argv))
from train_clip.corpus.jsonl_log import JsonlLog  # noqa: E402
from train_clip.corpus.prompts import load_prompts  # noqa: E402

SCRIPT = str(REPO / "scripts" / "generate_descriptions.py")
MOS = [5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 20, 80]  # on a 0-100 scale; 20 and 80 sit on boundaries
EXPECTED = ["bad", "bad", "poor", "poor", "fair", "fair", "good", "good", "perfect", "perfect", "poor", "perfect"]
FLIPPED = ["perfect", "perfect", "good", "good", "fair", "fair", "poor", "poor", "bad", "bad", "perfect", "poor"]
FIELDS = {"image", "task", "mos", "level", "prompt_version", "model", "text"}


def identify(img: Image.Image) -> int:
    """The image index from its red channel (10 + 20 * index; JPEG moves it by a few levels)."""
    red = img.getpixel((img.width // 2, img.height // 2))[0]
    return round((red - 10) / 20)


@pytest.fixture
def ds(tmp_path: Path) -> Dict[str, Path]:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    names = [f"sub/img{i:02d}.png" if i % 2 else f"img{i:02d}.jpg" for i in range(len(MOS))]
    for i, name in enumerate(names):
        Image.new("RGB", (96 + i, 64), (10 + 20 * i, 128, 64)).save(root / name)
    rows = [f"{n},{m},{'blur' if i % 3 else 'noise'}" for i, (n, m) in enumerate(zip(names, MOS))]
    meta = tmp_path / "meta.csv"
    meta.write_text("image_name,mos,distortion_type\n" + "\n".join(rows) + "\n")
    # pyiqa's synthetic-distortion layout: reference first, the rated image second, MOS third
    ref_first = tmp_path / "meta_ref_first.csv"
    ref_first.write_text("ref_name,dist_name,mos\n" + "\n".join(f"ref.png,{n},{m}" for n, m in zip(names, MOS)))
    return {"root": root, "meta": meta, "ref_first": ref_first, "out": tmp_path / "out" / "desc.jsonl",
            "names": names}


def cli(ds: Dict, server: StubServer, *extra: str, out: Path = None) -> List[str]:
    return ["--meta", str(ds["meta"]), "--root", str(ds["root"]), "--task", "quality", "--mos-range", "0", "100",
            "--endpoint", server.url, "--model", "stub-vlm", "--out", str(out or ds["out"]), "--max-side", "64",
            "--backoff", "0.01", "--no-progress", *extra]


def read_jsonl(path: Path) -> List[dict]:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    assert text == "" or text.endswith("\n"), f"torn last line in {path}"
    return [json.loads(line) for line in text.splitlines()]


def by_image(records: List[dict]) -> Dict[str, dict]:
    images = [r["image"] for r in records]
    assert len(images) == len(set(images)), f"duplicates: {sorted(images)}"
    return {r["image"]: r for r in records}


# -------------------------------------------------------------------------------- levels, prompts
def test_levels_equal_width_bins_and_clipping(caplog):
    assert levels.LEVELS == ("bad", "poor", "fair", "good", "perfect")
    assert [lv for _, lv in levels.mos_levels(MOS, (0, 100))] == EXPECTED
    assert [lv for _, lv in levels.mos_levels(MOS, (0, 100), lower_better=True)] == FLIPPED
    assert [lv for _, lv in levels.mos_levels([4.2, 1.8, 5.0], (1, 5))] == ["perfect", "poor", "perfect"]
    with caplog.at_level("WARNING"):
        got = levels.mos_levels([-3, 50, 130, 140], (0, 100))
    assert got[0] == (0.0, "bad") and got[2] == (1.0, "perfect")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "3 of 4" in warnings[0]
    with pytest.raises(ConfigError, match="LOW < HIGH"):
        levels.mos_levels([1], (5, 1))


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace("{level}.", "{levle}.", 1), "quality.user"),
    (lambda t: t.replace("aesthetics:", "aesthetic:"), "aesthetic"),
    (lambda t: t[: t.index("aesthetics:")], "aesthetics"),
    (lambda t: t.replace("{level}", "the level"), "{level}"),
])
def test_prompt_yaml_mistakes_name_file_and_key(tmp_path, edit, key):
    shipped = (REPO / "options" / "descriptions" / "prompts.yml").read_text()
    bad = tmp_path / "prompts.yml"
    bad.write_text(edit(shipped))
    with pytest.raises(ConfigError) as err:
        load_prompts(bad)
    assert str(bad) in str(err.value) and key in str(err.value)


def test_shipped_prompts_render_level_and_facts():
    prompts = load_prompts()
    for task in ("quality", "aesthetics"):
        for level in levels.LEVELS:
            system, user = prompts.render(task, level, {"distortion_type": "gaussian blur"})
            words = set(user.lower().replace(".", " ").replace(",", " ").split())
            assert level in words and not (set(levels.LEVELS) - {level}) & words  # no conflicting level
            assert "distortion type is gaussian blur" in user and "{" not in system + user
        assert "{" not in prompts.render(task, "fair")[1]


def test_stub_server_rejects_a_bad_request_shape():
    """The stub is only a fair judge if it refuses what a real server would refuse."""
    import urllib.error
    import urllib.request
    good_image = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,bm90IGFuIGltYWdl"}}
    bodies = [{"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "no image"}]},
              {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [good_image]}]},
              {"model": "", "max_tokens": 8, "messages": []}]
    with StubServer() as server:
        for body in bodies:
            req = urllib.request.Request(server.url + "/chat/completions", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            assert err.value.code == 400
    assert len(server.rejected) == 3 and "does not decode as an image" in server.rejected[1]
    assert server.requests == []


# ----------------------------------------------------------------------------------- the script
def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as ended:
        generate_descriptions.main(["--help"])
    assert ended.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--meta", "--root", "--task", "--mos-range", "--lower-better", "--endpoint", "--model",
                 "--concurrency", "--out", "--image-column", "--mos-column", "--facts-column", "--prompts",
                 "--max-side", "--api-key-env", "--timeout", "--retries", "--backoff", "--max-tokens",
                 "--temperature"):
        assert flag in text


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrency_prompts_and_output_fields(ds, concurrency, capsys):
    with StubServer(latency=0.15, identify=identify) as server:
        generate_descriptions.main(cli(ds, server, "--concurrency", str(concurrency), "--facts-column",
                                       "distortion_type", "--max-tokens", "77", "--temperature", "0.5"))
    assert server.max_in_flight == concurrency and not server.rejected
    assert sorted(r["key"] for r in server.requests) == list(range(len(MOS)))  # each image asked once
    version = load_prompts().version
    for req in server.requests:
        i = req["key"]
        assert f"as {EXPECTED[i]}." in req["user"], req["user"]
        assert ("blur" if i % 3 else "noise") in req["user"]
        assert max(req["image_size"]) == 64 and req["max_tokens"] == 77 and req["temperature"] == 0.5
    records = by_image(read_jsonl(ds["out"]))
    assert set(records) == set(ds["names"])
    for i, name in enumerate(ds["names"]):
        r = records[name]
        assert FIELDS <= set(r) and r["task"] == "quality" and r["model"] == "stub-vlm"
        assert r["mos"] == MOS[i] and r["level"] == EXPECTED[i] and r["prompt_version"] == version
        assert r["text"].startswith("[stub reply")
    assert not Path(str(ds["out"]) + ".failures.jsonl").read_text()
    assert f"{len(MOS)} described" in capsys.readouterr().out


def test_lower_better_and_named_columns_flip_the_levels(ds):
    with StubServer(identify=identify) as server:
        argv = cli(ds, server, "--lower-better", "--image-column", "dist_name", "--mos-column", "mos")
        argv[argv.index("--meta") + 1] = str(ds["ref_first"])
        generate_descriptions.main(argv)
    for req in server.requests:
        assert f"as {FLIPPED[req['key']]}." in req["user"]
    records = by_image(read_jsonl(ds["out"]))
    assert [records[n]["level"] for n in ds["names"]] == FLIPPED


def test_transient_errors_are_retried_others_fail_and_rerun(ds):
    faults = {0: ["429", "500", "slow"], 1: ["drop", "503"], 2: ["500"] * 4, 3: ["400"]}
    with StubServer(faults=faults, identify=identify, slow_seconds=2.0) as server:
        generate_descriptions.main(cli(ds, server, "--retries", "3", "--timeout", "0.6", "--concurrency", "4"))
        assert server.attempts[0] == 4 and server.attempts[1] == 3   # retried, then described
        assert server.attempts[2] == 4 and server.attempts[3] == 1   # retries spent; 400 not retried
        records = by_image(read_jsonl(ds["out"]))
        assert records[ds["names"][0]]["attempts"] == 4 and len(records) == len(MOS) - 2
        failures = {f["image"]: f for f in read_jsonl(Path(str(ds["out"]) + ".failures.jsonl"))}
        assert set(failures) == {ds["names"][2], ds["names"][3]}
        spent = failures[ds["names"][2]]
        assert spent["kind"] == "server_error" and "4 attempt" in spent["reason"]
        assert failures[ds["names"][3]]["kind"] == "http_error" and "400" in failures[ds["names"][3]]["reason"]
        assert all(set(f) >= {"image", "reason", "time"} for f in failures.values())
        generate_descriptions.main(cli(ds, server))  # the re-run retries only the failures
        assert server.attempts[2] == 5 and server.attempts[3] == 2 and server.attempts[5] == 1
    assert set(by_image(read_jsonl(ds["out"]))) == set(ds["names"])


def test_bad_replies_are_failures_and_retried_next_run(ds, capsys):
    faults = {0: ["malformed"], 1: ["no_choices"], 2: ["empty"], 3: ["refusal"], 4: ["content_filter"]}
    with StubServer(faults=faults, identify=identify) as server:
        generate_descriptions.main(cli(ds, server, "--concurrency", "3"))
        first = read_jsonl(ds["out"])
        failures = {f["image"]: f["kind"] for f in read_jsonl(Path(str(ds["out"]) + ".failures.jsonl"))}
        assert failures == {ds["names"][0]: "malformed", ds["names"][1]: "malformed", ds["names"][2]: "empty",
                            ds["names"][3]: "refusal", ds["names"][4]: "refusal"}
        assert len(first) == len(MOS) - 5 and "5 failed" in capsys.readouterr().out
        assert all(server.attempts[i] == 1 for i in range(5))  # not retried within the run
        generate_descriptions.main(cli(ds, server))
        assert all(server.attempts[i] == 2 for i in range(5)) and server.attempts[7] == 1
    records = by_image(read_jsonl(ds["out"]))
    assert set(records) == set(ds["names"]) and records[ds["names"][3]]["text"].startswith("[stub reply")


def test_every_image_described_once_after_sigkill(ds):
    """The real script, killed (SIGKILL) while requests are in flight, then run again to the end."""
    with StubServer(latency=0.25, identify=identify) as server:
        args = [SCRIPT, *cli(ds, server, "--concurrency", "2")]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if ds["out"].exists() and ds["out"].read_text().count("\n") >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"finished or failed before the kill: {proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
        killed = read_jsonl(ds["out"])
        assert 3 <= len(killed) < len(MOS)
        generate_descriptions.main(args[1:])  # the re-run (in-process: same code, no second start-up)
    records = by_image(read_jsonl(ds["out"]))
    assert set(records) == set(ds["names"])
    assert {r["image"]: r["text"] for r in killed}.items() <= {k: r["text"] for k, r in records.items()}.items()


def test_torn_last_line_is_repaired(ds):
    ds["out"].parent.mkdir(parents=True)
    with StubServer(identify=identify) as server:
        generate_descriptions.main(cli(ds, server, "--limit", "3"))
        good = ds["out"].read_text()
        ds["out"].write_text(good + '{"image": "img04.jpg", "task": "quality", "te')  # a write cut by a kill
        generate_descriptions.main(cli(ds, server))
    assert ds["out"].read_text().startswith(good)
    assert set(by_image(read_jsonl(ds["out"]))) == set(ds["names"])
    log = JsonlLog(ds["out"])
    full = ds["out"].read_text()
    ds["out"].write_text(full + "garbage cut right at a newline\n")  # a bad *last* line: cut off too
    assert len(list(log.open().records())) == len(MOS) and ds["out"].read_text() == full
    log.close()
    ds["out"].write_text("not json\n" + full)  # a bad line inside: not ours to repair
    with pytest.raises(DataError, match="line 1 is not a JSON object"):
        list(log.open().records())
    log.close()


def test_wrong_meta_root_and_columns_fail_before_any_request(ds, tmp_path, capsys):
    with StubServer(identify=identify) as server:
        base = cli(ds, server)
        for flag, value, message in (("--meta", str(tmp_path / "nope.csv"), "does not exist"),
                                     ("--root", str(tmp_path / "nope"), "not a folder"),
                                     ("--root", str(tmp_path), "None of the 12 images"),
                                     ("--mos-column", "score", "no column 'score'"),
                                     ("--facts-column", "distortion", "no column 'distortion'")):
            argv = list(base)
            if flag in argv:
                argv[argv.index(flag) + 1] = value
            else:
                argv += [flag, value]
            with pytest.raises(DataError, match=message):
                generate_descriptions.main(argv)
        assert server.requests == [] and not ds["out"].exists()
        with pytest.raises(SystemExit) as ended:  # as the script ends: one line, exit status 2
            run_cli(lambda: generate_descriptions.main([*base[:1], str(tmp_path / "nope.csv"), *base[2:]]))
    assert ended.value.code == 2
    assert capsys.readouterr().err == f"error: Meta info CSV '{tmp_path / 'nope.csv'}' does not exist\n"



@pytest.mark.parametrize("flag, value, message", [
    ("--concurrency", "1000000000", "--concurrency 1000000000 is out of range: expected from 1 to 256 "
                                    "(requests in flight)"),
    ("--max-tokens", str(10 ** 15), "--max-tokens 1000000000000000 is out of range: expected from 1 to 32768"),
    ("--jpeg-quality", "0", "--jpeg-quality 0 is out of range: expected from 1 to 95"),
    ("--jpeg-quality", "101", "--jpeg-quality 101 is out of range: expected from 1 to 95"),
    ("--limit", "-1", "--limit -1 is out of range: expected >= 1 (images described this run; leave the flag "
                      "out for all)"),
    ("--limit", "0", "--limit 0 is out of range: expected >= 1"),
    ("--max-consecutive-failures", "-1", "--max-consecutive-failures -1 is out of range: expected >= 0"),
    ("--timeout", "nan", "--timeout nan is out of range"),
    ("--temperature", "inf", "--temperature inf is out of range: expected from 0 to 2"),
])
def test_numeric_flag_out_of_range_is_one_error_before_any_request(ds, flag, value, message, capsys):
    # --limit -1 used to describe all but the last image; the others were passed on to the server or Pillow
    with StubServer(identify=identify) as server:
        with pytest.raises(SystemExit) as ended:
            run_cli(lambda: generate_descriptions.main(cli(ds, server, flag, value)))
        assert server.requests == []
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {message}"), err
    assert not ds["out"].exists()


def test_zero_consecutive_failures_means_never_stop(ds):
    # documented in --help ("0: never"): every image fails and the run still goes through all of them
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    argv = cli(ds, SimpleNamespace(url=dead), "--retries", "0", "--max-consecutive-failures", "0",
               "--timeout", "2")
    summary = generate_descriptions.main(argv)
    assert summary.described == 0 and sum(summary.failures.values()) == len(MOS)

def test_missing_image_is_a_failure_and_set_up_errors_stop_the_run(ds):
    (ds["root"] / ds["names"][5]).unlink()
    with StubServer(identify=identify, faults={0: ["401"]}) as server:
        with pytest.raises(ConfigError, match="API key"):
            generate_descriptions.main(cli(ds, server, "--concurrency", "1"))
        generate_descriptions.main(cli(ds, server))
    failures = read_jsonl(Path(str(ds["out"]) + ".failures.jsonl"))
    assert [(f["image"], f["kind"]) for f in failures] == [(ds["names"][5], "missing_image")]
    assert len(by_image(read_jsonl(ds["out"]))) == len(MOS) - 1
    with socket.socket() as s:  # a port nobody listens on: the run stops instead of failing every image
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    argv = cli(ds, server, "--retries", "0", "--max-consecutive-failures", "1", out=ds["out"].with_name("x.jsonl"))
    argv[argv.index("--endpoint") + 1] = dead
    with pytest.raises(ConfigError, match="in a row failed"):
        generate_descriptions.main(argv)
