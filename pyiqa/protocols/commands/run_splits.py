"""Train and test every split of a dataset with one YAML, and report the median over the splits.

    pyiqa-run-splits -opt options/train/UniQA/koniq.yml --splits 1-10
    pyiqa-run-splits -opt options/train/UniQA/koniq.yml --splits 1-10 --gpus 0,1,2,3
    pyiqa-run-splits -opt options/train/UniQA/koniq.yml --auto_resume        # after a kill
    pyiqa-run-splits -opt options/train/UniQA/koniq.yml --labels 50           # few-label repeats
    pyiqa-run-splits -opt options/train/UniQA/koniq.yml \\
        --force_yml network.prompts=[quality,blur,noise,lowhigh]              # UniQA* (multi-cue)
    pyiqa-run-splits -opt options/train/UniQA/koniq.yml --test-on livec spaq \\
        --dataroot livec=/data/livec/Images spaq=/data/spaq/TestImage           # cross-dataset

Each split is ``python -m pyiqa.train -opt <results>/<name>/configs/<run>.yml --root ROOT [--auto_resume]``,
run from the current folder (relative paths in the YAML mean what they mean to ``pyiqa-train``). The
per-split YAML is the given one with ``--force_yml`` applied, ``name: <name>_split<N>`` (few-label:
``<name>_labels<L>_rep<N>``; ``<name>`` is the YAML's name without a trailing ``_split1``, plus ``_<tag>``
or, when --force_yml changes network.prompts, the prompt groups, e.g. ``_quality-blur-noise-lowhigh``),
``split_index: N`` in every dataset section with a split file or index, and the ``test_<dataset>`` sections
of ``--test-on`` (the ``datasets.test`` section of the shipped test config test/UniQA/<dataset>.yml without
its split keys: every row the dataset class gives without a split, e.g. all of LIVEC, AVA's official test
part).

A split whose ``experiments/<run>/results.json`` exists is finished and skipped; one with training states
but no results.json continues with ``--auto_resume`` (without it the runner stops and says so). A finished
or started run trained with other options than the derived YAML is refused (``--tag`` keeps both).

Outputs in ``<results>/<name>/`` (``<name>_labels<L>`` for few-label runs): ``configs/``, ``logs/`` (each
child's output), ``splits.csv`` (one row per split: split, labels, run, iterations, seconds, val_part, and
srcc/plcc/krcc per protocol and cross dataset), ``summary.md`` and ``summary.json``::

    {"name", "dataset" (datasets.train.name), "config" (the -opt path), "labels" (null | int),
     "prompts" (network.prompts), "splits" ([finished splits]),
     "protocols": {"release": {"srcc": {"median", "mean", "std", "n"}, "plcc": {...}, "krcc": {...}},
                   "honest": {...} (only when available)},
     "honest_unavailable": "why" (only when honest is absent),
     "cross": {<dataset>: {"srcc": {...}, "plcc": {...}, "krcc": {...}}} (only with --test-on)}

``std`` is the sample std (ddof=1), null with one split. Protocols: ``release`` = the metrics at the best
validation score (``best.val`` of results.json; with the release's 80/20 files validation runs on the test
part: the paper's, optimistic protocol); ``honest`` = net_best.pth chosen on a validation part carved out of
training, scored once on the test part (``test_best_network.test``). The runner reads the rows the val
section selects, as the dataset would: honest exists only when they are a real validation part sharing no
row with the test section (70/10/20 files ``*_ratio712_seed123.pkl``, ``split_ratio: 712`` columns); the
runner then adds a ``datasets.test`` section if the YAML has none. ``cross``: net_best.pth on each
``--test-on`` dataset.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional

from ...utils.shipped_configs import add_config_arguments, resolve_option_file

PROG = "pyiqa-run-splits"


def build_parser() -> argparse.ArgumentParser:
    lines = __doc__.splitlines()
    parser = argparse.ArgumentParser(prog=PROG, description=lines[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(lines[2:10]))
    add_config_arguments(parser, "train", "training YAML")
    parser.add_argument("--splits", default="1-10", help="splits (few-label: repeats): 1-10, 1,3,5, 1-3,7 "
                        "(default 1-10)")
    parser.add_argument("--labels", type=int, help="few-label protocol: train on the L-image subsets of "
                        "<dataset>_fewlabel<L>_seed123.pkl (50, 100, 200; pyiqa-prepare-dataset writes them)")
    parser.add_argument("--gpus", help="run one split per GPU in parallel, e.g. 0,1,2,3 (default: one after "
                        "the other, as the YAML's num_gpu says)")
    parser.add_argument("--auto_resume", action="store_true", help="continue splits left half-done")
    parser.add_argument("--force_yml", nargs="+", default=[], metavar="KEY.SUB=VALUE",
                        help="override options of every split, e.g. train.total_epoch=10")
    parser.add_argument("--tag", help="suffix of the run name, to keep variants side by side")
    parser.add_argument("--test-on", "--test_on", dest="test_on", nargs="+", default=[], metavar="DATASET",
                        help="also test each split's net_best.pth on whole datasets (the shipped test "
                             "config test/UniQA/<DATASET>.yml)")
    parser.add_argument("--dataroot", nargs="+", default=[], metavar="DATASET=PATH",
                        help="image folder of a --test-on dataset (its test config holds a placeholder)")
    parser.add_argument("--root", default=".", help="folder that receives experiments/ (default: .)")
    parser.add_argument("--results", default="results", help="folder for the summaries (default: results)")
    parser.add_argument("--dry_run", action="store_true", help="write the per-split YAMLs and list the "
                        "commands; train nothing")
    return parser


def main(argv: Optional[List[str]] = None) -> Optional[Dict[str, Any]]:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the splits; the summary (None for --dry_run)."""
    args = build_parser().parse_args(argv)
    opt = str(resolve_option_file(args.opt, "train"))
    from ..splits_runner import SplitRunArgs, parse_gpus, parse_splits, run_splits  # torch: after --help
    from ..zero_shot import shipped_test_configs
    from ...utils.logger import setup_logging
    from ...utils.options import parse_name_paths
    setup_logging()
    return run_splits(SplitRunArgs(
        opt=opt, splits=parse_splits(args.splits), labels=args.labels,
        gpus=parse_gpus(args.gpus) if args.gpus is not None else None, auto_resume=args.auto_resume,
        force_yml=args.force_yml, root=args.root, results=args.results, tag=args.tag, test_on=args.test_on,
        dataroots=parse_name_paths(args.dataroot, "--dataroot"), dry_run=args.dry_run,
        # the installed trainer, not a file of the clone: works from any folder
        train_command=[sys.executable, "-m", "pyiqa.train"], test_options_dir=shipped_test_configs()))
