"""MRI robustness explorer: Streamlit entry point (router + shared sidebar, nothing else).

Run: ``streamlit run app.py [-- --data-dir DIR]``.

This one file plays two roles:

* imported as a module (``streamlit run`` imports it to find ``app``, an ``st.App``): it
  declares the server, whose start-up hook preloads torch and the sample before any browser
  connects (:mod:`explorer.ui.startup`);
* run as ``__main__`` (every script run of every session, and ``AppTest``): the router.

Pages call ``router.require()`` first: Streamlit may run a ``pages/*.py`` file on its own (legacy ``pages/`` folder
handling), and then the page runs this router around itself (:mod:`explorer.ui.router` says why).
"""

import streamlit as st

if __name__ != "__main__":
    from explorer.ui.startup import lifespan

    app = st.App(__file__, lifespan=lifespan)
else:
    from explorer import resources
    from explorer.robustness.registry import experiments
    from explorer.ui import router, sidebar, startup, warmup

    # A local favicon (an emoji drawn by the browser if the file is missing): a ":material/...:" page icon, or none
    # (then the browser takes the current page's material icon), makes the browser fetch it from fonts.gstatic.com.
    icon = resources.root() / "assets" / "favicon.png"
    st.set_page_config(page_title="MRI robustness explorer", page_icon=str(icon) if icon.is_file() else "🧠",
                       layout="wide")
    # The browser loads plotly.js (about a second) while the server finishes its start-up preload.
    startup.wait(charts_only=True)
    warmup.preload_charts()
    startup.wait()

    pages = [  # every registered experiment's page between Home and the study pages
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        *[st.Page(e.page.path, title=e.page.title, icon=e.page.icon) for e in experiments() if e.page is not None],
        st.Page("pages/lesion.py", title="Lesions", icon=":material/search_insights:"),
        st.Page("pages/study.py", title="Study", icon=":material/query_stats:"),
        st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
        st.Page("pages/readers.py", title="Reader studies", icon=":material/groups:"),
        st.Page("pages/reading.py", title="Reading", icon=":material/visibility:"),
    ]
    page = st.navigation(pages)
    router.ready()
    sidebar.render()
    page.run()
