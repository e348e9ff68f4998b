"""Teaching mode, "Guided path": one card per robustness page (what it asks, what the papers reported, what README
states we measured) with a button that opens the page with the step's settings.

A button's callback writes the step's values into the target page's widget keys (callbacks run before widgets are
created, so they may) and leaves the page to open in :data:`GOTO`; ``pages/home.py`` pops it at the top of its
next run and calls ``st.switch_page`` (which cannot be called from a callback), as the Study page does.
"""

from __future__ import annotations

import streamlit as st

from explorer.teaching.path import STEPS, Step, readme_passage

GOTO = "home.goto"


def open_step(step: Step) -> None:
    """Button callback: the step's sidebar and page settings into session state, and the page to open."""
    for key, value in {**step.sidebar, **step.settings}.items():
        st.session_state[key] = value
    st.session_state[GOTO] = step.page


def switch_if_asked() -> None:
    """At the top of the Home page: open the page a guided-path button asked for (if any)."""
    goto = st.session_state.pop(GOTO, None)
    if goto:
        st.switch_page(goto)


def render() -> None:
    st.markdown("The robustness experiments of the two papers, in order. Each card says what the experiment asks, "
                "what **the papers** reported, and what the README of this explorer states **we measured** on the "
                "embedded samples; the button opens the page with settings that run in reasonable time on a CPU.")
    for number, step in enumerate(STEPS, start=1):
        with st.container(border=True):
            st.markdown(f"**{number} · {step.title}**: {step.question}")
            st.markdown(f"*The papers' finding*. {step.paper}")
            passages = [p for p in (readme_passage(h, phrase) for h, phrase in step.readme) if p]
            if passages:
                with st.expander("What README.md states we measured", icon=":material/science:"):
                    for passage in passages:
                        st.markdown(passage)
            elif step.readme:
                st.caption("README.md has no passage on this yet.")
            slug = step.page.removeprefix("pages/").removesuffix(".py")
            st.button(f"Open {step.title}", key=f"home.path.{slug}", icon=":material/open_in_new:",
                      on_click=open_step, args=(step,), help=step.note)
            st.caption(step.note)
