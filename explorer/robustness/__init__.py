"""Robustness experiments: loops around the engine's one reconstruction, branching on method capabilities.

Each experiment registers what a study needs of it (:mod:`~explorer.robustness.registry`):

* :mod:`~explorer.robustness.evaluate`: clean reconstructions over slices (``clean``);
  :mod:`~explorer.robustness.tune`: grid search of a sparse method's lambda;
* :mod:`~explorer.robustness.attack`: worst-case k-space perturbations (:mod:`~explorer.robustness.objectives`:
  budgets, objectives and settings; :mod:`~explorer.robustness.search`: the searches;
  :mod:`~explorer.robustness.perturbations`: transfer to other methods, the image of a perturbation);
* :mod:`~explorer.robustness.features`: small features (:mod:`~explorer.robustness.insertion`,
  :mod:`~explorer.robustness.feature_scores`, :mod:`~explorer.robustness.boxes`);
* :mod:`~explorer.robustness.shift`: distribution shifts; :mod:`~explorer.robustness.ttt`: test-time training.
"""
