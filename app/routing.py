"""URL rules that can say "no HEAD": a route that releases data answers GET only.

Werkzeug adds HEAD to every GET rule, and Flask answers HEAD by running the GET view and dropping the body.
For a route that unseals, counts and audits (a label), that would be a release nobody receives: the reissue
count and the audit chain would record a label that never left. Such a route is declared with
``head=False``; a HEAD request then gets routing's own 405 with ``Allow: GET, OPTIONS``, after the gates
(allowlist, rate limit) and before any view: nothing is unsealed, counted or audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.routing import Rule as WerkzeugRule


class Rule(WerkzeugRule):
    """A werkzeug rule with one more option, ``head``: ``False`` leaves HEAD out of a GET rule's methods."""

    def __init__(self, string: str, *args: Any, head: bool = True, **options: Any) -> None:
        super().__init__(string, *args, **options)
        self.head = head
        if not head and self.methods is not None:
            self.methods.discard("HEAD")

    def get_empty_kwargs(self) -> Mapping[str, Any]:
        return {**super().get_empty_kwargs(), "head": self.head}
