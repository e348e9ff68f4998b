"""Reading: a reader opens a blinded reading session with a personal link or code and reads one case at a time.

Thin page: the session, the case and the answers go through explorer.readers.reading via explorer.ui.reading.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

from explorer.ui import reading

reading.render()
