"""Purifying AVA comments: reading the published layouts, cleaning per reason, AR/IR ranking, selection,
the report and the command's errors.

The backbone is the tiny RANDOM CLIP (``tiny_backbone``): its similarities are arbitrary and say nothing
about aesthetics. The tests check the arithmetic (AR is the cosine ranking computed independently, IR
the token-length ranking, the AR + IR selection), never which comment "should" win.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from pyiqa.utils.errors import CheckpointError, ConfigError, DataError
from train_clip.corpus.commands import purify_comments as command
from train_clip.corpus.comments import (CommentSource, clean_comment, clean_comments, image_name,
                                        read_comments)
from train_clip.corpus.purify import PurifyOptions, TextEncoder, load_descriptions, purify

# Image 11: every kind of noise plus enough real comments, of distinct lengths, for a real ranking.
COMMENTS: Dict[str, List[str]] = {
    "11": [
        "Great composition, the leading lines pull the eye straight to the lighthouse at dusk",
        "nice shot",                                    # 2 tokens: too short at --min-tokens 3
        "Nice   SHOT",                                  # duplicate of the above (case, spaces)
        "Great composition, the leading lines pull the eye straight to the lighthouse at dusk",
        "http://www.dpchallenge.com/image.php?IMAGE_ID=11",   # link only
        "see www.example.com/tips for more on long exposures at night",  # link stripped, words kept
        ":-) 10/10 !!!",                                # no letters
        "\U0001F60D\U0001F60D",                         # emoji only
        "   ",                                          # empty
        "<br />",                                       # HTML remnant only: empty
        "The sky is blown out &amp; the horizon tilts a little",
        "Love the colours",
        "I would crop tighter on the left; the dark tree is a distraction from the subject",
        "Soft light, muted tones and a calm mood, well done on the exposure",
        "Sharp",
    ],
    # 12.txt is Latin-1; U+0085 is a cp1252 ellipsis read as Latin-1 (as in the crawl): not a line break
    "12": ["Colours are muted and the contrast is flat", "Beautiful warm tones in the café scene",
           "Nice mood\x85 but the horizon is tilted"],
    "13": ["A comment on an image that has no description at all"],
    "14": ["!!!", "www.example.com", ""],
}
DESCRIPTIONS = [
    ("11.jpg", "aesthetics", "The composition uses leading lines toward a lighthouse; warm dusk light."),
    ("11.jpg", "aesthetics", "Balanced framing, soft light, a slightly tilted horizon."),
    ("11.jpg", "quality", "Sharp, low noise."),  # another task: ignored
    ("12.jpg", "aesthetics", "Muted colours, flat contrast, warm tones."),
    ("99.jpg", "aesthetics", "An image without comments."),
]


def write_crawl(root: Path) -> Path:
    """The AVA-Comments crawl layout: <image id>.txt, one comment per line; 12.txt in Latin-1."""
    root.mkdir(parents=True, exist_ok=True)
    for image, comments in COMMENTS.items():
        encoding = "latin-1" if image == "12" else "utf-8"
        (root / f"{image}.txt").write_bytes("\n".join(comments).encode(encoding) + b"\n")
    (root / "README.md").write_text("not a comment file")
    return root


def write_descriptions(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for image, task, text in DESCRIPTIONS:
            f.write(json.dumps({"image": image, "task": task, "mos": 5.0, "level": "fair",
                                "prompt_version": "v1", "model": "test", "text": text}) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("purify")
    return {"crawl": write_crawl(root / "AVA-Comments"),
            "descriptions": write_descriptions(root / "descriptions.jsonl"), "root": root}


@pytest.fixture(scope="module")
def encoder(tiny_backbone) -> TextEncoder:
    return TextEncoder(str(tiny_backbone), device="cpu", batch_size=4)  # several batches per chunk


def run(data, encoder, **options):
    descriptions = load_descriptions(data["descriptions"])
    items = read_comments(CommentSource(data["crawl"]))
    return {r.image: r for r in purify(items, descriptions, encoder, PurifyOptions(**options),
                                       chunk_texts=5)}  # small chunks: images span several


def test_cleaning_reasons():
    assert clean_comment("  <b>Nice</b>&nbsp;light &amp; tones<br/>Message edited by author 2006") == \
        ("Nice light & tones", None)
    assert clean_comment("<br>")[1] == "empty"
    assert clean_comment("https://dpchallenge.com/image.php?IMAGE_ID=5")[1] == "url"
    assert clean_comment("see www.flickr.com/x for more") == ("see for more", None)
    assert clean_comment("see www.flickr.com/x for more", urls="drop")[1] == "url"
    assert clean_comment("10/10 :-) \U0001F44D")[1] == "non_text"
    assert clean_comment("nice shot.Info here")[1] is None  # a missing space is not a link
    assert clean_comment("It\x92s sharp\x85 ok")[0] == "It\u2019s sharp\u2026 ok"  # cp1252 via Latin-1
    cleaned = clean_comments(COMMENTS["11"])
    assert dict(cleaned.dropped) == {"duplicate": 2, "url": 1, "non_text": 2, "empty": 2}
    assert len(cleaned.comments) == len(COMMENTS["11"]) - 7
    assert cleaned.comments[1] == "nice shot"  # first occurrence kept, in input order


def test_readers_agree_on_every_layout(data, tmp_path):
    expected = {k: [c for c in v if c] for k, v in COMMENTS.items() if k != "12"}
    crawl = {k: [c for c in v if c] for k, v in read_comments(CommentSource(data["crawl"]))}
    assert list(crawl) == ["11", "12", "13", "14"]  # numeric order, README.md ignored
    assert crawl["12"][1] == "Beautiful warm tones in the café scene"  # Latin-1 fallback
    assert crawl["12"][2] == "Nice mood\x85 but the horizon is tilted"  # one comment, not two
    del crawl["12"]
    assert crawl == expected
    # AVA_Comments_Full.txt: <n>#<id>#comment#comment...
    lines = tmp_path / "AVA_Comments_Full.txt"
    lines.write_text("".join(f"{n}#{k}#{'#'.join(v)}\n" for n, (k, v) in enumerate(expected.items())))
    jsonl = tmp_path / "lists.jsonl"
    jsonl.write_text("".join(json.dumps({"image": k, "comments": v}) + "\n" for k, v in expected.items()))
    per_line = tmp_path / "per_line.jsonl"
    per_line.write_text("".join(json.dumps({"id": k, "text": c}) + "\n"
                                for k, v in expected.items() for c in v))
    table = tmp_path / "comments.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_id", "comment"])
        writer.writerows([k, c] for k, v in expected.items() for c in v)
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    for k, v in expected.items():
        (pipe / f"{k}.txt").write_text("|||".join(v))
    sources = [CommentSource(lines), CommentSource(jsonl),
               CommentSource(per_line, image_key="id", comment_key="text"),
               CommentSource(table, id_column="image_id"), CommentSource(pipe, delimiter="|||")]
    for source in sources:
        got = {k: [c for c in v if c] for k, v in read_comments(source)}
        assert got == expected, source


def test_image_names():
    assert image_name("953619", "{id}.jpg", {"1.jpg"}) == "953619.jpg"
    assert image_name("1.jpg", "{id}.jpg", {"1.jpg"}) == "1.jpg"  # already a described name
    assert image_name("7", "images/{id}.jpg", set()) == "images/7.jpg"


def test_ar_is_the_cosine_rank_and_ir_the_length_rank(data, encoder, tiny_backbone):
    """Recompute everything independently: open_clip's tokenizer + CLIP.encode_text at full context,
    loaded the classic way (random init then load), scipy's ranks, numpy's lexsort."""
    import open_clip
    from pyiqa.archs.clip_backbone import build_clip
    results = run(data, encoder, keep=100, min_tokens=3)  # keep all: every comment's ranks visible
    assert not hasattr(encoder.model, "visual")  # only the text tower is kept
    model = build_clip(str(tiny_backbone)).eval()
    tokenizer = open_clip.tokenizer.SimpleTokenizer()
    for image, texts in (("11.jpg", [d[2] for d in DESCRIPTIONS[:2]]), ("12.jpg", [DESCRIPTIONS[3][2]])):
        result = results[image]
        comments = result.comments
        with torch.no_grad():
            desc = model.encode_text(tokenizer(texts), normalize=True).mean(dim=0)
            emb = model.encode_text(tokenizer(comments), normalize=True)
            # the encoder's trimmed-context embeddings equal open_clip's full-context ones
            assert torch.allclose(encoder.embed(encoder.token_ids(comments)), emb, atol=1e-5)
        sims = (emb @ desc / desc.norm()).numpy()
        lengths = np.array([len(tokenizer.encode(c)) for c in comments])
        ar = rankdata(-sims, method="min").astype(int)
        ir = rankdata(-lengths, method="min").astype(int)
        assert result.ar == ar.tolist() and result.ir == ir.tolist()
        sums = [a + i for a, i in zip(result.ar, result.ir)]
        assert sums == sorted(sums)  # best first
        assert len(set(result.ar)) == len(result.ar)  # random sims: no ties, so the test is sharp
    assert sorted(results["11.jpg"].ir) == [1, 2, 2, 4, 5, 6]  # two comments of 15 tokens share IR 2
    # the selection: K smallest AR + IR, ties by AR, then input order
    full = results["11.jpg"]
    for keep in (1, 3, 5):
        top = run(data, encoder, keep=keep, min_tokens=3)["11.jpg"]
        order = np.lexsort((np.arange(len(full.ar)), full.ar, np.add(full.ar, full.ir)))[:keep]
        assert top.comments == [full.comments[i] for i in order]
        assert top.ar == [full.ar[i] for i in order] and top.ir == [full.ir[i] for i in order]
        assert top.dropped["not_selected"] == full.candidates - keep


def test_min_tokens_and_undescribed(data, encoder):
    results = run(data, encoder, keep=100, min_tokens=3)
    r11 = results["11.jpg"]
    assert r11.dropped["too_short"] == 2  # "nice shot", "Sharp"
    assert r11.after_cleaning == 8 and r11.candidates == 6 and len(r11.comments) == 6
    assert all(len(encoder.token_ids([c])[0]) >= 3 for c in r11.comments)
    assert run(data, encoder, keep=100, min_tokens=0)["11.jpg"].candidates == 8
    assert run(data, encoder, keep=100, min_tokens=12)["11.jpg"].candidates == 4
    assert results["13.jpg"].status == "no_description" and not results["13.jpg"].comments
    assert results["14.jpg"].status == "no_comments"
    ir_only = run(data, encoder, keep=5, undescribed="ir-only")["13.jpg"]
    assert (ir_only.status, ir_only.ar, ir_only.ir) == ("ir_only", [None], [1])


def test_command_writes_kept_comments_and_report(data, tmp_path, capsys):
    out = tmp_path / "out" / "kept.jsonl"
    summary = command.main(["--comments", str(data["crawl"]), "--descriptions",
                            str(data["descriptions"]), "--backbone", "random-tiny",
                            "--keep", "3", "--out", str(out), "--device", "cpu",
                            "--batch-size", "2"])
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [k["image"] for k in kept] == ["11.jpg", "12.jpg"]
    assert all(set(k) == {"image", "comments", "ar", "ir"} for k in kept)
    assert [len(k["comments"]) for k in kept] == [3, 3]
    assert "Nice mood\u2026 but the horizon is tilted" in kept[1]["comments"]
    with (tmp_path / "out" / "kept.report.csv").open() as f:
        report = {row["image"]: row for row in csv.DictReader(f)}
    assert list(report) == ["11.jpg", "12.jpg", "13.jpg", "14.jpg"]
    assert {k: report["11.jpg"][k] for k in ("status", "read", "empty", "url", "non_text",
                                             "duplicate", "after_cleaning", "too_short",
                                             "candidates", "kept", "not_selected")} == \
        {"status": "kept", "read": "15", "empty": "2", "url": "1", "non_text": "2", "duplicate": "2",
         "after_cleaning": "8", "too_short": "2", "candidates": "6", "kept": "3", "not_selected": "3"}
    assert report["13.jpg"]["status"] == "no_description"
    assert report["14.jpg"]["status"] == "no_comments" and report["14.jpg"]["url"] == "1"
    assert summary.kept == 6 and summary.images == 4
    printed = capsys.readouterr().out
    assert "kept" in printed and "1 images with comments had no description" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == ["kept.jsonl", "kept.report.csv"]  # no temps
    again = tmp_path / "again.jsonl"  # deterministic: the same run again gives the same bytes
    command.main(["--comments", str(data["crawl"]), "--descriptions", str(data["descriptions"]),
                  "--backbone", "random-tiny", "--keep", "3", "--out", str(again),
                  "--device", "cpu", "--batch-size", "2"])
    assert again.read_bytes() == out.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--help"])
    assert exit_info.value.code == 0 and "--min-tokens" in capsys.readouterr().out


def test_errors(data, tmp_path, tiny_backbone, capsys):
    base = ["--comments", str(data["crawl"]), "--descriptions", str(data["descriptions"]),
            "--backbone", str(tiny_backbone), "--out", str(tmp_path / "k.jsonl"), "--device", "cpu"]

    def fails(error, *changes, match):
        argv = list(base)
        for flag, value in zip(changes[::2], changes[1::2]):
            if flag in argv:
                argv[argv.index(flag) + 1] = value
            else:
                argv += [flag, value]
        with pytest.raises(error, match=match):
            command.main(argv)

    fails(DataError, "--comments", str(tmp_path / "nope"), match="does not exist")
    fails(DataError, "--descriptions", str(tmp_path / "nope.jsonl"), match="does not exist")
    fails(CheckpointError, "--backbone", str(tmp_path / "missing.pt"), match="No file exists")
    fails(ConfigError, "--image-template", "images/x.jpg", match="exactly once")
    fails(ConfigError, "--keep", "0", match="--keep")
    if not torch.cuda.is_available():
        fails(ConfigError, "--device", "cuda", match="CUDA is not available")
    quality = tmp_path / "quality.jsonl"
    quality.write_text(json.dumps({"image": "11.jpg", "task": "quality", "text": "t"}) + "\n")
    fails(DataError, "--descriptions", str(quality), match="no 'aesthetics' descriptions")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "11", "comments": ["ok"]}\nnot json\n')
    fails(DataError, "--comments", str(bad), match=r"bad.jsonl:2")
    table = tmp_path / "c.csv"
    table.write_text("image,comments\n11,hello there\n")
    fails(DataError, "--comments", str(table), match="Did you mean 'comments'")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    fails(DataError, "--comments", str(empty), match="no <image id>.txt")
    # nothing to purify: once "Read 0 comments of 0 images" and exit 0
    (tmp_path / "zero.jsonl").write_bytes(b"")
    fails(DataError, "--comments", str(tmp_path / "zero.jsonl"),
          match=r"Comments file '.*zero.jsonl' is empty \(0 bytes\); there is nothing to purify")
    (tmp_path / "blank.jsonl").write_text("\n  \n")
    fails(DataError, "--comments", str(tmp_path / "blank.jsonl"),
          match=r"Comments '.*blank.jsonl' hold no comments \(0 image\(s\) read as jsonl\); there is nothing")
    (tmp_path / "silent").mkdir()
    (tmp_path / "silent" / "11.txt").write_text("")
    fails(DataError, "--comments", str(tmp_path / "silent"),
          match=r"hold no comments \(1 image\(s\) read as ava-dir\)")
    fails(ConfigError, "--delimiter", "", match=r"^--delimiter '' is empty; give the text between two comments")
    assert not (tmp_path / "k.jsonl").exists()
    # through run_cli, as a user sees it: one 'error:' line, exit status 2
    from pyiqa.utils.entry import run_cli
    argv = [*base, "--backbone", str(tmp_path / "missing.pt")]  # the last --backbone wins
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: command.main(argv), logger_name="train_clip")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: No file exists at backbone path")
