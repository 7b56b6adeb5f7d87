"""Merge MLLM descriptions and purified comments into the release's caption JSON, plus a corpus report.

Output: ``[{"image_path": <name relative to --root>, "prompt": [text, ...]}, ...]``, sorted by image,
which :func:`train_clip.data.read_json_source` reads (train with ``{type: json, path: corpus.json,
data_root: IMAGE_DIR}``).

Weights are repetitions. ``train_clip`` draws ONE caption per image per epoch, uniformly from the image's
prompt list (``CaptionDataset.__getitem__``: ``random.Random(seed).choice(captions)``), and every image
is visited once per epoch whatever the length of its list. A text listed W times is therefore drawn W
times as often as a text listed once: for an image with ``n_s`` texts from source ``s``, a draw comes
from ``s`` with probability ``W_s * n_s / sum_t W_t * n_t``. The weight is per text, not per source, so
an image with five kept comments (weight 1) and one description (weight 1) sees the description in 1/6
of its draws; ``--weight quality.jsonl=5`` makes that 1/2. Weights change nothing for an image whose
texts all come from one source. (The source-level ``repeat`` of the train_clip YAML is different: it
repeats whole images.)
"""
from __future__ import annotations

import io
import json
import logging
import math
import re
import reprlib
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pyiqa.data.prepare.user_files import check_names
from pyiqa.utils.outputs import refuse_writing_over_inputs
from pyiqa.utils.atomic import write_bytes
from pyiqa.utils.errors import ConfigError, DataError
from pyiqa.utils.registry import closest

from .jsonl_log import read_jsonl

logger = logging.getLogger(__name__)

ABSOLUTE_FLAG = "--allow-absolute-paths"
LOG_FIRST = 5        # invalid lines / missing images named one by one in the log
HIST_BINS = 10
TOP_WORDS = 30
# A small list: the report should show what the texts talk about (blur, light, composition), not glue.
STOP_WORDS = frozenset("""
a an the and or but nor of in on at to for with by from as into onto over under about than then so
is are was were be been being am it its it's this that these those there here which who whom what
i you he she we they me my your his her our their them us him if all any some such each both
has have had do does did can could would should will may might must just also too very
s t not no out up down off while""".split())
WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


@dataclass
class Source:
    """One input file: its texts per image, in file order, each text once."""
    path: Path
    kind: str                      # "descriptions" | "comments"
    name: str = ""                 # label in the report and in --weight
    weight: int = 1
    texts: Dict[str, List[str]] = field(default_factory=dict)
    skipped: int = 0               # invalid lines


@dataclass
class BuildResult:
    """What :func:`build_corpus` wrote and the numbers of its report."""
    out: Path
    report_md: Path
    report_png: Path
    entries: List[Dict[str, Any]]
    sources: List[Source]          # texts of the kept images only
    missing: List[str]
    stats: Dict[str, Any]


# ------------------------------------------------------------------------------------------ reading
def _name(image: Any) -> Optional[str]:
    """The image name with './' and doubled slashes removed, so two files name an image alike."""
    if not isinstance(image, str) or not image.strip():
        return None
    return PurePosixPath(image.strip()).as_posix()


def _texts_of(obj: Any, kind: str, where: str = "") -> Tuple[Optional[str], List[str], str]:
    """(image, texts, reason) of one line; image None when the line is invalid (no image or no text).

    Raises:
        DataError: 'text' or 'comments' holds a value of the wrong type (a number, a string for the
            comments' list): the file is not what ``kind`` says, so skipping lines would hide that.
    """
    if not isinstance(obj, dict):
        return None, [], f"expected a JSON object, got {type(obj).__name__}"
    image = _name(obj.get("image"))
    if image is None:
        return None, [], f"'image' must be a non-empty string, got {reprlib.repr(obj.get('image'))}"
    if kind == "descriptions":
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            raise DataError(f"{where}: 'text' must be a string, got {type(text).__name__} "
                            f"{reprlib.repr(text)}; is it a descriptions file?")
        if not isinstance(text, str) or not text.strip():
            return None, [], f"'text' must be a non-empty string, got {reprlib.repr(text)}"
        return image, [text], ""
    comments = obj.get("comments")
    if comments is None:
        return None, [], "'comments' must be a list of strings, got None"
    if not isinstance(comments, list) or not all(isinstance(c, str) for c in comments):
        got = type(comments).__name__ if not isinstance(comments, list) else "a list holding " + \
            next(type(c).__name__ for c in comments if not isinstance(c, str))
        raise DataError(f"{where}: 'comments' must be a list of strings, got {got} "
                        f"{reprlib.repr(comments)}; is it a kept-comments file (pyiqa-purify-comments)?")
    return image, [c for c in comments if c.strip()], ""


def read_source(path: str | Path, kind: str, allow_absolute: bool = False) -> Source:
    """Read a descriptions JSONL (``{"image", "text", ...}`` per line) or a kept-comments JSONL
    (``{"image", "comments": [...]}``), through the tools' one JSONL reader (a torn last line is skipped
    with a warning). Records without an image or text are skipped with a warning naming file and line
    (a 'text' or 'comments' of the wrong type is a DataError naming them: the wrong kind of file);
    an image's repeated text (e.g. a line written twice) is kept once. An image name that is absolute
    (unless ``allow_absolute``) or climbs out of --root with ``..`` is a DataError naming file and line:
    it would put a file from outside the dataset into the corpus."""
    path = Path(path)
    source = Source(path, kind)
    seen: Dict[str, set] = {}
    for number, obj in read_jsonl(path, f"{kind.capitalize()} file"):
        image, texts, why = _texts_of(obj, kind, f"'{path}' line {number}")
        if image is None:
            source.skipped += 1
            if source.skipped <= LOG_FIRST:
                logger.warning("'%s' line %d: %s; line skipped", path, number, why)
            continue
        check_names([image], [f"line {number}"], f"'{path}'", allow_absolute, ABSOLUTE_FLAG)
        for text in texts:
            text = text.strip()
            if text not in seen.setdefault(image, set()):
                seen[image].add(text)
                source.texts.setdefault(image, []).append(text)
    if source.skipped > LOG_FIRST:
        logger.warning("'%s': %d invalid lines skipped in all", path, source.skipped)
    if not source.texts:
        logger.warning("'%s' holds no %s", path, kind)
    return source


def name_sources(sources: List[Source]) -> None:
    """Label each source by its file name, or by the path as given where two file names clash."""
    counts = Counter(s.path.name for s in sources)
    for s in sources:
        s.name = s.path.name if counts[s.path.name] == 1 else str(s.path)


def apply_weights(sources: List[Source], specs: Sequence[str]) -> None:
    """Set ``Source.weight`` from ``SOURCE=W`` strings (SOURCE: a file name or path as given)."""
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--weight '{spec}' must look like SOURCE=W, e.g. quality.jsonl=2")
        try:
            weight = int(value)
        except ValueError:
            weight = 0
        if weight < 1:
            raise ConfigError(f"--weight '{spec}': W must be a positive integer (how many times each "
                              f"text of the source is listed), got {value!r}")
        key = key.strip()
        found = [s for s in sources if key in (s.name, str(s.path), s.path.name)]
        if len(found) != 1:
            names = [s.name for s in sources]
            problem = "matches several inputs" if found else "is not one of the inputs"
            raise ConfigError(f"--weight '{spec}': '{key}' {problem}.{closest(key, names)} Sources: {names}")
        found[0].weight = weight


# ------------------------------------------------------------------------------------------ merging
def merge(sources: Sequence[Source]) -> List[Dict[str, Any]]:
    """One entry per image, sorted by image name: the sources' texts in command-line order, each text
    of a source listed ``weight`` times in a row."""
    images = sorted({image for s in sources for image in s.texts})
    return [{"image_path": image,
             "prompt": [t for s in sources for t in s.texts.get(image, []) for _ in range(s.weight)]}
            for image in images]


def check_images(entries: List[Dict[str, Any]], root: Path) -> Tuple[List[Dict[str, Any]], List[str]]:
    """(entries whose image file exists under ``root``, names of the missing ones)."""
    if not root.is_dir():
        raise DataError(f"--root '{root}' is not a folder; it must be the folder the image names in the "
                        f"JSONL files are relative to")
    kept, missing = [], []
    for entry in entries:
        (kept if (root / entry["image_path"]).is_file() else missing).append(entry)
    names = [e["image_path"] for e in missing]
    if entries and not kept:
        raise DataError(f"None of the {len(entries)} images exists under --root '{root}': the first "
                        f"expected file is '{root / names[0]}'. Is --root the folder the names are "
                        f"relative to?")
    if missing:
        logger.warning("%d of %d images are missing under '%s' and are left out, e.g. %s",
                       len(missing), len(entries), root, names[:LOG_FIRST])
    return kept, names


def build_corpus(descriptions: Sequence[str | Path], root: str | Path, out: str | Path,
                 comments: Sequence[str | Path] = (), weights: Sequence[str] = (),
                 allow_absolute: bool = False) -> BuildResult:
    """Read, weight, merge, check the images, then write ``out`` and ``<out stem>_report.{md,png}``."""
    paths = [Path(p) for p in (*descriptions, *comments)]
    dup = [str(p) for p in paths if sum(q.resolve() == p.resolve() for q in paths) > 1]
    if dup:
        raise ConfigError(f"Input file '{dup[0]}' is given twice; to count its texts more, use "
                          f"--weight {Path(dup[0]).name}=2")
    out_path = Path(out)
    refuse_writing_over_inputs(
        [("--out", out_path), ("the report", out_path.with_name(f"{out_path.stem}_report.md")),
         ("the report", out_path.with_name(f"{out_path.stem}_report.png"))],
        [(f"--{kind} file", p) for kind, group in (("descriptions", descriptions), ("comments", comments))
         for p in group])
    sources = [read_source(p, "descriptions", allow_absolute) for p in descriptions]
    sources += [read_source(p, "comments", allow_absolute) for p in comments]
    name_sources(sources)
    apply_weights(sources, weights)
    entries = merge(sources)
    if not entries:
        raise DataError(f"No texts in any input ({', '.join(map(str, paths))}): nothing to build")
    root, out = Path(root), Path(out)
    entries, missing = check_images(entries, root)
    kept = {e["image_path"] for e in entries}
    for s in sources:  # the report describes what was written
        s.texts = {image: texts for image, texts in s.texts.items() if image in kept}
    write_bytes(out, (json.dumps(entries, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    stats = corpus_stats(sources, entries, missing)
    md, png = out.with_name(f"{out.stem}_report.md"), out.with_name(f"{out.stem}_report.png")
    write_bytes(md, render_markdown(stats, out.name, root).encode("utf-8"))
    write_bytes(png, render_png(stats))
    logger.info("Wrote %s (%d images), %s and %s", out, len(entries), md, png)
    return BuildResult(out, md, png, entries, sources, missing, stats)


# ------------------------------------------------------------------------------------------ report
def corpus_stats(sources: Sequence[Source], entries: Sequence[Dict[str, Any]],
                 missing: Sequence[str]) -> Dict[str, Any]:
    """The report's numbers. Text length = whitespace-separated words; frequent words = runs of
    letters, lower-cased, stop words excluded; both over each image's unique texts (unweighted)."""
    per_source: Dict[str, Dict[str, Any]] = {}
    words: Dict[str, Counter] = {}
    for s in sources:
        lengths = [len(t.split()) for texts in s.texts.values() for t in texts]
        words[s.name] = Counter(w for texts in s.texts.values() for t in texts
                                for w in WORD.findall(t.lower()) if w not in STOP_WORDS)
        per_source[s.name] = {
            "kind": s.kind, "weight": s.weight, "images": len(s.texts), "texts": len(lengths),
            "entries": len(lengths) * s.weight, "skipped_lines": s.skipped, "lengths": lengths,
            "min": min(lengths, default=0), "max": max(lengths, default=0),
            "median": statistics.median(lengths) if lengths else 0.0,
            "mean": statistics.fmean(lengths) if lengths else 0.0, "draw_share": 0.0}
    n_sources: Counter = Counter()
    for e in entries:
        counts = {s.name: len(s.texts.get(e["image_path"], [])) * s.weight for s in sources}
        n_sources[sum(1 for c in counts.values() if c)] += 1
        for name, c in counts.items():  # the chance a draw for this image comes from this source
            per_source[name]["draw_share"] += c / sum(counts.values()) / len(entries)
    total = sum(words.values(), Counter())
    top = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_WORDS]
    return {"images": len(entries), "entries": sum(len(e["prompt"]) for e in entries),
            "missing": list(missing), "multi_source": sum(c for k, c in n_sources.items() if k > 1),
            "by_source_count": dict(sorted(n_sources.items())), "sources": per_source,
            "histogram": length_histogram({n: p["lengths"] for n, p in per_source.items()}),
            "top_words": [(w, c, {n: words[n][w] for n in per_source}) for w, c in top]}


def length_histogram(lengths: Dict[str, List[int]]) -> Dict[str, Any]:
    """Shared bins of equal width w from the shortest text: bin k holds lengths
    ``lo + k*w .. lo + (k+1)*w - 1``; at most HIST_BINS bins, w = ceil((max - lo + 1) / HIST_BINS)."""
    every = [n for values in lengths.values() for n in values]
    lo, hi = (min(every), max(every)) if every else (0, 0)
    width = max(1, math.ceil((hi - lo + 1) / HIST_BINS))
    bins = [(lo + k * width, lo + (k + 1) * width - 1) for k in range((hi - lo) // width + 1)]
    counts = {name: [sum(1 for n in values if a <= n <= b) for a, b in bins]
              for name, values in lengths.items()}
    return {"bins": bins, "counts": counts}


def _span(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}-{b}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows] + [""]


def render_markdown(stats: Dict[str, Any], out_name: str, root: Path) -> str:
    """The report as Markdown tables (numbers from :func:`corpus_stats`)."""
    src = stats["sources"]
    names = list(src)
    missing = stats["missing"]
    lines = [f"# Corpus report: {out_name}", "",
             f"Images: {stats['images']}; prompt entries (with weights): {stats['entries']}; images with "
             f"text from several sources: {stats['multi_source']}; left out (image missing under "
             f"`{root}`): {len(missing)}" + (f", e.g. {', '.join(missing[:LOG_FIRST])}" if missing else ""),
             "", "A training step draws one prompt per image, uniformly from its list: a text listed W "
             "times is drawn W times as often. *Draw share*: the fraction of an epoch's captions that "
             "come from the source.", "", "## Sources", ""]
    lines += _table(["source", "kind", "weight", "images", "texts", "prompt entries", "draw share",
                     "invalid lines skipped"],
                    [[n, p["kind"], p["weight"], p["images"], p["texts"], p["entries"],
                      f"{p['draw_share']:.3f}", p["skipped_lines"]] for n, p in src.items()])
    lines += ["## Images by number of sources", ""]
    lines += _table(["sources", "images"], sorted(stats["by_source_count"].items()))
    lines += ["## Text length (words)", ""]
    lines += _table(["source", "min", "median", "mean", "max"],
                    [[n, p["min"], f"{p['median']:.1f}", f"{p['mean']:.1f}", p["max"]] for n, p in src.items()])
    hist = stats["histogram"]
    lines += ["## Text-length histogram (texts per length, words)", ""]
    lines += _table(["words", *names], [[_span(a, b), *(hist["counts"][n][k] for n in names)]
                                        for k, (a, b) in enumerate(hist["bins"])])
    lines += [f"## Most frequent words (top {TOP_WORDS}, stop words excluded)", ""]
    lines += _table(["rank", "word", "count", *names],
                    [[k, w, c, *(per[n] for n in names)] for k, (w, c, per) in enumerate(stats["top_words"], 1)])
    return "\n".join(lines)


def render_png(stats: Dict[str, Any]) -> bytes:
    """Text-length histogram per source (grouped bars on the report's bins) and the top words (bars
    stacked by source), as PNG bytes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, hist = list(stats["sources"]), stats["histogram"]
    fig, (ax_len, ax_words) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=100)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs = [k - 0.4 + (i + 0.5) * width for k in range(len(hist["bins"]))]
        ax_len.bar(xs, hist["counts"][name], width=width, label=name)
    ax_len.set_xticks(range(len(hist["bins"])), [_span(a, b) for a, b in hist["bins"]], rotation=45,
                      fontsize=8)
    ax_len.set(xlabel="text length (words)", ylabel="texts", title="Text length per source")
    ax_len.legend(fontsize=8)
    top = stats["top_words"][::-1]  # the most frequent at the top
    left = [0] * len(top)
    for name in names:
        values = [per[name] for _, _, per in top]
        ax_words.barh(range(len(top)), values, left=left, label=name)
        left = [a + b for a, b in zip(left, values)]
    ax_words.set_yticks(range(len(top)), [w for w, _, _ in top], fontsize=7)
    ax_words.set(xlabel="occurrences", title=f"Top {len(top)} words (stop words excluded)")
    ax_words.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
