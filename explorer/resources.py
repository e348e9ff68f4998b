"""Where the files that ship beside the library live: ``app.py`` and ``pages/`` (the app), ``assets/`` (the shipped
checkpoints), ``README.md`` (quoted by the guided path), ``.streamlit/config.toml``, and the library's own data files.

This module is the one place that knows: nothing else in the library builds a path from ``__file__``.

* From a checkout (or an editable install) they are the checkout's own files.
* A wheel (``pip install .``) carries copies of them under ``explorer/_bundle/`` (``pyproject.toml``'s
  ``force-include``), so the app and the CLI work from any directory.

Environment:
    EXPLORER_CHECKPOINT_DIR: another directory of shipped checkpoints (``<kind>_<anatomy>.pt``).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
BUNDLE = _PACKAGE / "_bundle"


def root() -> Path:
    """The folder holding ``app.py``, ``pages/``, ``assets/`` and ``README.md`` (installed copy or checkout)."""
    return BUNDLE if (BUNDLE / "app.py").is_file() else _PACKAGE.parent


def app_script() -> Path:
    """The Streamlit entry script ``app.py``."""
    return root() / "app.py"


def readme() -> Path:
    """``README.md`` (may be absent in a stripped install: callers handle a missing file)."""
    return root() / "README.md"


def streamlit_config() -> Path:
    """The app's Streamlit settings, ``.streamlit/config.toml``."""
    return root() / ".streamlit" / "config.toml"


def checkpoint_dir() -> Path:
    """Directory of the shipped checkpoints: ``$EXPLORER_CHECKPOINT_DIR`` or ``assets/checkpoints``."""
    env = os.environ.get("EXPLORER_CHECKPOINT_DIR", "").strip()
    return Path(env).expanduser() if env else root() / "assets" / "checkpoints"


def import_root() -> Path:
    """The folder that holds the ``explorer`` package (what a worker process needs on ``PYTHONPATH`` to import it)."""
    return _PACKAGE.parent


def package_file(relative: str) -> Path:
    """A data file inside the package, e.g. ``package_file("recon/tuned_lambdas.json")``."""
    return _PACKAGE / relative


__all__ = ["BUNDLE", "app_script", "checkpoint_dir", "import_root", "package_file", "readme", "root", "streamlit_config"]
