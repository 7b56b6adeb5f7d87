"""Hostile or wrong inputs to the corpus tools and train_clip's caption sources: image names that leave
their root, special files, oversized lines and an MLLM reply far longer than it was asked for. Each is
one clear error (or, for the reply, a retried failure) and nothing outside the root is read or written.
Real files; a real HTTP server on 127.0.0.1 for the reply cap; the command line as a subprocess."""
from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, run_script
from pyiqa.utils.errors import ConfigError, DataError, OutputError
from train_clip.corpus.build import build_corpus
from train_clip.corpus.comments import MAX_IMAGE_CHARS, CommentSource, image_name, read_comments
from train_clip.corpus.commands import build_corpus as build_command
from train_clip.corpus.commands import generate_descriptions
from train_clip.corpus.describe import reply_cap
from train_clip.corpus.jsonl_log import MAX_LINE_BYTES, JsonlLog, read_jsonl
from train_clip.data import build_samples, read_csv_source, read_json_source

BUILD = str(REPO / "scripts" / "build_corpus.py")


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((24, 32, 3), 120, np.uint8)).save(path)
    return path


def _descriptions(path: Path, images: List[str]) -> Path:
    path.write_text("".join(json.dumps({"image": i, "task": "quality", "text": f"A photo of {i}."}) + "\n"
                            for i in images))
    return path


# ------------------------------------------------------------------------------------ build_corpus
@pytest.mark.parametrize("name, why", [("../outside.png", "climbs out of the image folder"),
                                       ("sub/../../outside.png", "climbs out of the image folder"),
                                       ("/etc/passwd", r"is an absolute path; .*\(--allow-absolute-paths allows")])
def test_build_corpus_refuses_names_outside_root(tmp_path, name, why):
    root = tmp_path / "images"
    _image(root / "a.png")
    _image(tmp_path / "outside.png")  # exists: only the name check stands between it and the corpus
    desc = _descriptions(tmp_path / "q.jsonl", ["a.png", name])
    with pytest.raises(DataError, match=rf"'.*q.jsonl' line 2: image name '{name}' {why}"):
        build_corpus([desc], root, tmp_path / "corpus.json")
    assert not (tmp_path / "corpus.json").exists()


def test_build_corpus_absolute_names_only_with_the_option(tmp_path):
    root = tmp_path / "images"
    _image(root / "a.png")
    elsewhere = _image(tmp_path / "elsewhere" / "b.png")
    desc = _descriptions(tmp_path / "q.jsonl", ["a.png", str(elsewhere)])
    proc = run_script([BUILD, "--descriptions", str(desc), "--root", str(root), "--out", str(tmp_path / "c.json")],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is an absolute path" in proc.stderr.strip().splitlines()[-1]
    build_command.main(["--descriptions", str(desc), "--root", str(root), "--out", str(tmp_path / "c.json"),
                        "--allow-absolute-paths"])
    entries = json.loads((tmp_path / "c.json").read_text())
    assert [e["image_path"] for e in entries] == [str(elsewhere), "a.png"]


# --------------------------------------------------------------------------------------- JSONL files
def test_jsonl_reader_refuses_special_files_and_oversized_lines(tmp_path):
    link = tmp_path / "zero.jsonl"
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match=r"Descriptions file '.*zero.jsonl' is a device; expected a regular file"):
        list(read_jsonl(link, "Descriptions file"))
    big = tmp_path / "big.jsonl"
    with open(big, "w") as f:
        f.write(json.dumps({"image": "a.png", "text": "ok"}) + "\n")
        f.write(json.dumps({"image": "b.png", "text": "x" * (MAX_LINE_BYTES + 10)}) + "\n")
    with pytest.raises(DataError, match=r"'.*big.jsonl' line 2 is longer than 16 MiB, the cap for one record"):
        list(read_jsonl(big))


def test_results_log_on_a_special_file_is_refused(tmp_path):
    link = tmp_path / "out.jsonl"
    link.symlink_to("/dev/zero")
    with pytest.raises(OutputError, match=r"'.*out.jsonl' exists and is not a regular file"):
        JsonlLog(link).open()


# ------------------------------------------------------------------------------------------ comments
def test_comment_ids_that_leave_the_image_folder_are_refused():
    assert image_name("953619", "{id}.jpg", set()) == "953619.jpg"
    with pytest.raises(DataError, match=r"image id '../../etc/x': image name '../../etc/x.jpg' climbs out"):
        image_name("../../etc/x", "{id}.jpg", set())
    with pytest.raises(DataError, match=r"image name '/etc/passwd' is an absolute path"):
        image_name("/etc/passwd", "{id}", set())


def test_comments_file_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "AVA_Comments_Full.txt"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(DataError, match=r"Comments file '.*AVA_Comments_Full.txt' is a FIFO"):
        list(read_comments(CommentSource(fifo)))


def test_comment_line_over_the_cap_is_refused_with_its_line(tmp_path):
    # a 60 MB line was read, cleaned and ranked; one image's comments stay far below the cap
    path = tmp_path / "c.jsonl"
    line = json.dumps({"image": "2", "comments": ["x " * (MAX_IMAGE_CHARS // 2)]})
    path.write_text(json.dumps({"image": "1", "comments": ["fine light"]}) + "\n" + line + "\n")
    with pytest.raises(DataError, match=rf"c.jsonl:2: the line holds {len(line):,} characters, over the "
                                        rf"cap of {MAX_IMAGE_CHARS:,} for one image's comments"):
        list(read_comments(CommentSource(path)))
    lines = tmp_path / "AVA_Comments_Full.txt"
    lines.write_text("1 953619 nice#" + "y" * (MAX_IMAGE_CHARS + 1) + "\n")
    with pytest.raises(DataError, match=r"AVA_Comments_Full.txt:1: the line holds"):
        list(read_comments(CommentSource(lines, delimiter=" ")))


@pytest.mark.parametrize("comments, got", [(42, "int 42"), ("nice", "str 'nice'"),
                                           (["ok", 7], "a list holding int")])
def test_build_corpus_comments_of_the_wrong_type_name_the_line(tmp_path, comments, got):
    # a string or a number was skipped with a warning and the corpus built without the file's texts
    root = tmp_path / "images"
    _image(root / "a.png")
    desc = _descriptions(tmp_path / "q.jsonl", ["a.png"])
    kept = tmp_path / "kept.jsonl"
    kept.write_text(json.dumps({"image": "a.png", "comments": ["good light"]}) + "\n"
                    + json.dumps({"image": "a.png", "comments": comments}) + "\n")
    with pytest.raises(DataError, match=rf"'.*kept.jsonl' line 2: 'comments' must be a list of strings, got "
                                        rf"{got}.*; is it a kept-comments file \(pyiqa-purify-comments\)\?"):
        build_corpus([desc], root, tmp_path / "corpus.json", comments=[kept])
    assert not (tmp_path / "corpus.json").exists()
    desc.write_text(json.dumps({"image": "a.png", "text": 5}) + "\n")
    with pytest.raises(DataError, match=r"'.*q.jsonl' line 1: 'text' must be a string, got int 5"):
        build_corpus([desc], root, tmp_path / "corpus.json")


# --------------------------------------------------------------------------------- train_clip sources
def test_caption_json_names_stay_in_data_root(tmp_path):
    root = tmp_path / "images"
    captions = tmp_path / "c.json"
    for name in ("../outside.png", "/etc/passwd"):
        captions.write_text(json.dumps([{"image_path": "a.png", "prompt": "ok"}, {"image_path": name, "prompt": "x"}]))
        with pytest.raises(DataError, match=rf"'.*c.json' entry 1: image name '{name}'"):
            read_json_source(captions, str(root))
    samples = read_json_source(captions, str(root), allow_absolute=True)
    assert samples[1] == ("/etc/passwd", ("x",))
    captions.write_text(json.dumps([{"image_path": "../x.png", "prompt": "x"}]))
    with pytest.raises(DataError, match="climbs out"):
        read_json_source(captions, str(root), allow_absolute=True)  # '..' is never allowed


def test_caption_table_names_and_bad_files(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text("filepath,caption\na.png,fine\n/etc/shadow,bad\n")
    with pytest.raises(DataError, match=r"'.*pairs.csv' row 1: image name '/etc/shadow' is an absolute path; .*"
                                        r"allow_absolute: true"):
        read_csv_source(table)
    table.write_bytes(b"filepath,caption\n\x00\x01binary")
    with pytest.raises(DataError, match=r"Caption table .*pairs.csv' holds binary data"):
        read_csv_source(table)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match=r"Caption file '.*zero.json' is a device"):
        read_json_source(link)
    with pytest.raises(ConfigError, match=r"'data.train\[0\].allow_absolute' must be true or false, got 'yes'"):
        build_samples([{"type": "json", "path": str(link), "allow_absolute": "yes"}], "data.train")


# --------------------------------------------------------------------------- generate_descriptions
class _Server:
    """A chat-completions endpoint whose n-th reply is ``sizes[0][n]`` characters long (the last size repeats)."""

    def __init__(self, sizes: Dict[int, List[int]]) -> None:
        self.sizes, self.attempts, self.requests = sizes, {}, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = 0  # the tests send one image
                outer.requests += 1
                n = outer.attempts[key] = outer.attempts.get(key, 0) + 1
                plan = outer.sizes.get(key, [40])
                size = plan[min(n, len(plan)) - 1]
                reply = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0, "finish_reason": "length",
                                                 "message": {"role": "assistant", "content": "A" * size}}]})
                data = reply.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _meta(tmp_path: Path, names: List[str]) -> Path:
    meta = tmp_path / "meta.csv"
    meta.write_text("img_name,mos\n" + "".join(f"{n},{20 + 30 * i}\n" for i, n in enumerate(names)))
    return meta


def _describe(tmp_path, meta, url, *extra) -> List[str]:
    return ["--meta", str(meta), "--root", str(tmp_path / "images"), "--task", "quality", "--mos-range", "0", "100",
            "--endpoint", url, "--model", "m", "--out", str(tmp_path / "d.jsonl"), "--backoff", "0.01",
            "--max-tokens", "10", "--no-progress", *extra]


def test_reply_far_longer_than_max_tokens_is_retried_then_a_failure(tmp_path, capsys):
    _image(tmp_path / "images" / "img0.png")
    meta = _meta(tmp_path, ["img0.png"])
    cap = reply_cap(10)
    server = _Server({0: [cap * 1000, 40]})  # the first reply is 160,000 characters for 10 tokens
    try:
        generate_descriptions.main(_describe(tmp_path, meta, server.url))
        records = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
        assert len(records) == 1 and records[0]["attempts"] == 2 and len(records[0]["text"]) == 40
        server.sizes[0] = [cap + 1]  # always too long: retries spent, a failure naming the cap
        (tmp_path / "d.jsonl").unlink()
        generate_descriptions.main(_describe(tmp_path, meta, server.url, "--retries", "1"))
    finally:
        server.close()
    assert not (tmp_path / "d.jsonl").read_text()
    failure = json.loads((tmp_path / "d.jsonl.failures.jsonl").read_text().splitlines()[-1])
    assert failure["kind"] == "oversized" and failure["attempts"] == 2
    assert f"reply of {cap + 1} characters, over the cap of {cap} (16 per requested token" in failure["reason"]


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd"])
def test_meta_names_outside_root_are_refused_before_any_request(tmp_path, name):
    _image(tmp_path / "images" / "img0.png")
    _image(tmp_path / "outside.png")
    meta = _meta(tmp_path, ["img0.png", name])
    server = _Server({})
    try:
        with pytest.raises(DataError, match=rf"Meta info CSV '.*meta.csv' column 'img_name' line 3: image name "
                                            rf"'{name}'"):
            generate_descriptions.main(_describe(tmp_path, meta, server.url))
    finally:
        server.close()
    assert server.requests == 0 and not (tmp_path / "d.jsonl").exists()


def test_meta_absolute_names_are_described_with_the_option(tmp_path):
    elsewhere = _image(tmp_path / "elsewhere" / "img0.png")
    (tmp_path / "images").mkdir()
    meta = _meta(tmp_path, [str(elsewhere)])
    server = _Server({})
    try:
        generate_descriptions.main(_describe(tmp_path, meta, server.url, "--allow-absolute-paths"))
    finally:
        server.close()
    records = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert server.requests == 1 and [r["image"] for r in records] == [str(elsewhere)]


# ------------------------------------------------------------------ outputs that are inputs
def test_no_corpus_command_writes_over_its_inputs(tmp_path):
    """--out naming an input (itself, a symbolic or a hard link to it) is refused before anything is
    written, and the input keeps its bytes: build_corpus (atomic replace) and purify_comments' report."""
    import os

    from pyiqa.utils.errors import OutputError
    from pyiqa.utils.outputs import refuse_writing_over_inputs
    from train_clip.corpus.build import build_corpus

    descriptions = tmp_path / "desc.jsonl"
    descriptions.write_text('{"image": "a.png", "task": "quality", "text": "a sharp photo"}\n')
    original = descriptions.read_bytes()
    os.symlink(descriptions, tmp_path / "link.jsonl")
    os.link(descriptions, tmp_path / "hard.jsonl")
    for out in (descriptions, tmp_path / "link.jsonl", tmp_path / "hard.jsonl"):
        with pytest.raises(OutputError, match=r"--out '.*' is the same file as the input --descriptions"):
            build_corpus([descriptions], tmp_path, out)
        assert descriptions.read_bytes() == original
    # a report written beside --out is an output too
    report = tmp_path / "kept.report.csv"
    report.write_text("x")
    with pytest.raises(OutputError, match=r"the report '.*kept.report.csv' is the same file as the input"):
        refuse_writing_over_inputs([("--out", tmp_path / "kept.jsonl"), ("the report", report)],
                                   [("--comments", report)])
    refuse_writing_over_inputs([("--out", tmp_path / "new.jsonl")], [("--comments", descriptions)])  # fine


def test_generate_descriptions_refuses_an_out_that_is_its_meta_csv_or_an_image(tmp_path):
    from pyiqa.utils.errors import OutputError
    from train_clip.corpus.describe import DescribeSettings, run

    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (32, 32)).save(root / "a.png")
    meta = tmp_path / "meta.csv"
    meta.write_text("img_name,mos\na.png,3.0\n")
    kept = {p: p.read_bytes() for p in (meta, root / "a.png")}
    os.symlink(root / "a.png", tmp_path / "alias.jsonl")
    for out, what in ((meta, "--meta"), (tmp_path / "alias.jsonl", "image 'a.png'")):
        settings = DescribeSettings(meta=meta, root=root, task="quality", mos_range=(1.0, 5.0),
                                    endpoint="http://127.0.0.1:9/v1", model="m", out=out)
        with pytest.raises(OutputError, match=f"is the same file as the input {what}"):
            run(settings)
    assert {p: p.read_bytes() for p in kept} == kept


def test_a_reply_that_trickles_forever_meets_the_request_deadline(tmp_path, monkeypatch):
    """The client's timeout bounds each read; a server sending one byte every 0.2 s used to hang the run."""
    import time
    from train_clip.corpus import describe
    monkeypatch.setattr(describe, "DEADLINE_MARGIN_S", 1.0)  # the deadline: 2 x 1 + 1 s (10 s margin shipped)

    class Trickle(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000000")
            self.end_headers()
            try:
                for _ in range(600):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _image(tmp_path / "images" / "img0.png")
    meta = _meta(tmp_path, ["img0.png"])
    start = time.monotonic()
    try:
        generate_descriptions.main(_describe(tmp_path, meta, f"http://127.0.0.1:{httpd.server_address[1]}/v1",
                                             "--timeout", "1", "--retries", "0"))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert time.monotonic() - start < 30  # the deadline is 2 x 1 + 1 s
    failure = json.loads((tmp_path / "d.jsonl.failures.jsonl").read_text().splitlines()[-1])
    assert failure["kind"] == "timeout" and "deadline" in failure["reason"]


def test_the_command_exits_1_when_images_failed(tmp_path):
    """Every request refused (no server on the port): the run ends, lists the failures and exits 1."""
    from train_clip.corpus.cli import generate_descriptions as command
    _image(tmp_path / "images" / "img0.png")
    meta = _meta(tmp_path, ["img0.png"])
    with pytest.raises(SystemExit) as ended:
        command(_describe(tmp_path, meta, "http://127.0.0.1:9/v1", "--retries", "0", "--timeout", "2"))
    assert ended.value.code == 1
    failure = json.loads((tmp_path / "d.jsonl.failures.jsonl").read_text().splitlines()[-1])
    assert failure["kind"] == "connection"
