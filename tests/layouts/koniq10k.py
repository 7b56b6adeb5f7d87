"""KonIQ-10k as published: koniq10k_scores_and_distributions.csv (release; vote counts, MOS and SD on
1-5, MOS_zscore on 0-100, quoted R-style), metadata/koniq10k_distributions_sets.csv (GitHub; vote
fractions, MOS = MOS_zscore, SD, set) and the 512x384/ JPEGs."""
from __future__ import annotations

import csv
from pathlib import Path

from . import Layout, tiny_image

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"  # excerpts; see their SOURCE.md

COLUMNS = ["img_name", "mos", "std", "split", "c1", "c2", "c3", "c4", "c5", "c_total", "mos_1to5"]
SETS = ["training"] * 12 + ["validation"] * 3 + ["test"] * 5


def row(i: int):
    """(name, votes c1..c5, MOS 1-5, SD, MOS_zscore 0-100, set) of fixture image i."""
    votes = [i % 3, 10 + i, 40, 30 + 2 * i, 5]
    total = sum(votes)
    mos = sum((k + 1) * v for k, v in enumerate(votes)) / total
    return f"{1000000 + 37 * i}.jpg", votes, round(mos, 6), 0.5 + i / 100, 20.5 + 3.25 * i, SETS[i]


def write(root: Path) -> Layout:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "koniq10k_scores_and_distributions.csv", "w", newline="") as f:
        out = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        out.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"])
        for i in range(len(SETS)):
            name, votes, mos, sd, z, _ = row(i)
            out.writerow([name, *votes, sum(votes), mos, sd, z])
    lines = ["image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set"]
    for i in range(len(SETS)):
        name, votes, _, sd, z, part = row(i)
        fractions = ",".join(repr(v / sum(votes)) for v in votes)
        lines.append(f"{name},{fractions},{sum(votes)},{z},{sd},{part}")
        tiny_image(root / "512x384" / name, seed=i)
    (root / "koniq10k_distributions_sets.csv").write_text("\n".join(lines) + "\n")
    return Layout(rows=len(SETS), columns=COLUMNS, official=True)


def write_real(root: Path) -> Layout:
    """The real first 40 rows of koniq10k_distributions_sets.csv (fixtures/real/koniq10k), tiny JPEGs and
    no scores file (it is optional)."""
    root.mkdir(parents=True, exist_ok=True)
    text = (REAL / "koniq10k" / "koniq10k_distributions_sets.csv").read_bytes()
    (root / "koniq10k_distributions_sets.csv").write_bytes(text)
    names = [line.split(",")[0] for line in text.decode().splitlines()[1:]]
    for i, name in enumerate(names):
        tiny_image(root / "512x384" / name, seed=i, size=(8, 6))
    return Layout(rows=len(names), columns=COLUMNS[:-1], official=True)
