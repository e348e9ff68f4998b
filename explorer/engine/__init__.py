"""The experiment engine: one reconstruction, scored, as data.

* :mod:`~explorer.engine.problem`: :func:`prepare` a slice -> :class:`Problem` (measurements, mask,
  coil maps estimated once; :meth:`Problem.perturbed` under an explicit maps policy);
* :mod:`~explorer.engine.core`: :func:`reconstruct` (torch, caller's grad mode) and :func:`score`
  (fastMRI metrics), :func:`run_method` / :func:`run_batch` (both, timed), :func:`trainable_copy`,
  :func:`kspace_loss`;
* :mod:`~explorer.engine.tasks`: :class:`Task` (frozen, picklable) -> :func:`run_task` -> :class:`Record`;
* :mod:`~explorer.engine.table`: records as Parquet / CSV tables.
"""

from explorer.engine.core import (
    MethodResult,
    Score,
    as_instance,
    kspace_loss,
    reconstruct,
    run_batch,
    run_method,
    score,
    trainable_copy,
)
from explorer.engine.problem import MAPS_POLICIES, Problem, espirit_kernel_width, prepare
from explorer.recon.base import MethodInstance

__all__ = [
    "MAPS_POLICIES", "MethodInstance", "MethodResult", "Problem", "Score", "as_instance", "espirit_kernel_width",
    "kspace_loss", "prepare", "reconstruct", "run_batch", "run_method", "score", "trainable_copy",
]
