"""MRI robustness explorer: Streamlit entry point (router + shared sidebar, nothing else).

Run: ``streamlit run app.py [-- --data-dir DIR]``.

Pages call ``state.require_router()`` first: Streamlit may run a ``pages/*.py`` file on its
own (legacy ``pages/`` folder handling), and then the page runs this router around itself.
"""

import streamlit as st

from explorer.ui import state, warmup

st.set_page_config(page_title="MRI robustness explorer", page_icon=":material/neurology:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/reconstruct.py", title="Reconstruct", icon=":material/tune:"),
    st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
]
page = st.navigation(pages)
state.router_ready()
warmup.preload_charts()
state.sidebar_source()
page.run()
