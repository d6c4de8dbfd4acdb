"""Words for people: counts with the right plural ("1 team", "2 warnings")."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`plural(1, "team")` is "1 team", `plural(2, "team")` "2 teams"; `many` for irregular plurals."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
