"""Robustness experiments: loops around the engine's one reconstruction, branching on method capabilities.

* :mod:`~explorer.robustness.objectives`: attack budgets and objectives;
* :mod:`~explorer.robustness.attack`: worst-case k-space perturbations (:func:`attack`, :func:`sweep`,
  :func:`transfer`).
"""

from explorer.robustness.attack import AttackConfig, AttackResult, attack, perturbation_image, sweep, transfer
from explorer.robustness.objectives import (BUDGETS, OBJECTIVES, Objective, make_objective, parse_eps,
                                           parse_region)

__all__ = ["AttackConfig", "AttackResult", "BUDGETS", "OBJECTIVES", "Objective", "attack", "make_objective",
           "parse_eps", "parse_region", "perturbation_image", "sweep", "transfer"]
