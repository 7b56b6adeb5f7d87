"""Keep the best AVA comments per image: clean them, rank them against the image's aesthetic description
with a CLIP text encoder (AR) and by length (IR), keep the K with the smallest AR + IR.

    pyiqa-purify-comments --comments AVA-Comments/ --descriptions ava_aesthetics.jsonl \\
        --backbone UniQA_weight.pt --keep 5 --out ava_kept.jsonl

Writes KEPT.jsonl (``{"image", "comments" (best first), "ar", "ir"}`` per image with a kept comment) and
KEPT.report.csv (per image: comments read, dropped per reason, kept, status). See
train_clip/corpus/comments.py for the input forms and train_clip/corpus/purify.py for the ranking.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import List, Optional

from pyiqa.utils.logger import setup_logging
from pyiqa.utils.outputs import refuse_writing_over_inputs
from train_clip.corpus.comments import (DEFAULT_IMAGE_TEMPLATE, FORMATS, URL_POLICIES, CommentSource,
                                        check_template, read_comments, resolve_format)
from train_clip.corpus.purify import (UNDESCRIBED, PurifyOptions, Summary, TextEncoder,
                                      load_descriptions, purify, report_path, write_outputs)

PROG = "pyiqa-purify-comments"
ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r\\n": "\r\n"}


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except the None of required flags and of flags whose help explains them."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0], formatter_class=_Defaults)
    p.add_argument("--comments", type=Path, required=True,
                   help="a folder of <image id>.txt (AVA-Comments crawl), AVA_Comments_Full.txt, "
                        "a .jsonl or a .csv")
    p.add_argument("--descriptions", type=Path, required=True, help="descriptions JSONL (MLLM output)")
    p.add_argument("--backbone", required=True,
                   help="CLIP backbone file (UniQA_weight.pt or an OpenAI ViT CLIP state dict); "
                        "'random-tiny' for smoke tests (random weights: arbitrary rankings)")
    p.add_argument("--keep", type=int, default=5, help="comments kept per image")
    p.add_argument("--out", type=Path, required=True, help="kept comments JSONL")
    g = p.add_argument_group("reading the comments")
    g.add_argument("--format", default="auto", choices=FORMATS,
                   help="auto: a folder is ava-dir, .txt ava-lines, .jsonl/.json jsonl, .csv csv")
    g.add_argument("--delimiter", default=None,
                   help="comment separator; default: a line per comment (ava-dir), '#' (ava-lines); "
                        "'\\n' and '\\t' are understood")
    g.add_argument("--encoding", default="utf-8", help="text encoding (Latin-1 as a per-file fallback)")
    g.add_argument("--image-template", default=DEFAULT_IMAGE_TEMPLATE,
                   help="image name in the descriptions file for an id (an id that already is a "
                        "described name is kept as it is)")
    g.add_argument("--image-key", default="image", help="jsonl: key of the image id")
    g.add_argument("--comment-key", default=None,
                   help="jsonl: key of the comment(s), a string or a list (default: 'comments', "
                        "else 'comment')")
    g.add_argument("--id-column", default="image", help="csv: column of the image id")
    g.add_argument("--comment-column", nargs="+", default=["comment"], help="csv: comment column(s)")
    g = p.add_argument_group("cleaning and selection")
    g.add_argument("--urls", default="strip", choices=URL_POLICIES,
                   help="strip: remove links, keep the words around them; drop: drop comments with links")
    g.add_argument("--min-tokens", type=int, default=3, help="drop comments shorter (CLIP BPE tokens)")
    g.add_argument("--undescribed", default="skip", choices=UNDESCRIBED,
                   help="images with comments but no description: skip (reported), or keep by IR only")
    g.add_argument("--task", default="aesthetics", help="description task to rank against")
    g = p.add_argument_group("encoding")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--batch-size", type=int, default=256, help="texts per text-encoder batch")
    return p


def summary_text(s: Summary, args: argparse.Namespace, encoder: TextEncoder, described: int,
                 seconds: float) -> str:
    d = s.dropped
    ranked = s.statuses["kept"] + s.statuses["ir_only"]
    ir_only = (f"; {s.statuses['ir_only']} images had no description and were kept by length alone"
               if s.statuses["ir_only"] else "")
    return (
        f"Read {s.comments} comments of {s.images} images from {args.comments}. Cleaning dropped "
        f"{d['empty']} empty, {d['url']} link-only{' or linked' if args.urls == 'drop' else ''}, "
        f"{d['non_text']} non-text and {d['duplicate']} duplicate comments; {d['too_short']} more "
        f"were shorter than {args.min_tokens} tokens. {ranked} images were ranked (AR: cosine "
        f"similarity to the mean CLIP text embedding of their '{args.task}' descriptions; IR: length "
        f"in tokens) and {s.kept} comments kept (at most {args.keep} per image, {d['not_selected']} "
        f"not selected){ir_only}. {s.statuses['no_description']} images with comments had no "
        f"description (skipped), {s.statuses['no_comments']} had no comment left; "
        f"{described - s.statuses['kept']} of the {described} described images got no comment. "
        f"{encoder.truncated} texts were longer than CLIP's {encoder.context_length} tokens and "
        f"embedded from their start. Backbone {args.backbone} on {encoder.device}; "
        f"{seconds:.1f} s ({s.comments / max(seconds, 1e-9):.0f} comments/s). Wrote {args.out} and "
        f"{report_path(args.out)}.")


def main(argv: Optional[List[str]] = None) -> Summary:
    """Parse ``argv`` (default ``sys.argv[1:]``), keep the best comments per image; the counts."""
    args = build_parser().parse_args(argv)
    setup_logging(logger_names=("pyiqa", "train_clip"))
    start = time.perf_counter()
    check_template(args.image_template)
    options = PurifyOptions(keep=args.keep, min_tokens=args.min_tokens, urls=args.urls,
                            undescribed=args.undescribed, image_template=args.image_template)
    options.check()
    source = CommentSource(args.comments, args.format, ESCAPES.get(args.delimiter, args.delimiter),
                           args.encoding, args.image_key, args.comment_key, args.id_column,
                           args.comment_column)
    resolve_format(source)  # a wrong comments path fails now, not after the backbone has loaded
    refuse_writing_over_inputs([("--out", args.out), ("the report", report_path(args.out))],
                               [("--comments", args.comments), ("--descriptions", args.descriptions),
                                ("--backbone", args.backbone)])
    descriptions = load_descriptions(args.descriptions, args.task)
    encoder = TextEncoder(args.backbone, args.device, args.batch_size)
    results = purify(read_comments(source), descriptions, encoder, options,
                     chunk_texts=16 * args.batch_size)
    summary = write_outputs(results, args.out)
    print(summary_text(summary, args, encoder, len(descriptions), time.perf_counter() - start))
    return summary

