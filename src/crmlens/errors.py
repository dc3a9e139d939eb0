"""Domain errors.

Every error a user can cause is a :class:`CrmlensError` carrying a catalogue key and the
parameters of its message, so the CLI, the API and the report render it in the user's language
and no caller ever shows a traceback for bad input.
"""

from __future__ import annotations

from typing import Any


class CrmlensError(Exception):
    """A problem the user can fix: bad input, a wrong option, an unusable workspace.

    Parameters
    ----------
    key : str
        Catalogue key of the message (``error.<something>``); its text names the file, row or
        column at fault and says what to do.
    **params
        Values substituted into the message.
    """

    exit_code = 2

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(key)

    def message(self, lang: str | None = None) -> str:
        """The message in ``lang`` (default: the current language)."""
        from crmlens.i18n import t

        return t(self.key, lang=lang, **self.params)

    def __str__(self) -> str:
        return self.message()


class InputError(CrmlensError):
    """The input data or a command-line option cannot be used."""

    exit_code = 2


class WorkspaceError(CrmlensError):
    """The workspace cannot be opened or written."""

    exit_code = 3
