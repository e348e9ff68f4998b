"""Reader studies: build a blinded reading session, add readers (each one's personal link), follow their progress
and read the analysis (ratings, 2AFC preference, detection ROC, agreement, and whether the metrics predict what the
readers see), with downloads.

Thin page: explorer.readers (sessions, readers, analysis) via explorer.ui.reader_studies; readers read on the Reading
page (explorer.ui.reading).
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import streamlit as st

from explorer.ui import reader_studies

st.title("Reader studies")
st.caption("Radiologists judge reconstructions by reading them. Build a blinded session from a study's "
           "reconstructions (or the demonstration), send each reader their personal link, and see whether the "
           "metrics predict what the readers see. Readers read on the **Reading** page: they never see method names, "
           "conditions, metrics or each other's answers. The command line does the same: `python -m explorer "
           "readers --help`.")
reader_studies.render()
