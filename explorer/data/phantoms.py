"""Anatomy of the embedded sample: the knee and brain 3D subjects and the grid they are drawn on."""

from explorer.data.brain import BRAIN_FOV, BRAIN_SPACING, BRAIN_SPAN, brain
from explorer.data.knee import KNEE_FOV, KNEE_SPACING, KNEE_SPAN, knee
from explorer.data.shapes import BRAIN_ID, KNEE_ID, Grid, make_grid, rng_for, seed_int

__all__ = ["BRAIN_FOV", "BRAIN_ID", "BRAIN_SPACING", "BRAIN_SPAN", "Grid", "KNEE_FOV", "KNEE_ID", "KNEE_SPACING",
           "KNEE_SPAN", "brain", "knee", "make_grid", "rng_for", "seed_int"]
