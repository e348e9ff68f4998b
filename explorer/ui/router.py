"""The one place that makes every page run inside ``app.py`` (router, sidebar), with the reason it exists.

Streamlit registers every ``pages/*.py`` as a page of its legacy multipage mode as soon as a ``pages/`` folder sits
beside the entry script, and no setting turns that off with the folder kept (Streamlit 1.67: the folder name is fixed
in ``runtime/pages_manager.py``; ``client.showSidebarNavigation`` only hides the menu). Until some session of the
server has called ``st.navigation``, a browser that opens ``/attack`` directly, and every ``AppTest`` after
``switch_page``, runs that page file alone. So each page starts with :func:`require`: when ``app.py`` did not route
this script run, it runs ``app.py`` here (whose ``st.navigation`` selects this same page and runs it inside the
router), and this outer run stops. ``pages/`` keeps its name because the product card fixes the top level.
"""

from __future__ import annotations

import runpy

import streamlit as st

from explorer import resources

_ROUTED_RUN = "explorer.routed_run"  # app.py ran in this script run (consumed by the page)


def ready() -> None:
    """Called by ``app.py`` right after ``st.navigation``: marks this script run as routed."""
    st.session_state[_ROUTED_RUN] = True


def require() -> None:
    """First call of every page script: make sure ``app.py`` (router + sidebar) wraps it (see the module docstring)."""
    if st.session_state.pop(_ROUTED_RUN, False):
        return
    runpy.run_path(str(resources.app_script()), run_name="__main__")
    st.stop()


__all__ = ["ready", "require"]
