"""Purifying AVA comments against the MLLM's aesthetic descriptions (UniQA's data construction).

Per image, after cleaning (:mod:`train_clip.corpus.comments`) and dropping comments shorter than
``min_tokens``:

* AR, aesthetics-relevance rank: comments ordered by the cosine similarity between their CLIP text
  embedding and the image's description embedding (most similar = 1). An image with several
  descriptions (models, prompt versions) is represented by the MEAN of their unit-length embeddings.
* IR, informativeness rank: comments ordered by length in CLIP BPE tokens, counted without truncation
  and without the start/end markers (longest = 1).
* The ``keep`` comments with the smallest AR + IR are kept, ties broken by AR, then by input order.
  Both ranks are competition ranks: equal similarities or lengths share the smaller rank.

Both texts are embedded by the text tower of the backbone file (loaded by
:func:`pyiqa.archs.clip_backbone.build_clip`; the image tower is dropped at once), so texts are
truncated to CLIP's 77 tokens for AR as in training. Images are processed in chunks (all comments of
many images per chunk, unique texts embedded once, in batches sorted by length) so memory stays bounded
whatever the corpus size. Same inputs and options give the same output.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from open_clip.tokenizer import SimpleTokenizer

from pyiqa.archs.clip_backbone import build_clip
from pyiqa.utils.atomic import atomic_write
from pyiqa.utils.devices import resolve_device as resolve_named_device
from pyiqa.utils.errors import ConfigError, DataError, OutputError

from .jsonl_log import read_jsonl
from .comments import DEFAULT_IMAGE_TEMPLATE, DROP_REASONS, clean_comments, image_name

logger = logging.getLogger(__name__)

UNDESCRIBED = ("skip", "ir-only")
# Per-image outcome in the report.
STATUSES = ("kept", "ir_only", "no_description", "no_comments")
REPORT_COUNTS = ("read", *DROP_REASONS, "after_cleaning", "too_short", "candidates", "kept",
                 "not_selected")


@dataclass
class PurifyOptions:
    """How comments are filtered and selected (the script's flags)."""
    keep: int = 5
    min_tokens: int = 3
    urls: str = "strip"
    undescribed: str = "skip"            # images with comments but no description: skip, or IR only
    image_template: str = DEFAULT_IMAGE_TEMPLATE

    def check(self) -> None:
        if self.keep < 1:
            raise ConfigError(f"--keep must be >= 1, got {self.keep}.")
        if self.min_tokens < 0:
            raise ConfigError(f"--min-tokens must be >= 0, got {self.min_tokens}.")
        if self.undescribed not in UNDESCRIBED:
            raise ConfigError(f"--undescribed must be one of {UNDESCRIBED}, got '{self.undescribed}'.")


@dataclass
class ImageResult:
    """One image's outcome: kept comments (best first) with their ranks, and what was dropped why."""
    image: str
    status: str
    read: int
    dropped: Counter
    after_cleaning: int
    candidates: int
    comments: List[str] = field(default_factory=list)
    ar: List[Optional[int]] = field(default_factory=list)
    ir: List[int] = field(default_factory=list)

    def report_row(self) -> Dict[str, object]:
        counts = {r: self.dropped.get(r, 0) for r in DROP_REASONS}
        return {"image": self.image, "status": self.status, "read": self.read, **counts,
                "after_cleaning": self.after_cleaning, "too_short": self.dropped.get("too_short", 0),
                "candidates": self.candidates, "kept": len(self.comments),
                "not_selected": self.dropped.get("not_selected", 0)}


def load_descriptions(path: Path, task: str = "aesthetics") -> Dict[str, List[str]]:
    """Descriptions of ``task`` per image (unique texts, file order) from a descriptions JSONL.

    Read with :func:`~train_clip.corpus.jsonl_log.read_jsonl` (a torn last line is skipped with a
    warning); a record without string 'image' and 'text' is an error naming the line.
    """
    out: Dict[str, List[str]] = {}
    tasks: Counter = Counter()
    for n, obj in read_jsonl(path, "Descriptions file (the JSONL of pyiqa-generate-descriptions)"):
        image, text, line_task = obj.get("image"), obj.get("text"), obj.get("task")
        if not isinstance(image, str) or not isinstance(text, str):
            raise DataError(f"{path}:{n}: expected string 'image' and 'text' (descriptions JSONL), got "
                            f"image={image!r}, text={text!r}")
        tasks[line_task] += 1
        if line_task == task and text.strip() and text not in out.setdefault(image, []):
            out[image].append(text)
    if not out:
        raise DataError(f"'{path}' holds no '{task}' descriptions (tasks found: {dict(tasks)}); "
                        "purification needs the aesthetic descriptions of the AVA images.")
    return out


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; anything else as :func:`pyiqa.utils.devices.resolve_device`
    checks it (an unknown or unavailable device is a ConfigError naming --device)."""
    return resolve_named_device(None if name == "auto" else name, "--device")


class TextEncoder:
    """The CLIP text tower of a backbone file and its tokenizer: token counts and unit embeddings."""

    def __init__(self, backbone: str, device: str = "auto", batch_size: int = 256):
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}.")
        self.device = resolve_device(device)
        self.batch_size = batch_size
        # visual_dtype: load without random init (fast, peak memory ~ the model); the image tower is
        # then dropped, only the text tower runs.
        model = build_clip(backbone, visual_dtype=torch.float16)
        del model.visual
        self.model = model.to(self.device).eval()
        self.context_length = int(model.context_length)
        self.tokenizer = SimpleTokenizer(context_length=self.context_length)
        self.truncated = 0  # texts longer than the context, embedded from their first tokens

    def token_ids(self, texts: Sequence[str]) -> List[List[int]]:
        """BPE ids per text, untruncated, without start/end markers (their count is the length)."""
        return [self.tokenizer.encode(t) for t in texts]

    def embed(self, ids: Sequence[List[int]]) -> torch.Tensor:
        """Unit-length text embeddings, (N, embed_dim) float32 on the CPU, in the order given."""
        out = torch.empty(len(ids), self.model.text_projection.shape[1])
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))  # similar lengths together
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            tokens = self._tokens([ids[i] for i in batch]).to(self.device)
            with torch.inference_mode():
                out[batch] = self._encode(tokens).float().cpu()
        return out

    def _tokens(self, ids: Sequence[List[int]]) -> torch.Tensor:
        """(B, L) start + ids + end, truncated like open_clip's tokenizer, padded to the longest."""
        sot, eot, n = self.tokenizer.sot_token_id, self.tokenizer.eot_token_id, self.context_length
        rows = []
        for seq in ids:
            row = [sot, *seq, eot]
            if len(row) > n:
                row = row[:n - 1] + [eot]
                self.truncated += 1
            rows.append(row)
        tokens = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, :len(row)] = torch.tensor(row)
        return tokens

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """``CLIP.encode_text(normalize=True)`` on tokens padded only to the batch's longest text.

        The text tower is causal and pools at the end token, so positions after it never reach the
        result: running L <= 77 positions gives the same embedding as open_clip's full-context call at a
        fraction of the cost. (Checked against ``encode_text`` in the tests.)
        """
        m, length = self.model, tokens.shape[1]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:length].to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]  # the end token has the largest id
        return torch.nn.functional.normalize(x @ m.text_projection, dim=-1)


def competition_ranks(values: Sequence[float]) -> List[int]:
    """Rank 1 for the largest value; equal values share the smaller rank (1, 2, 2, 4)."""
    ordered = sorted(values, reverse=True)
    first = {}
    for position, value in enumerate(ordered, 1):
        first.setdefault(value, position)
    return [first[v] for v in values]


def select(similarities: Optional[Sequence[float]], lengths: Sequence[int],
           keep: int) -> List[Tuple[int, Optional[int], int]]:
    """(index, AR, IR) of the ``keep`` best comments, best first: smallest AR + IR, then AR, then index.

    ``similarities`` None: no description, ranked by IR alone (AR None).
    """
    ir = competition_ranks(lengths)
    if similarities is None:
        order = sorted(range(len(lengths)), key=lambda i: (ir[i], i))
        return [(i, None, ir[i]) for i in order[:keep]]
    ar = competition_ranks(similarities)
    order = sorted(range(len(lengths)), key=lambda i: (ar[i] + ir[i], ar[i], i))
    return [(i, ar[i], ir[i]) for i in order[:keep]]


@dataclass
class _Pending:
    """An image cleaned and filtered, waiting for its chunk to be embedded."""
    result: ImageResult
    texts: List[str]
    ids: List[List[int]]
    descriptions: Optional[List[str]]


def purify(items: Iterable[Tuple[str, List[str]]], descriptions: Dict[str, List[str]],
           encoder: TextEncoder, options: PurifyOptions,
           chunk_texts: int = 8192) -> Iterator[ImageResult]:
    """Clean, filter, rank and select the comments of each (image id, raw comments) item, in order."""
    options.check()
    pending: List[_Pending] = []
    size = 0
    for image_id, raw in items:
        item = _prepare(image_id, raw, descriptions, encoder, options)
        pending.append(item)
        size += len(item.texts) + len(item.descriptions or [])
        if size >= chunk_texts:
            yield from _rank_chunk(pending, encoder, options.keep)
            pending, size = [], 0
    yield from _rank_chunk(pending, encoder, options.keep)


def _prepare(image_id: str, raw: List[str], descriptions: Dict[str, List[str]], encoder: TextEncoder,
             options: PurifyOptions) -> _Pending:
    name = image_name(image_id, options.image_template, descriptions)
    cleaned = clean_comments(raw, options.urls)
    dropped = Counter(cleaned.dropped)
    ids = encoder.token_ids(cleaned.comments)
    long_enough = [i for i, seq in enumerate(ids) if len(seq) >= options.min_tokens]
    dropped["too_short"] = len(ids) - len(long_enough)
    texts = [cleaned.comments[i] for i in long_enough]
    ids = [ids[i] for i in long_enough]
    descs = descriptions.get(name)
    if not texts:
        status = "no_comments"
    elif descs is None:
        status = "no_description" if options.undescribed == "skip" else "ir_only"
    else:
        status = "kept"
    result = ImageResult(name, status, len(raw), dropped, len(cleaned.comments), len(texts))
    if status in ("no_comments", "no_description"):
        return _Pending(result, [], [], None)
    return _Pending(result, texts, ids, descs)


def _rank_chunk(pending: List[_Pending], encoder: TextEncoder, keep: int) -> Iterator[ImageResult]:
    """Embed the chunk's unique texts once, then rank and select per image."""
    unique: Dict[str, List[int]] = {}
    for item in pending:
        if item.descriptions is None:
            continue
        unique.update(zip(item.texts, item.ids))
        for text in item.descriptions:
            if text not in unique:
                unique[text] = encoder.token_ids([text])[0]
    row = {text: i for i, text in enumerate(unique)}
    embeddings = encoder.embed(list(unique.values())) if unique else None
    for item in pending:
        result = item.result
        if result.status in ("kept", "ir_only"):
            sims = None
            if item.descriptions is not None and embeddings is not None:
                target = embeddings[[row[t] for t in item.descriptions]].mean(dim=0)
                target = target / target.norm().clamp_min(1e-12)
                sims = (embeddings[[row[t] for t in item.texts]] @ target).tolist()
            chosen = select(sims, [len(s) for s in item.ids], keep)
            result.comments = [item.texts[i] for i, _, _ in chosen]
            result.ar = [a for _, a, _ in chosen]
            result.ir = [r for _, _, r in chosen]
            result.dropped["not_selected"] = result.candidates - len(chosen)
        yield result


@dataclass
class Summary:
    """Totals over all images, for the printed summary."""
    images: int = 0
    comments: int = 0
    kept: int = 0
    statuses: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)

    def add(self, result: ImageResult) -> None:
        self.images += 1
        self.comments += result.read
        self.kept += len(result.comments)
        self.statuses[result.status] += 1
        self.dropped.update(result.dropped)


def report_path(out: Path) -> Path:
    """``KEPT.jsonl`` -> ``KEPT.report.csv`` next to it."""
    return Path(out).with_name(Path(out).stem + ".report.csv")


def write_outputs(results: Iterable[ImageResult], out: Path) -> Summary:
    """Stream ``results`` into the kept-comments JSONL (images with at least one kept comment), then
    write the per-image report CSV; each file appears whole or not at all (temp file + rename)."""
    summary = Summary()
    rows: List[Dict[str, object]] = []

    def write_kept(f) -> None:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="\n")
        for result in results:
            summary.add(result)
            rows.append(result.report_row())
            if result.comments:
                record = {"image": result.image, "comments": result.comments, "ar": result.ar,
                          "ir": result.ir}
                text.write(json.dumps(record, ensure_ascii=False) + "\n")
        text.flush()
        text.detach()  # atomic_write fsyncs and closes the file itself

    def write_report(f) -> None:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        writer = csv.DictWriter(text, fieldnames=["image", "status", *REPORT_COUNTS])
        writer.writeheader()
        writer.writerows(rows)
        text.flush()
        text.detach()

    for path, write in ((Path(out), write_kept), (report_path(out), write_report)):
        try:
            atomic_write(path, write)
        except OSError as err:
            raise OutputError(f"Cannot write '{path}': {err}") from err
    return summary
