"""Robustness experiments: loops around the engine's one reconstruction, branching on method capabilities.

* :mod:`~explorer.robustness.objectives`: attack budgets and objectives;
* :mod:`~explorer.robustness.attack`: worst-case k-space perturbations (:func:`attack`, :func:`sweep`);
  :mod:`~explorer.robustness.perturbations`: :func:`transfer` to other methods, :func:`perturbation_image`;
* :mod:`~explorer.robustness.insertion`, ``feature_scores``, ``boxes``, ``small_features``: small features;
* :mod:`~explorer.robustness.shift`: distribution-shift studies; :mod:`~explorer.robustness.ttt`: test-time training.
"""

from explorer.robustness.attack import AttackConfig, AttackResult, attack, sweep
from explorer.robustness.objectives import (BUDGETS, OBJECTIVES, Objective, make_objective, parse_eps,
                                           parse_region)
from explorer.robustness.perturbations import perturbation_image, transfer

__all__ = ["AttackConfig", "AttackResult", "BUDGETS", "OBJECTIVES", "Objective", "attack", "make_objective",
           "parse_eps", "parse_region", "perturbation_image", "sweep", "transfer"]
