"""Where a run writes: ``<root>/experiments/<name>/{models,training_states,tb_logger}`` and its log."""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentPaths:
    root: Path
    name: str

    @property
    def exp_dir(self) -> Path:
        return self.root / "experiments" / self.name

    @property
    def models(self) -> Path:
        return self.exp_dir / "models"

    @property
    def training_states(self) -> Path:
        return self.exp_dir / "training_states"

    @property
    def tb_logger(self) -> Path:
        return self.exp_dir / "tb_logger"

    def log_file(self, stamp: str) -> Path:
        return self.exp_dir / f"train_{self.name}_{stamp}.log"

    def prepare(self, resume: bool) -> Optional[Path]:
        """Create the folders; a previous run of the same name is renamed, never overwritten.

        Returns the archive path when an old run was moved away.
        """
        archived = None
        if self.exp_dir.exists() and not resume:
            archived = self.exp_dir.with_name(f"{self.name}_archived_{time.strftime('%Y%m%d_%H%M%S')}")
            self.exp_dir.rename(archived)
        for d in (self.models, self.training_states):
            d.mkdir(parents=True, exist_ok=True)
        return archived

    def latest_state(self) -> Optional[Path]:
        """The training state of the highest iteration, or None."""
        states = [(int(m.group(1)), p) for p in self.training_states.glob("*.state")
                  if (m := re.fullmatch(r"(\d+)\.state", p.name))]
        return max(states)[1] if states else None


def resume_state_path(opt: dict, paths: ExperimentPaths, auto_resume: bool) -> Optional[Path]:
    """``path.resume_state`` when set, else the newest training state with ``--auto_resume``."""
    explicit = (opt.get("path") or {}).get("resume_state")
    if explicit:
        return Path(explicit)
    return paths.latest_state() if auto_resume else None
