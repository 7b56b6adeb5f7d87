"""MOS -> the five quality levels UniQA tells the MLLM, so its description agrees with human opinion.

Each dataset has its own MOS scale (KonIQ 1-5, SPAQ 0-100, TID2013 0-9, LIVE DMOS where lower is better),
so MOS is first normalised to [0, 1] with the dataset's range and direction, 1 = best. The unit interval
is then cut into five equal-width bins (paper, section 3): [0, .2) bad, [.2, .4) poor, [.4, .6) fair,
[.6, .8) good, [.8, 1] perfect, i.e. the top 20 % of the range is "perfect". A value on a boundary
belongs to the upper bin. Values outside the declared range are clipped to it (with one warning giving
their count: usually a range that is slightly too tight, sometimes the wrong range).

No torch here: the description generator and the corpus tools import this cheaply.
"""
from __future__ import annotations

import logging
import math
from typing import Iterable, List, Tuple

from pyiqa.utils.errors import ConfigError

logger = logging.getLogger(__name__)

LEVELS: Tuple[str, ...] = ("bad", "poor", "fair", "good", "perfect")

# Round before flooring so that e.g. MOS 4.2 on a 1-5 scale ((4.2 - 1) / 4 = 0.7999999999999999) lands
# in the bin a person computing by hand expects.
_DIGITS = 9


def check_range(mos_range: Tuple[float, float]) -> Tuple[float, float]:
    """Return ``(low, high)`` as floats; ConfigError unless both are finite and ``low < high``.

    The direction is given separately (``lower_better``), so the range is always written low first.
    """
    try:
        low, high = (float(v) for v in mos_range)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"MOS range must be two numbers LOW HIGH, got {mos_range!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ConfigError(f"MOS range must be finite with LOW < HIGH, got [{low}, {high}]; give it low "
                          "first and use --lower-better for scales where a smaller MOS is better")
    return low, high


def normalise(mos: Iterable[float], mos_range: Tuple[float, float], lower_better: bool = False) -> List[float]:
    """Map MOS values to [0, 1] where 1 is the best quality, clipping values outside ``mos_range``.

    Args:
        mos: raw MOS (or DMOS) values of one dataset.
        mos_range: ``(low, high)`` of the dataset's scale, low first whatever the direction.
        lower_better: True for DMOS-style scales (a smaller value is a better image).
    """
    low, high = check_range(mos_range)
    out, outside = [], 0
    for value in mos:
        x = (float(value) - low) / (high - low)
        if lower_better:
            x = 1.0 - x
        if math.isnan(x):
            raise ConfigError(f"MOS value {value!r} is not a number")
        if not 0.0 <= x <= 1.0:
            outside += 1
            x = min(1.0, max(0.0, x))
        out.append(x)
    if outside:
        logger.warning("%d of %d MOS values lie outside the MOS range [%g, %g] and were clipped to it; "
                       "check --mos-range", outside, len(out), low, high)
    return out


def level_of(normalised: float) -> str:
    """The level word of one normalised score in [0, 1] (five equal-width bins, boundaries go up)."""
    index = math.floor(round(normalised * len(LEVELS), _DIGITS))
    return LEVELS[min(max(index, 0), len(LEVELS) - 1)]


def mos_levels(mos: Iterable[float], mos_range: Tuple[float, float],
               lower_better: bool = False) -> List[Tuple[float, str]]:
    """``(normalised score, level word)`` per MOS value, in input order."""
    return [(x, level_of(x)) for x in normalise(mos, mos_range, lower_better)]
