"""User-facing errors.

Every bad input that a user can cause (a malformed file, an out-of-range slice, an
unknown method, ...) raises :class:`ExplorerError` with a one-line message. The CLI
prints it as ``error: <message>`` and exits with status 2; the app shows it with
``st.error``. Anything else escaping the library is a bug.
"""


class ExplorerError(ValueError):
    """A clear, one-line, user-facing error about bad input."""
