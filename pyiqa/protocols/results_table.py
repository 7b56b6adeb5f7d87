"""Our results beside the UniQA paper's, in the paper's table layout (Markdown) and as a bar chart.

Inputs (see result_files.py): ``<results>/<name>/summary.json`` of the split runner and
``<results>/zero_shot/<dataset>.json`` of the zero-shot evaluator; the paper's numbers come from
``paper_results.yml``. Tables:

- Table 1 (IQA sets) and Tables 2-3 (AVA, AADB): full-label runs (``labels: null``), median SRCC / PLCC
  under the release protocol (as the paper used it) and, where a run has it, the honest protocol.
- Table 4: zero-shot SRCC, single cue (``uniqa-single``) and ensemble (``uniqa``).
- Table 5: few-label runs (``labels`` 50 / 100 / 200), median SRCC.

When several runs fit one cell, the chosen one has the paper's prompt variant (single cue for Tables 1-3,
ensemble for Table 5), then the most splits, then the newest ``summary.json``, then the greatest name;
the others are listed under "Other results" with their numbers. Of several zero-shot files of one dataset
(``koniq.json`` and ``koniq10k.json``), the newest is chosen the same way. Results that fit no paper cell
(other datasets, label counts, cross-dataset tests) are listed there too, so every number read is shown.

A run's backbone is read from the per-split YAMLs beside its summary, else from the config it names
(result_files.config_backbone); ``random``/``random-tiny`` there, or ``random_weights: true`` in a
zero-shot file, puts a loud warning at the top and marks the backbone row. A malformed result file, or one
holding a number no correlation can be, is skipped with a warning and listed at the end of the Markdown
(``strict``: the error stops the build). A NaN correlation of a zero-shot file (constant predictions) is
shown as "undefined", with a note saying why.

TABLE.md names files relative to the results folder (where the runs wrote them) or in the package, never
elsewhere. TABLE.png (results_chart) draws every SRCC of ours the tables show in a paper cell beside the
paper's, and every result that fits no paper cell (the demo's) alone; random weights are flagged on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pyiqa.utils.atomic import write_bytes

from .paper_results import FEW_LABELS, PAPER_YAML, load_paper_results
from .result_files import Results, RunSummary, ZeroShotResult, collect_results
from .results_chart import ChartPoint, render_png

NA = "n/a"
UNDEFINED = "undefined"   # a NaN correlation of a zero-shot file (see result_files)
MD_NAME, PNG_NAME = "TABLE.md", "TABLE.png"


@dataclass
class Pick:
    """The result chosen for one paper cell and the others that also fit it (in preference order)."""
    chosen: Any = None
    others: List[Any] = field(default_factory=list)


@dataclass
class Selection:
    full: Dict[str, Pick]                 # dataset -> full-label run
    few: Dict[Tuple[str, int], Pick]      # (dataset, labels) -> few-label run
    zero: Dict[str, Pick]                 # dataset -> zero-shot file
    root: Path = Path(".")                # the results folder: TABLE.md names files relative to it


@dataclass
class TableReport:
    markdown: str
    md_path: Path
    png_path: Path
    results: Results


def _pick(items: Sequence[Any], key) -> Pick:
    ranked = sorted(items, key=key, reverse=True)
    return Pick(ranked[0], ranked[1:]) if ranked else Pick()


def select(paper: Dict[str, Any], results: Results) -> Selection:
    """Choose the run (or zero-shot file) for every cell of the paper's tables (see the module doc)."""
    def run_key(variant: str):
        return lambda r: (r.variant == variant, r.n_splits("release") or 0, r.mtime, r.name)

    full_variant, few_variant = paper["full_label"]["variant"], paper["few_label"]["variant"]
    full = {ds: _pick([r for r in results.runs if r.dataset == ds and r.labels is None], run_key(full_variant))
            for ds in paper["full_label"]["datasets"]}
    few = {(ds, n): _pick([r for r in results.runs if r.dataset == ds and r.labels == n], run_key(few_variant))
           for ds in paper["few_label"]["datasets"] for n in FEW_LABELS}
    zero = {ds: _pick([z for z in results.zero_shot if z.dataset == ds], lambda z: (z.mtime, z.path.name))
            for ds in paper["zero_shot"]["datasets"]}
    return Selection(full, few, zero, results.root)


# ----------------------------------------------------------------------------------------------- cells
def fmt(x: Optional[float]) -> str:
    """Three decimals, 'n/a' for a missing value, 'undefined' for NaN."""
    if x is None:
        return NA
    return UNDEFINED if math.isnan(x) else f"{x:.3f}"


def diff(ours: Optional[float], paper: Optional[float]) -> str:
    """ours - paper with its sign, three decimals; 'n/a' when either is missing, 'undefined' for NaN."""
    if ours is None or paper is None:
        return NA
    return UNDEFINED if math.isnan(ours) else f"{ours - paper:+.3f}"


def shown_path(path: Path, root: Path) -> str:
    """``path`` as TABLE.md names it: relative to the results folder (where the run wrote it)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def pair(a: str, b: str) -> str:
    """An 'SRCC / PLCC' cell; 'n/a' when both are."""
    return NA if a == NA and b == NA else f"{a} / {b}"


def backbone_label(backbone: str, random_weights: bool) -> str:
    if random_weights:
        return f"{backbone} (RANDOM)"
    return backbone if backbone == "unknown" else ", ".join(Path(b).name for b in backbone.split(", "))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _run_rows(runs: Sequence[Optional[RunSummary]], paper: Sequence[Tuple[Optional[float], Optional[float]]],
              metrics: Tuple[str, ...]) -> List[List[str]]:
    """The 'ours' rows of a run-based table: one column per (run, paper numbers); SRCC / PLCC cells when
    two metrics are given, SRCC alone otherwise."""
    def cell(values: Sequence[str]) -> str:
        return pair(*values) if len(values) == 2 else values[0]

    def ours(protocol: str) -> List[str]:
        return [cell([fmt(r.value(protocol, m)) if r else NA for m in metrics]) for r in runs]

    def delta(protocol: str) -> List[str]:
        return [cell([diff(r.value(protocol, m) if r else None, p[k]) for k, m in enumerate(metrics)])
                for r, p in zip(runs, paper)]

    rows = [["ours, release protocol", *ours("release")], ["difference, release - paper", *delta("release")]]
    if any(r is not None and "honest" in r.protocols for r in runs):
        rows += [["ours, honest protocol", *ours("honest")], ["difference, honest - paper", *delta("honest")]]
    rows.append(["splits (release / honest)",
                 *[NA if r is None else f"{r.n_splits('release')} / {fmt_int(r.n_splits('honest'))}"
                   for r in runs]])
    rows.append(["run", *[r.name if r else NA for r in runs]])
    rows.append(["prompts", *["+".join(r.prompts) if r and r.prompts else ("unknown" if r else NA)
                              for r in runs]])
    rows.append(["backbone", *[backbone_label(r.backbone, r.random_weights) if r else NA for r in runs]])
    return rows


def fmt_int(n: Optional[int]) -> str:
    return NA if n is None else str(n)


def _run_notes(picks: Sequence[Tuple[str, Pick]], variant: str) -> List[str]:
    notes = []
    for column, pick in picks:
        run = pick.chosen
        if run is None:
            continue
        if pick.others:
            notes.append(f"{column}: {1 + len(pick.others)} runs fit; shown: {run.name} "
                         f"({_count(run.n_splits('release'), 'split')}); also: "
                         + ", ".join(f"{o.name} ({_count(o.n_splits('release'), 'split')})" for o in pick.others))
        if run.variant != variant:
            notes.append(f"{column}: {run.name} uses prompts {run.prompts or 'unknown'} ({run.variant}); "
                         f"the paper's numbers are {variant}")
        if "honest" not in run.protocols and run.honest_unavailable:
            notes.append(f"{column}: honest protocol unavailable for {run.name}: {run.honest_unavailable}")
    return notes


# ---------------------------------------------------------------------------------------------- tables
def full_label_table(paper: Dict[str, Any], sel: Selection, table: str, title: str) -> List[str]:
    entries = {ds: e for ds, e in paper["full_label"]["datasets"].items() if e["table"] == table}
    if not entries:
        return []
    runs = [sel.full[ds].chosen for ds in entries]
    numbers = [(e["srcc"], e["plcc"]) for e in entries.values()]
    rows = [["UniQA (paper)", *[pair(fmt(s), fmt(p)) for s, p in numbers]]]
    rows += _run_rows(runs, numbers, ("srcc", "plcc"))
    rows.append(["best other (paper)", *[pair(fmt(e["best_other_srcc"]), fmt(e["best_other_plcc"]))
                                         for e in entries.values()]])
    notes = _run_notes([(e["column"], sel.full[ds]) for ds, e in entries.items()], paper["full_label"]["variant"])
    return [f"## {title}", "", *_table(["", *[e["column"] for e in entries.values()]], rows), *_bullets(notes)]


def zero_shot_table(paper: Dict[str, Any], sel: Selection) -> List[str]:
    entries = paper["zero_shot"]["datasets"]
    files: List[Optional[ZeroShotResult]] = [sel.zero[ds].chosen for ds in entries]

    def ours(z: Optional[ZeroShotResult], variant: str) -> Optional[float]:
        return z.models.get(variant, {}).get("srcc") if z else None

    rows = []
    for variant, label, model in (("single", "single cue", "uniqa-single"), ("ensemble", "ensemble", "uniqa")):
        rows += [[f"UniQA {label} (paper)", *[fmt(e[variant]) for e in entries.values()]],
                 [f"ours {label} ({model})", *[fmt(ours(z, variant)) for z in files]],
                 [f"difference, {label}", *[diff(ours(z, variant), e[variant])
                                            for z, e in zip(files, entries.values())]]]
    rows += [["images", *[str(z.images) if z else NA for z in files]],
             ["backbone", *[backbone_label(z.backbone, z.random_weights) if z else NA for z in files]],
             ["file", *[shown_path(z.path, sel.root) if z else NA for z in files]]]
    notes = [f"{e['column']}: {1 + len(sel.zero[ds].others)} files fit; shown: "
             f"{shown_path(sel.zero[ds].chosen.path, sel.root)} (newest); also: "
             + ", ".join(shown_path(o.path, sel.root) for o in sel.zero[ds].others)
             for ds, e in entries.items() if sel.zero[ds].others]
    notes += [f"{e['column']}: {shown_path(z.path, sel.root)} scored only the first {z.limit} images (--limit): "
              f"a quick look, not the benchmark" for e, z in zip(entries.values(), files) if z and z.limit is not None]
    return ["## Table 4: zero-shot SRCC (single cue / ensemble)", "",
            *_table(["", *[e["column"] for e in entries.values()]], rows), *_bullets(notes)]


def few_label_table(paper: Dict[str, Any], sel: Selection) -> List[str]:
    entries = paper["few_label"]["datasets"]
    cells = [(ds, e, n) for ds, e in entries.items() for n in FEW_LABELS]
    runs = [sel.few[(ds, n)].chosen for ds, _, n in cells]
    numbers = [(e[f"labels_{n}"], None) for _, e, n in cells]
    rows = [["UniQA (paper)", *[fmt(p) for p, _ in numbers]], *_run_rows(runs, numbers, ("srcc",))]
    columns = [f"{e['column']} {n}" for _, e, n in cells]
    notes = _run_notes([(c, sel.few[(ds, n)]) for c, (ds, _, n) in zip(columns, cells)],
                       paper["few_label"]["variant"])
    return [f"## Table 5: few-label SRCC with 50 / 100 / 200 labels ({paper['few_label']['variant']})", "",
            *_table(["", *columns], rows), *_bullets(notes)]


def other_rows(results: Results, sel: Selection) -> List[List[str]]:
    """Every number read that no paper cell shows: runs that fit no cell or were not chosen, cross-dataset
    tests, zero-shot files of other datasets or not chosen, and unknown zero-shot models."""
    chosen = {id(p.chosen) for picks in (sel.full, sel.few, sel.zero) for p in picks.values() if p.chosen}
    rows = []
    for run in results.runs:
        kind = "full-label" if run.labels is None else f"{run.labels} labels"
        if id(run) not in chosen:
            fits = (run.labels is None and run.dataset in sel.full) or (run.dataset, run.labels) in sel.few
            why = "not chosen (another run fits the cell)" if fits else "no paper number"
            for protocol in run.protocols:
                rows.append([run.name, run.dataset, f"{kind}, {protocol} protocol; {why}",
                             fmt(run.value(protocol, "srcc")), fmt(run.value(protocol, "plcc")),
                             _count(run.n_splits(protocol), "split")])
        for target, metrics in run.cross.items():
            srcc, plcc = metrics.get("srcc", {}), metrics.get("plcc", {})
            n = srcc.get("n")
            rows.append([run.name, target, f"cross-dataset test of the {kind} model trained on {run.dataset}",
                         fmt(srcc.get("median")), fmt(plcc.get("median")),
                         NA if n is None else _count(int(n), "split")])
    for z in results.zero_shot:
        for model, metrics in z.models.items():
            if id(z) in chosen and model in ("single", "ensemble"):
                continue
            why = "no paper number" if z.dataset not in sel.zero else (
                "not chosen (another file fits)" if id(z) not in chosen else "model not in the paper's table")
            rows.append([shown_path(z.path, results.root), z.dataset, f"zero-shot {model}; {why}",
                         fmt(metrics.get("srcc")), fmt(metrics.get("plcc")), _count(z.images, "image")])
    return rows


def _count(n: Optional[int], noun: str) -> str:
    return NA if n is None else f"{n} {noun}{'' if n == 1 else 's'}"


def _bullets(notes: Sequence[str]) -> List[str]:
    return [*(f"- {n}" for n in notes), ""] if notes else []


def warnings(results: Results) -> List[str]:
    """The loud notes: results from random weights, and runs whose backbone is unknown."""
    out = []
    root = results.root
    random = [f"`{shown_path(r.path, root)}` (backbone {r.backbone})" for r in results.runs if r.random_weights]
    random += [f"`{shown_path(z.path, root)}` (random_weights: true, backbone {z.backbone})"
               for z in results.zero_shot if z.random_weights]
    if random:
        out += ["> **WARNING: RANDOM WEIGHTS.** These results come from a randomly initialised backbone, not "
                "from UniQA's weights; their numbers say nothing about the paper's (TABLE.png, beside this "
                "file, hatches their bars and labels them RANDOM WEIGHTS): " + "; ".join(random), ""]
    unknown = [f"`{shown_path(r.path, root)}` ({r.backbone_note})" for r in results.runs if r.backbone == "unknown"]
    if unknown:
        out += ["> **Backbone unknown** (they may come from random weights): " + "; ".join(unknown), ""]
    undefined = [f"`{shown_path(z.path, root)}` {model}: " + ", ".join(nan) for z in results.zero_shot
                 for model, metrics in z.models.items()
                 if (nan := [m for m, v in metrics.items() if v is not None and math.isnan(v)])]
    if undefined:
        out += ["> **undefined**: a correlation with no value (the file holds NaN): the predictions or the "
                "labels were constant, as an untrained backbone's often are on few images. It is not a "
                "number to compare: " + "; ".join(undefined), ""]
    return out


def render_markdown(paper: Dict[str, Any], results: Results, sel: Selection,
                    paper_path: str | Path = PAPER_YAML) -> str:
    """The whole TABLE.md: header, warnings, Tables 1, 2-3, 4, 5, other results and skipped files. Every
    file it names is in the results folder (named relative to it) or in the package."""
    paper_file = "pyiqa/protocols/paper_results.yml" if Path(paper_path) == PAPER_YAML else str(paper_path)
    lines = ["# UniQA: our results against the paper", "",
             f"Generated by `pyiqa-results-table` from the results folder `{results.root}`; the files named "
             f"below are in it. Paper: {paper['source']} (`{paper_file}`).", "",
             "Cells are medians over the splits: SRCC / PLCC (Tables 1-3) or SRCC (Tables 4-5), three "
             "decimals; differences are ours - paper from the unrounded numbers; n/a: no result or no paper "
             "number. The release protocol is the paper's (the best validation SRCC, validated on the test "
             "part); the honest protocol keeps train, validation and test apart. Of several runs fitting one "
             "cell the one with the paper's prompt variant, then the most splits, then the newest is shown; "
             "the others are under Other results.", "", *warnings(results)]
    lines += full_label_table(paper, sel, "1", "Table 1: full-label IQA, SRCC / PLCC")
    lines += full_label_table(paper, sel, "2-3", "Tables 2-3: full-label aesthetics (AVA, AADB), SRCC / PLCC")
    lines += zero_shot_table(paper, sel)
    lines += few_label_table(paper, sel)
    others = other_rows(results, sel)
    if others:
        lines += ["## Other results (not in a paper cell)", "",
                  *_table(["source", "dataset", "what", "SRCC", "PLCC", "splits / images"], others)]
    if results.skipped:
        lines += ["## Skipped files (malformed)", "",
                  *(f"- `{shown_path(path, results.root)}`: {why.removeprefix(f'{path}: ')}"
                    for path, why in results.skipped), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------------- chart
def chart_points(paper: Dict[str, Any], results: Results, sel: Selection) -> Tuple[List[ChartPoint], int]:
    """The bars of TABLE.png and how many paper cells have no result of ours (not drawn).

    Every paper cell we have a number for (ours: release protocol, median SRCC), then every result that
    fits no paper cell (a run per protocol, a zero-shot file per model), such as the demo's. Runs that fit
    a cell but were not chosen are in TABLE.md only.
    """
    cells: List[Tuple[str, float, Optional[float], bool]] = []
    for ds, e in paper["full_label"]["datasets"].items():
        run = sel.full[ds].chosen
        cells.append((f"T{e['table']} {e['column']}", e["srcc"], run.value("release", "srcc") if run else None,
                      bool(run and run.random_weights)))
    for ds, e in paper["zero_shot"]["datasets"].items():
        z = sel.zero[ds].chosen
        for variant in ("single", "ensemble"):
            ours = z.models.get(variant, {}).get("srcc") if z else None
            cells.append((f"T4 {e['column']} {variant}", e[variant], ours, bool(z and z.random_weights)))
    for ds, e in paper["few_label"]["datasets"].items():
        for n in FEW_LABELS:
            run = sel.few[(ds, n)].chosen
            cells.append((f"T5 {e['column']} {n}", e[f"labels_{n}"],
                          run.value("release", "srcc") if run else None, bool(run and run.random_weights)))
    points = [ChartPoint(label, p, o, r) for label, p, o, r in cells if o is not None]
    for run in results.runs:
        fits = (run.labels is None and run.dataset in sel.full) or (run.dataset, run.labels) in sel.few
        if not fits:
            kind = "" if run.labels is None else f" {run.labels} labels"
            points += [ChartPoint(f"{run.name}{kind} {protocol}", None, run.value(protocol, "srcc"),
                                  run.random_weights)
                       for protocol in run.protocols if run.value(protocol, "srcc") is not None]
    for z in results.zero_shot:
        if z.dataset not in sel.zero:
            points += [ChartPoint(f"zero-shot {z.dataset} {model}", None, metrics["srcc"], z.random_weights)
                       for model, metrics in z.models.items() if metrics.get("srcc") is not None]
    return points, sum(o is None for _, _, o, _ in cells)


def build_results_table(results_dir: str | Path, out_dir: Optional[str | Path] = None, strict: bool = False,
                        paper_path: str | Path = PAPER_YAML) -> TableReport:
    """Read the results, write ``TABLE.md`` and ``TABLE.png`` (atomically) into ``out_dir`` (default:
    the results folder) and return the Markdown. DataError when the folder is missing or holds no
    usable results; ConfigError when the paper's YAML is malformed."""
    paper = load_paper_results(paper_path)
    results = collect_results(results_dir, strict=strict)
    sel = select(paper, results)
    markdown = render_markdown(paper, results, sel, paper_path)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    md_path, png_path = out / MD_NAME, out / PNG_NAME
    write_bytes(md_path, markdown.encode("utf-8"))
    write_bytes(png_path, render_png(*chart_points(paper, results, sel)))
    return TableReport(markdown, md_path, png_path, results)
