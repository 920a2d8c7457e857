"""The one error type whose message is meant for a visitor.

Services raise `UserError` for anything a visitor can fix or should know (bad input, a full
queue, a model the app does not offer). The UI shows those messages verbatim and anything else
(an internal ValueError from torch or numpy included) as a short generic message, logged in full.
`UserError` subclasses ValueError so argument checks keep their usual meaning for callers.
"""

from __future__ import annotations


class UserError(ValueError):
    """A message meant for the visitor, safe to show as it is."""
