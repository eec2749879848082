"""The one exception the rule language raises."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule that cannot be compiled or evaluated.

    ``message`` is the human-readable reason (shown as is in the admin and the API),
    ``position`` the 0-based character offset in the rule's source when known.
    """

    def __init__(self, message: str, position: int | None = None):
        self.message = message
        self.position = position
        super().__init__(message, position)

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        return f"{self.message} (at position {self.position})"

    def __repr__(self) -> str:
        return f"RuleError({self.message!r}, position={self.position!r})"
