"""Dataset preparers: the files users download -> pyiqa meta CSVs, seeded splits, few-label subsets.

``pyiqa-prepare-dataset NAME --root DIR`` runs :func:`prepare`. One module per dataset
registers its :class:`Preparer`; they are imported here explicitly (no folder scanning), so adding a
dataset is one small module plus one line below.
"""
from .registry import PREPARERS, Annotations, Preparer, get_preparer, register, require
from . import aadb, agiqa1k, agiqa3k, ava, csiq, flive, kadid10k, koniq10k, live, livec, spaq, tid2013  # noqa: F401,E402
from . import agin, aigiqa20k, eciqad  # noqa: F401,E402
from ..splits import split_pickle_name  # noqa: E402  (re-exported: where the preparers write)
from .pipeline import Report, prepare  # noqa: E402

__all__ = ["PREPARERS", "Annotations", "Preparer", "Report", "get_preparer", "prepare", "split_pickle_name",
           "register", "require"]
