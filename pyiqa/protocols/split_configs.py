"""The per-split training configs of a split run, and which protocol each one supports.

From one training YAML (with ``--force_yml`` overrides and the ``test_<dataset>`` sections of
cross-dataset tests, :func:`cross_sections`, applied) :func:`derive_options` builds the config of split
(or few-label repeat) N: run name ``<name>_split<N>`` (``<name>_labels<L>_rep<N>``), ``split_index: N``
in every dataset section that selects rows by split, and the few-label subset file in the sections over
the training data.

:func:`validation_part` decides, before anything is trained, whether the run's validation keeps the test
images out, by asking each section's dataset class which rows it selects (:func:`section_split`: the
same code the dataset runs, so the plan and the training cannot disagree): a split whose ``val`` list is
empty makes the val phase fall back to the test part (the release's 80/20 files), so net_best.pth is
chosen on the test images and only the release protocol exists. With a real validation part (70/10/20
files ``*_ratio712_seed123.pkl``, ``split_ratio: 712`` columns) that is disjoint from the ``test``
section's rows, the honest protocol (net_best.pth scored once on test) exists.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ..data.meta_info import Split
from ..data.splits import (SPLIT_KEYS, check_part, few_label_pickle_name, phase_part, split_pickle_name,
                           split_pickle_prefix)
from ..utils.errors import ConfigError, DataError
from ..utils.options import load_yaml
from ..utils.registry import closest

_META_FILE_RE = re.compile(r"meta_info_(.+?)(Dataset)?\.csv")


def base_name(name: str) -> str:
    """The run's ``name`` without a trailing ``_split<N>`` (the shipped configs are named ``..._split1``)."""
    return re.sub(r"_split\d+$", "", name) or name


def run_name(name: str, split: int, labels: Optional[int]) -> str:
    """``<name>_split<N>``, or ``<name>_labels<L>_rep<N>`` for few-label repeat N."""
    return f"{name}_split{split}" if labels is None else f"{name}_labels{labels}_rep{split}"


def dataset_class(section: Dict[str, Any], where: str) -> Any:
    """The dataset class a section's ``type`` names, from DATASET_REGISTRY (imported here: it pulls in
    torch, which the runner's argument checks do without)."""
    from .. import data  # noqa: F401  (registers the dataset classes)
    from ..utils.registry import DATASET_REGISTRY
    if not isinstance(section, dict) or section.get("type") is None:
        raise ConfigError(f"'{where}' must be a mapping with a 'type' key, got {section!r}")
    return DATASET_REGISTRY.get(section["type"], f"{where}.type")


def network_prompts(network: Optional[Dict[str, Any]]) -> List[str]:
    """The prompt groups a ``network`` section builds: its ``prompts``, else its type's (the release's
    class names preset them), else UniQA's default."""
    import inspect
    from ..archs.uniqa_arch import VARIANTS, UniQA
    network = network or {}
    if network.get("prompts") is not None:
        return list(network["prompts"])
    preset = VARIANTS.get(str(network.get("type")), {}).get("prompts")
    return list(preset if preset is not None else inspect.signature(UniQA).parameters["prompts"].default)


def meta_csv(section: Dict[str, Any], where: str) -> Optional[Path]:
    """The meta CSV a dataset section reads, as its class fills it in (DemoIQADataset: its built-in
    one), or None."""
    csv = dataset_class(section, where).source_options(section, where).get("meta_info_file")
    return Path(csv) if csv else None


def same_data(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Both sections read the same dataset (type, folder and meta CSV)."""
    return all(a.get(k) == b.get(k) for k in ("type", "dataroot_target", "meta_info_file"))


def selects_by_split(section: Dict[str, Any]) -> bool:
    return any(section.get(k) is not None for k in ("split_file", "split_index"))


def few_label_file(train: Dict[str, Any], labels: int) -> Path:
    """``<prefix>_fewlabel<L>_seed123.pkl`` next to the training meta CSV; ConfigError/DataError naming
    the file expected and the command that writes it when it is missing."""
    from ..data.prepare import PREPARERS  # the preparers know their CSV's name
    csv = meta_csv(train, "datasets.train")
    if csv is None:
        raise ConfigError("--labels needs datasets.train.meta_info_file: the few-label subsets are written "
                          "next to the meta CSV by pyiqa-prepare-dataset")
    prefix = next((p.name for p in PREPARERS.values() if p.meta_file == csv.name), None)
    split_file = Path(str(train.get("split_file") or ""))
    if prefix is None:
        prefix = split_pickle_prefix(split_file.name)
    if prefix is None and (m := _META_FILE_RE.fullmatch(csv.name)):
        prefix = m.group(1).lower()
    if prefix is None:
        raise ConfigError(f"--labels {labels}: cannot tell the dataset's few-label file from meta CSV "
                          f"'{csv}'; name it meta_info_<Name>Dataset.csv as pyiqa-prepare-dataset does")
    path = csv.parent / few_label_pickle_name(prefix, labels)
    if not path.is_file():
        known = prefix if prefix in PREPARERS else "NAME"
        raise DataError(f"--labels {labels}: few-label file '{path}' does not exist; write it with: "
                        f"pyiqa-prepare-dataset {known} --root <the downloaded dataset> --out {csv.parent} "
                        f"--few-label {labels}")
    return path


def cross_sections(names: Sequence[str], test_dir: Path, dataroots: Dict[str, str]) -> Dict[str, Dict[str, Any]]:
    """``{dataset: section}``: the ``datasets.test`` section of ``<test_dir>/<dataset>.yml`` without its
    split keys (every row the dataset class gives without a split), ``dataroot_target`` from ``dataroots``."""
    known = sorted(p.stem for p in test_dir.glob("*.yml"))
    out = {}
    for name in names:
        if name not in known:
            raise ConfigError(f"--test-on {name}: no test config {test_dir / (name + '.yml')}.{closest(name, known)} "
                              f"Known: {known}")
        opt = load_yaml(test_dir / f"{name}.yml")
        section = (opt.get("datasets") or {}).get("test")
        if not isinstance(section, dict):
            raise ConfigError(f"--test-on {name}: {test_dir / (name + '.yml')} has no datasets.test section")
        section = {k: v for k, v in copy.deepcopy(section).items() if k not in SPLIT_KEYS}
        if name in dataroots:
            section["dataroot_target"] = dataroots[name]
        out[name] = section
    unused = sorted(set(dataroots) - set(names))
    if unused:
        raise ConfigError(f"--dataroot {unused[0]}=...: '{unused[0]}' is not among --test-on {list(names)}")
    return out


def derive_options(opt: Dict[str, Any], split: int, name: str, labels_file: Optional[Path] = None
                   ) -> Dict[str, Any]:
    """The config of split ``split`` (a new dict; ``opt`` is not changed).

    ``split_index: split`` goes into every dataset section with a split_file or split_index; with
    ``labels_file`` the sections over the training data read that file instead (their split columns
    dropped).
    """
    out = copy.deepcopy(opt)
    out["name"] = name
    datasets = out["datasets"]
    train = copy.deepcopy(datasets["train"])
    for key, section in datasets.items():
        if not isinstance(section, dict):
            continue
        if labels_file is not None and same_data(section, train):
            section.pop("split_column", None)
            section.pop("split_ratio", None)
            section["split_file"] = str(labels_file)
        if selects_by_split(section):
            section["split_index"] = split
    return out


def section_split(section: Dict[str, Any], where: str) -> Tuple[Optional[Split], str]:
    """(the split a section's rows come from, its description); (None, why) when it reads every row.

    Asked of the section's dataset class (``GeneralNRDataset.section_split``), which selects the rows the
    dataset will: its split file or split column (words or IQA-PyTorch's codes 0/1/2), its own defaults
    (the demo's split file), rules (AVA's official split) and dropped leading rows (LIVE Challenge's 7).
    Rows are numbered as the dataset numbers them; :func:`csv_rows` turns them into meta CSV rows.
    """
    source, split = dataset_class(section, where).section_split(section, where)
    if split is None:
        return None, "no split_file, split_index or split_column (every row)"
    return split, source


def csv_rows(section: Dict[str, Any], rows: Sequence[int], where: str) -> Set[int]:
    """Dataset rows of a section as meta CSV rows (a class may drop leading rows: ``skip_rows``), so the
    rows of two sections over the same CSV compare."""
    skip = dataset_class(section, where).skip_rows
    return {r + skip for r in rows}


def validation_part(datasets: Dict[str, Any], split: int) -> Tuple[str, str]:
    """(what ``datasets.val`` evaluates, why the honest protocol is unavailable or '').

    The first value is ``'val'`` only when the val section selects a validation part that shares no row
    with the ``test`` section; then net_best.pth's test score is honest. Otherwise it is ``'test'`` (val
    falls back to, or is set to, the test part), ``'all'`` (no split) or ``'val+test'`` (overlap). A
    section whose phase finds no rows raises the DataError its dataset would.
    """
    val = datasets["val"]
    v_split, v_source = section_split(val, "datasets.val")
    if v_split is None:
        return "all", f"datasets.val has {v_source}, which includes the test images"
    part = phase_part(v_split, "val", val.get("override_phase"))
    check_part(v_split, part, v_source, "datasets.val")
    if part != "val":
        why = ("has no 'val' rows, so validation falls back to the test part" if not val.get("override_phase")
               else f"is read with override_phase: {part}")
        return part, (f"datasets.val's {v_source} {why}: net_best.pth is chosen on the test images (the "
                      f"release's protocol). Use a 70/10/20 split ({split_pickle_name('<name>', 'ratio712')}, or "
                      "split_ratio: 712 with split columns) for an honest estimate")
    test = datasets.get("test")
    if test is None:
        return "val", ""
    t_split, t_source = section_split(test, "datasets.test")
    v_rows = csv_rows(val, v_split["val"], "datasets.val")
    t_rows = None
    if t_split is not None:
        t_part = phase_part(t_split, "test", test.get("override_phase"))
        check_part(t_split, t_part, t_source, "datasets.test")
        t_rows = csv_rows(test, t_split[t_part], "datasets.test")
    if meta_csv(test, "datasets.test") == meta_csv(val, "datasets.val") and (t_rows is None or t_rows & v_rows):
        shared = len(v_rows) if t_rows is None else len(t_rows & v_rows)
        return "val+test", (f"datasets.val ({v_source}) and datasets.test ({t_source}) share {shared} rows of "
                            f"split {split}, so net_best.pth is chosen on test images")
    return "val", ""


def add_test_section(datasets: Dict[str, Any]) -> bool:
    """Add ``datasets.test`` as the val section's test part when the config has none and the val
    section's split has test rows (a train/val-only split has none to read); True if added.

    The honest protocol needs it: net_best.pth is scored on every ``test*`` section at the end."""
    if "test" in datasets:
        return False
    split, _ = section_split(datasets["val"], "datasets.val")
    if split is None or not split.get("test"):
        return False
    test = copy.deepcopy(datasets["val"])
    test.pop("override_phase", None)
    datasets["test"] = test
    return True


def differences(old: Dict[str, Any], new: Dict[str, Any], prefix: str = "") -> List[str]:
    """Dotted keys whose values differ between two option trees, with both values."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b, where = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{where}.")
        elif a != b:
            out.append(f"{where}: {_short(a, key in old)} there, {_short(b, key in new)} now")
    return out


def _short(value: Any, present: bool) -> str:
    if not present:
        return "absent"
    text = "a section" if isinstance(value, dict) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
