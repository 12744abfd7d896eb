"""Per-weight class-based learning rates via analytical continuation (Tables 1-3 on 45 UCI sets).

Public API (the same shape as `companion.fixed_classifier`):

* the method: :class:`ClassLR` (fast step: one backward pass, fused C++ update),
  :class:`ReferenceClassLR` (the obvious per-class, per-sample version, the test oracle),
  :func:`managed_layers`, :data:`STATISTICS` (the two minibatch readings of Eq. 6);
* the networks: :class:`SelfNormalizingMLP`, :func:`hidden_widths`;
* non-convergence: :func:`non_convergence` and its :data:`DIVERGENCE_RULES`;
* the paper: :func:`datasets`, :func:`architecture` (Table 1, with the study's errata),
  :func:`paper_value` (Tables 2-3), :func:`paper_counts` (section 4), all read from the
  paper's data file `paper.json`.

Module roles: `experiment` (one config -> one record), `sweep` (grids, running them, reading
what is recorded, the command line), `tables` and `figures` (what the notebooks show),
`protocol` and `findings` (the protocol study), `verdict` and `context` (statistics),
`paper_checks` (what the paper's own numbers allow: its McNemar counts against its Table 2).
"""

from .convergence import RULES as DIVERGENCE_RULES
from .convergence import non_convergence
from .models import SelfNormalizingMLP, hidden_widths
from .optimizer import STATISTICS, ClassLR, ReferenceClassLR, managed_layers
from .registry import architecture, datasets, paper_counts, paper_value

__all__ = [
    "DIVERGENCE_RULES",
    "STATISTICS",
    "ClassLR",
    "ReferenceClassLR",
    "SelfNormalizingMLP",
    "architecture",
    "datasets",
    "hidden_widths",
    "managed_layers",
    "non_convergence",
    "paper_counts",
    "paper_value",
]
