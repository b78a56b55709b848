"""What loading a configuration reports: each problem where a person can find it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in the configuration, where a person can find it."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path or '(document)'}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; ``issues`` lists the problems found.

    At most ``Limits.max_errors`` problems are listed, then one line saying how many more
    there are; ``total`` counts them all.
    """

    def __init__(
        self, issues: list[ConfigIssue], total: int | None = None, complete: bool = True
    ) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues
        self.total = len(issues) if total is None else total
        self.complete = complete  # False: checking stopped early, there may be more

    def summary(self) -> str:
        """``3 error(s) in the configuration`` (``at least``: checking stopped early)."""
        count = f"{self.total:,}" if self.complete else f"at least {self.total:,}"
        return f"{count} error(s) in the configuration"
