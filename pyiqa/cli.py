"""``pyiqa`` command line: score images with one or more metrics, list the metrics, install weights.

    pyiqa uniqa -t photo.jpg
    pyiqa uniqa uniqa-single -t photos/ -o scores.csv      # one CSV column per metric
    pyiqa uniqa -t photos/ --recursive --precision auto --workers 1
    pyiqa -ls                                              # also --list_models, --list
    pyiqa install-weights uniqa-koniq experiments/UniQA_KonIQ_split1/models/net_best.pth
    pyiqa uniqa -t 'shards/{00000..00099}.tar' -o out/ --resume   # part files, manifest, merged scores.csv
    torchrun --nproc_per_node 2 -m pyiqa uniqa -t paths.txt -o out/ --resume
    pyiqa merge-scores out/

IQA-PyTorch's spelling works as is (``pyiqa METRIC [METRIC ...] -t TARGET [-r REF] [--device D] [-v]
[-ls]``): every UniQA metric is no-reference, so ``-r/--ref`` is ignored with one notice. The CSV
(``image,<metric>,...``) goes to stdout or, with ``-o``, replaces the file only when the run ends;
progress and messages go to stderr.

Exit status: 0 all images scored; 1 some files could not be read (reported and skipped, the rest are
scored and written); 2 bad usage, unknown metric, missing weights or no images.
"""
from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
logger = logging.getLogger("pyiqa.cli")
# (input, one score per metric or None, failure reason or None): pyiqa.inference.batch.Row
Row = Tuple[Any, Optional[List[float]], Optional[str]]

EPILOG = """\
examples:
  pyiqa uniqa -t photo.jpg
  pyiqa uniqa uniqa-single -t photos/ -o scores.csv   one column per metric, images decoded once
  pyiqa -ls                                           the metrics and their weight files
  pyiqa uniqa -t 'shards/{00000..00099}.tar' -o out/  a folder: part files, resumable (--resume), merged
                                                      out/scores.csv; under torchrun each rank a share
  pyiqa merge-scores out/                             merge the parts of such a folder by hand

Output: CSV 'image,<metric>,...' on stdout, or written to -o FILE atomically (an old FILE is replaced
only when the run ends; -o may not name the target or an input image). Progress, notices and
unreadable files go to stderr.

Coming from IQA-PyTorch: METRIC [METRIC ...], -t, -r/--ref, --device, -v and -ls/--list_models
work as there. Every UniQA metric is no-reference, so -r is ignored (one notice). Subfolders are
--recursive (there is no short form: -r is --ref). Results are a CSV row per image, not a printed
dict with the mean.

Weights are looked up in $PYIQA_WEIGHTS_DIR, then $TORCH_HOME/hub/pyiqa; nothing is downloaded.
'pyiqa install-weights NAME CHECKPOINT' installs a trained adapter.

Exit status: 0 all scored; 1 some files unreadable (the rest written); 2 usage error, unknown
metric, missing weights or no images.
"""


def _score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyiqa", description="Score image quality with UniQA metrics (higher = better).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metric", nargs="*", help="metric name(s), e.g. uniqa (see -ls); several give one "
                                             "CSV column each")
    p.add_argument("-t", "--target", help="what to score: an image, a folder, a list of paths (.txt/.lst, one "
                   "per line), a table with a path column (.csv/.tsv/.parquet), or tar shards "
                   "('shards/{00000..00099}.tar')")
    p.add_argument("-r", "--ref", help="reference image or folder (IQA-PyTorch's option); ignored with "
                                       "a notice: every UniQA metric is no-reference")
    p.add_argument("-ls", "--list_models", "--list-models", "--list", dest="list", action="store_true",
                   help="list the metrics and their weight files, then exit")
    p.add_argument("-o", "--output", help="CSV file to write (atomically; default: stdout), or a folder (existing, "
                   "or ending in '/') for a large run: part files, a manifest, merged scores.csv")
    p.add_argument("--resume", action="store_true",
                   help="with -o FOLDER: keep the finished parts of an earlier run of the same settings")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv",
                   help="with -o FOLDER: part and merged file format (parquet needs pyarrow)")
    p.add_argument("--part-rows", type=int, default=10_000,
                   help="with -o FOLDER: images per part file of a folder, list or table (a tar shard is one "
                        "part); default 10000")
    p.add_argument("--path-column", default=None,
                   help="the column of a .csv/.tsv/.parquet target that holds the image paths (default: the "
                        "first named path, image, img_path, image_path, file, filename)")
    p.add_argument("--data-root", default=None,
                   help="folder the paths of a list or table are relative to, and must stay inside (default: "
                        "the list's folder)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "auto"],
                   help="weights dtype of the frozen backbone (default fp32; auto: bf16 only where fast)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per forward pass (default 2 on CPU, 32 on CUDA)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding processes (default: min(4, usable cores / 2), 0 for a single file)")
    p.add_argument("--backbone", default=None, help="path of UniQA_weight.pt (or 'random' for demos)")
    p.add_argument("--adapter", default=None,
                   help="trained adapter checkpoint of the (one) adapter metric among the metrics")
    p.add_argument("--crops", default="random10", help="test-crop protocol (default: random10, seeded)")
    p.add_argument("--num-crops", type=int, default=10, help="crops per image (default 10; 1 to 1000)")
    p.add_argument("--max-side", type=int, default=4096,
                   help="downscale images whose longer side exceeds this (default 4096; 0: never)")
    p.add_argument("--max-image-pixels", type=int, default=None,
                   help="raise Pillow's decompression-bomb limit for non-JPEG images (0: no limit beyond "
                        "what fits in memory)")
    p.add_argument("--recursive", action="store_true",
                   help="also score images in subfolders (no short form: -r is --ref)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return p


def _install_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyiqa install-weights",
        description="Check a trained adapter checkpoint against a metric and copy it (atomically) "
                    "into the weights folder under the metric's file name.")
    p.add_argument("metric", help="adapter metric name, e.g. uniqa-koniq")
    p.add_argument("checkpoint", help="checkpoint written by training, e.g. .../models/net_best.pth")
    p.add_argument("--weights-dir", default=None,
                   help="target folder (default: first writable of $PYIQA_WEIGHTS_DIR, "
                        "$TORCH_HOME/hub/pyiqa)")
    return p


def _merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyiqa merge-scores",
        description="Merge the part files of a scoring folder (pyiqa METRIC -t ... -o FOLDER/) into one file "
                    "sorted by key, as the run does at its end; refuses while parts are missing.")
    p.add_argument("folder", help="the -o folder of the scoring run")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pyiqa`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .utils.errors import PyiqaError
    try:
        if argv and argv[0] == "install-weights":
            return _install(_install_parser().parse_args(argv[1:]))
        if argv and argv[0] == "merge-scores":
            return _merge(_merge_parser().parse_args(argv[1:]))
        parser = _score_parser()
        # intermixed: metric names may come before or after the options, as in IQA-PyTorch
        args = parser.parse_intermixed_args(argv)
        _setup_logging(args.verbose)
        if args.list:
            _note_ignored_by_list(args)
            return _list(sys.stdout)
        problem = _usage_problem(args)
        if problem:
            parser.print_usage(sys.stderr)
            print(f"pyiqa: error: {problem}", file=sys.stderr)
            return EXIT_USAGE
        return _score(args)
    except SystemExit as stop:  # argparse's own usage errors (exit 2) and --help (exit 0)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    except PyiqaError as err:
        print(f"pyiqa: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader of stdout stopped early (pyiqa ... | head): no traceback
        _discard_stdout()
        return EXIT_SOME_FAILED


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush into the closed pipe is silent."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def _note(message: str) -> None:
    print(f"pyiqa: note: {message}", file=sys.stderr)


def _note_ignored_by_list(args: argparse.Namespace) -> None:
    """IQA-PyTorch lists and returns whatever else is given; we do too, but say what was dropped."""
    ignored = list(args.metric) + ([f"-t {args.target}"] if args.target else [])
    if ignored:
        _note(f"-ls/--list_models lists the metrics and scores nothing; ignored: {', '.join(ignored)}")


def _usage_problem(args: argparse.Namespace) -> Optional[str]:
    """What is missing from a scoring command line, or None."""
    example = "e.g. 'pyiqa uniqa -t photo.jpg'; 'pyiqa -ls' lists the metrics"
    if not args.metric and not args.target:
        return f"give metric name(s) and -t IMAGE_OR_FOLDER, {example}"
    if not args.target:
        return f"-t/--target is required: the image file or folder to score, {example}"
    if not args.metric:
        from .archs.model_cards import MODEL_CARDS  # torch-free
        hint = (f" ('-r {args.ref}' gives a reference image: -r is --ref, as in IQA-PyTorch; "
                "subfolders are --recursive)" if args.ref in MODEL_CARDS else "")
        return f"give at least one metric name, {example}{hint}"
    if args.workers is not None and args.workers < 0:
        return f"--workers must be 0 (decode in this process) or more, got {args.workers}"
    return None


def _list(out: TextIO) -> int:
    """One line per metric with its weight files' status; imports neither torch nor open_clip (the
    card table and the folder lookup are torch-free), so it answers in well under a second."""
    from .archs.model_cards import MODEL_CARDS, list_models
    from .inference.weight_lookup import find_weight
    for name in list_models():
        card = MODEL_CARDS[name]
        backbone = find_weight(card.backbone_file)
        adapter = find_weight(card.adapter_file) if card.adapter_file else None
        status = "ready" if backbone and (adapter or not card.adapter_file) else "missing: " + ", ".join(
            f for f, found in ((card.backbone_file, backbone), (card.adapter_file, adapter))
            if f and not found)
        lo, hi = card.score_range
        better = f"{'lower' if card.lower_better else 'higher'} better in [{lo:g}, {hi:g}]"
        out.write(f"{name:<14} {better:<26} {card.description}  [{status}]\n")
    return EXIT_OK


def _install(args: argparse.Namespace) -> int:
    _setup_logging(False)
    from .inference import get_card, install_weights
    target = install_weights(get_card(args.metric), args.checkpoint, args.weights_dir)
    print(f"Installed {args.checkpoint} -> {target}")
    return EXIT_OK


def _merge(args: argparse.Namespace) -> int:
    _setup_logging(False)
    from .inference.score_parts import Manifest, ScoreFolder
    from .utils.errors import DataError
    folder = Path(args.folder)
    if not (folder / "manifest.json").is_file():
        raise DataError(f"'{folder}' holds no manifest.json: it is not the -o folder of a scoring run")
    manifest = Manifest.read(folder / "manifest.json")
    path, rows, unreadable = ScoreFolder(folder, manifest.format).merge(manifest.inputs["units"])
    print(f"pyiqa: merged {rows} rows ({unreadable} unreadable) into {path}", file=sys.stderr)
    return EXIT_SOME_FAILED if unreadable else EXIT_OK


def _score(args: argparse.Namespace) -> int:
    """Check everything that can be checked cheaply (names, inputs, output path, weight files) before a
    model is built or a file opened for writing; then score and write the CSV (or the folder)."""
    _check_numbers(args)
    from .inference import get_card
    names = list(dict.fromkeys(args.metric))  # a repeated name is scored once
    if len(names) < len(args.metric):
        _note(f"metric names given more than once are scored once: {', '.join(names)}")
    cards = [get_card(name) for name in names]  # an unknown name fails before anything is read
    adapter_owner = _adapter_owner(cards, args.adapter)
    _note_ref(args.ref, cards)
    from .inference.collection import plan_collection
    collection = plan_collection(args.target, args.recursive, args.part_rows, args.path_column, args.data_root)
    folder = _folder_output(args, collection) if _is_folder(args.output) else None
    refs = None if folder is not None else [r for unit in collection.units for r in unit.images()]
    output = None if folder is not None else _check_output(
        args.output, Path(args.target), args.ref, args.recursive, [Path(r.path) for r in refs if r.path])
    from .inference.bulk import local_world_size
    workers = _workers(args.workers, collection.images if collection.images is not None else 2, local_world_size())
    from .utils.devices import resolve_device  # imports torch: after the names and inputs
    device = resolve_device(args.device, "--device")  # 'gpu9', or cuda on a CPU machine: one line
    _check_weights(cards, args.backbone, args.adapter, adapter_owner)
    from PIL import Image
    pixel_limit = Image.MAX_IMAGE_PIXELS  # main(argv) called from Python leaves the caller's limit
    try:
        if args.max_image_pixels is not None:  # the user's explicit opt-in, for this run only
            Image.MAX_IMAGE_PIXELS = _pixel_limit(args.max_image_pixels)
        if folder is not None:
            return _score_to_folder(args, cards, names, device, collection, folder, workers, adapter_owner)
        return _score_and_write(args, cards, names, device, refs, output, workers, adapter_owner)
    finally:
        Image.MAX_IMAGE_PIXELS = pixel_limit


def _build_metrics(args: argparse.Namespace, cards: Sequence[Any], device: Any, adapter_owner: Optional[str]) -> List[Any]:
    from .inference import create_metric
    return [create_metric(card.name, device=device, backbone=args.backbone,
                          pretrained_model_path=args.adapter if card.name == adapter_owner else None,
                          precision=args.precision, crops=args.crops, num_crops=args.num_crops,
                          max_side=args.max_side or None, batch_size=args.batch_size)
            for card in cards]


class _Threads:
    """Decoding workers + intra-op threads fit the cores; the caller's setting is put back afterwards
    (``main(argv)`` called from Python)."""

    def __init__(self, workers: int):
        self.workers = workers

    def __enter__(self) -> None:
        import torch

        from .utils.threads import configure_threads
        self.threads = torch.get_num_threads()
        configure_threads(self.workers)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()  # _workers has warned about too many workers already, once
        warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)

    def __exit__(self, *exc: Any) -> None:
        import torch
        self.warnings.__exit__(*exc)
        torch.set_num_threads(self.threads)


def _score_and_write(args: argparse.Namespace, cards: Sequence[Any], names: List[str], device: Any,
                     refs: List[Any], output: Optional[Path], workers: int,
                     adapter_owner: Optional[str]) -> int:
    """Build the metrics, score ``refs`` and write the CSV (to ``output`` or stdout); the exit status."""
    from .inference.batch import score_rows
    metrics = _build_metrics(args, cards, device, adapter_owner)
    rows = score_rows(metrics, refs, workers, progress=not args.quiet)
    with _Threads(workers):
        if output is None:
            failed = _write_csv(sys.stdout, names, rows, flush=True)
        else:
            failed = _write_atomically(output, lambda out: _write_csv(out, names, rows))
    print(f"pyiqa: scored {len(refs) - failed} of {len(refs)} images with {', '.join(names)}"
          + (f"; {failed} could not be read (listed above)" if failed else "")
          + (f"; wrote {output}" if output else ""), file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _is_folder(output: Optional[str]) -> bool:
    """``-o`` names a folder: an existing one, or a path ending in a separator."""
    return output is not None and (output.endswith(("/", os.sep)) or Path(output).is_dir())


def _folder_output(args: argparse.Namespace, collection: Any) -> Any:
    """The scoring folder of ``-o``, refused before any model is built when it cannot be written, would
    hold an input, or the format needs a missing package."""
    from .inference.score_parts import ScoreFolder, parquet_available
    from .utils.errors import ConfigError, OutputError
    if args.format == "parquet" and not parquet_available():
        raise ConfigError("--format parquet needs pyarrow: pip install 'pyiqa-uniqa[parquet]' (or pyarrow)")
    folder = ScoreFolder(Path(args.output), args.format)
    folder.check_writable()
    out = folder.root.resolve()
    for source in _input_files(args.target, collection):
        source = source.resolve()
        if source == out or out in source.parents or (collection.kind == "folder" and source in out.parents):
            raise OutputError(f"-o '{args.output}' and the input '{source}' overlap (the output folder is, holds "
                              "or is inside what -t scores); write the part files to another folder")
    return folder


def _input_files(target: str, collection: Any) -> List[Path]:
    """The files and folders a collection reads from (not each image: they are below these)."""
    if collection.kind == "shards":
        return [Path(unit.shard) for unit in collection.units if Path(unit.shard).exists()]
    return [Path(target)]


def _score_to_folder(args: argparse.Namespace, cards: Sequence[Any], names: List[str], device: Any,
                     collection: Any, folder: Any, workers: int, adapter_owner: Optional[str]) -> int:
    """Score this process's share of the collection into part files; rank 0 merges them."""
    import torch

    from .inference.bulk import join_group, launch_env, process_device, score_collection
    from .inference.score_parts import Manifest
    rank, world, _ = launch_env()
    device = process_device(device)  # one GPU per local process
    join_group(device)
    try:
        metrics = _build_metrics(args, cards, device, adapter_owner)
        manifest = Manifest.of(metrics, collection, args.part_rows, args.format)
        with _Threads(workers):
            result = score_collection(metrics, collection, folder, manifest, args.resume, workers,
                                      progress=not args.quiet and rank == 0)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    who = f"rank {rank}: " if world > 1 else ""
    print(f"pyiqa: {who}scored {result.images} images in {result.parts_scored} part(s)"
          + (f", {result.parts_found} part(s) finished earlier kept" if result.parts_found else "")
          + (f"; {result.unreadable} could not be read (error rows)" if result.unreadable else ""), file=sys.stderr)
    if result.merged is not None:
        print(f"pyiqa: wrote {result.merged}: {result.merged_rows} rows, {result.merged_unreadable} with an "
              "error", file=sys.stderr)
    return EXIT_SOME_FAILED if (result.unreadable or result.merged_unreadable) else EXIT_OK


def _check_numbers(args: argparse.Namespace) -> None:
    """The numeric options, checked under their command-line names before anything is read."""
    from .inference.limits import check_num_crops  # torch-free
    from .utils.errors import ConfigError
    from .utils.options import check_int
    check_num_crops(args.num_crops, "--num-crops")
    check_int(args.max_side, "--max-side", 0, integral_floats=False)  # 0: never downscale
    if args.batch_size is not None:
        check_int(args.batch_size, "--batch-size", 1, integral_floats=False)
    check_int(args.part_rows, "--part-rows", 1, integral_floats=False)
    if args.max_image_pixels is not None and args.max_image_pixels < 0:
        raise ConfigError(f"--max-image-pixels must be 0 (no limit beyond what fits in memory) or a "
                          f"positive number of pixels, got {args.max_image_pixels}")


def _adapter_owner(cards: Sequence[Any], adapter: Optional[str]) -> Optional[str]:
    """The metric --adapter belongs to: the only metric, else the only adapter metric."""
    from .utils.errors import ConfigError
    if adapter is None:
        return None
    if len(cards) == 1:  # a zero-shot card gets create_metric's own "takes no adapter" error
        return cards[0].name
    takers = [c.name for c in cards if c.adapter_file]
    if len(takers) == 1:
        return takers[0]
    if not takers:
        raise ConfigError(f"--adapter '{adapter}' given, but none of {', '.join(c.name for c in cards)} "
                          "takes an adapter (they are zero-shot); add an adapter metric such as "
                          "uniqa-koniq, or drop --adapter.")
    raise ConfigError(f"--adapter names one checkpoint, but {', '.join(takers)} all take an adapter: "
                      "score them in separate runs, or install each one with "
                      "'pyiqa install-weights NAME CHECKPOINT' and drop --adapter.")


def _check_weights(cards: Sequence[Any], backbone: Optional[str], adapter: Optional[str],
                   adapter_owner: Optional[str]) -> None:
    """Every missing weight file of every metric in one error, before any model is built."""
    from .inference import weights
    from .utils.errors import CheckpointError
    problems: List[str] = []
    first_with: Dict[str, Any] = {}  # backbone file -> first card needing it: a shared file told once
    for card in cards:
        first_with.setdefault(card.backbone_file, card)
    checks = [(weights.resolve_backbone, card, backbone) for card in first_with.values()]
    checks += [(weights.resolve_adapter, card, adapter if card.name == adapter_owner else None)
               for card in cards]
    for resolve, card, explicit in checks:
        try:
            resolve(card, explicit)
        except CheckpointError as err:
            problems.append(str(err))
    if problems:
        raise CheckpointError("\n\n".join(problems))


def _note_ref(ref: Optional[str], cards: Sequence[Any]) -> None:
    """-r/--ref: IQA-PyTorch passes it to full-reference metrics only; every UniQA metric is NR."""
    from .utils.errors import ConfigError
    if ref is None:
        return
    full_ref = [c.name for c in cards if c.metric_mode != "NR"]
    if full_ref:  # no such card today; the command has no way to pair references with targets
        raise ConfigError(f"{', '.join(full_ref)} need reference images, which the pyiqa command "
                          "cannot pass; use the Python API.")
    missing = "" if Path(ref).exists() else f"; '{ref}' does not exist either"
    _note(f"-r/--ref '{ref}' ignored: {', '.join(c.name for c in cards)} "
          f"{'is a no-reference metric' if len(cards) == 1 else 'are no-reference metrics'} "
          f"(each target image is scored alone){missing}")


def _check_output(output: Optional[str], target: Path, ref: Optional[str], recursive: bool,
                  paths: Sequence[Path]) -> Optional[Path]:
    """The -o path, refused when writing it would replace the target, the reference or an input
    image (same path, or the same file through a link)."""
    from .utils.errors import OutputError
    if output is None:
        return None
    out = Path(output)
    if out.is_dir():
        raise OutputError(f"-o '{output}' is a folder; give the CSV file to write, e.g. -o scores.csv")
    _check_writable_folder(out, output)
    if not out.exists():  # a new file replaces nothing
        return out
    protected = [target, *paths]
    if ref is not None and Path(ref).exists():
        protected.append(Path(ref))
        if Path(ref).is_dir():
            from .inference import list_images
            protected += list_images(ref, recursive)
    for path in protected:
        try:
            same = os.path.samefile(out, path)
        except OSError:
            continue
        if same:
            raise OutputError(f"-o '{output}' is the input '{path}'; refusing to overwrite it with the "
                              "CSV: give another file, e.g. -o scores.csv")
    return out


def _check_writable_folder(out: Path, output: str) -> None:
    """Fail before any scoring when the CSV could not be written at the end: the nearest existing folder
    of ``out`` must be a folder in which a file can be created (probed with a temporary file)."""
    import tempfile

    from .utils.errors import OutputError
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"-o '{output}': '{folder}' is a file, not a folder; give a CSV path in a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"-o '{output}': cannot create files in the folder '{folder}' "
                          f"({exc.strerror or exc}); give a CSV path in a folder you can write") from exc


#: Memory one decoded pixel may take on its way to the network: Pillow's 4-byte RGB(X) image, the RGB
#: copy, and the float tensor of the downscaled image are well inside this.
BYTES_PER_DECODED_PIXEL = 16


def _available_memory() -> Optional[int]:
    """Bytes of memory available to new allocations (Linux: MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _memory_for_images() -> Optional[int]:
    """The smaller of the available memory and this process's address-space limit (``ulimit -v``)."""
    limits = [m for m in (_available_memory(), _address_space_limit()) if m is not None]
    return min(limits) if limits else None


def _address_space_limit() -> Optional[int]:
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def _pixel_limit(requested: int) -> Optional[int]:
    """Pillow's MAX_IMAGE_PIXELS for ``--max-image-pixels`` (0: no limit asked), never more than fits in
    the available memory: Pillow refuses images above twice this limit, so a decompression bomb is one
    unreadable file instead of a MemoryError (or the kernel's OOM killer) ending the run."""
    memory = _memory_for_images()
    fits = None if memory is None else max(1, memory // BYTES_PER_DECODED_PIXEL // 2)
    if fits is not None and (requested <= 0 or requested > fits):
        _note(f"--max-image-pixels {requested}: images above {2 * fits:,} pixels are still refused: "
              f"decoded they would not fit in the {memory / 2**30:.1f} GiB of available memory")
        return fits
    return requested or None


def _workers(requested: Optional[int], num_files: int, processes: int = 1) -> int:
    """Decoding processes: by default min(4, half the usable cores), none for a single file; the cores are
    shared by the ``processes`` a torchrun job starts on this machine."""
    from .utils.threads import available_cores
    cores = max(1, available_cores() // max(1, processes))
    if requested is None:
        return 0 if num_files == 1 else max(1, min(4, cores // 2))
    if requested > cores:
        print(f"pyiqa: warning: --workers {requested} is more than the {cores} core(s) this process "
              "may use; the decoding processes will compete with the network for them",
              file=sys.stderr)
    return requested


def _write_csv(out: TextIO, names: Sequence[str], rows: Iterator[Row], flush: bool = False) -> int:
    """Write the header and the scored rows; report unreadable inputs on stderr; return their count."""
    from tqdm import tqdm
    writer = csv.writer(out)
    writer.writerow(["image", *names])
    failed = 0
    for ref, row, reason in rows:
        name = ref.key  # a folder's images relative to it, a file or listed path as given
        if reason is not None:
            failed += 1
            tqdm.write(f"FAILED {name}: {reason}", file=sys.stderr)
            continue
        writer.writerow([name, *(f"{score:.6f}" for score in row)])
        if flush:
            out.flush()
    return failed


def _write_atomically(output: Path, write: Any) -> int:
    """Run ``write(text_file)`` into a temporary file beside ``output``, renamed over it at the end:
    a run that is killed or fails leaves the old file (if any) untouched."""
    from .utils.atomic import atomic_write
    from .utils.errors import OutputError
    result: List[int] = []

    def write_text(binary: Any) -> None:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        result.append(write(text))
        text.flush()
        text.detach()  # atomic_write flushes, fsyncs and closes the binary file itself

    try:
        atomic_write(output, write_text)
    except OSError as exc:
        raise OutputError(f"cannot write '{output}': {exc}") from exc
    return result[0]
