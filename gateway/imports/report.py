"""The answer to an import: counts, the bad rows with their problems, and what became of the
file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Bad rows reported one by one; beyond this only counted (a wrong file can have 100,000).
MAX_ERRORS = 1000
FILE_NOTE = (
    "The upload was parsed in memory as it arrived: it was never written to disk, never "
    "logged, and nothing of it is kept but the rows imported."
)


@dataclass(frozen=True)
class RowError:
    """One bad row: its number (the header is row 1), the column at fault, the problem."""

    row: int
    column: str
    problem: str


@dataclass
class ImportReport:
    """What an import did."""

    kind: str
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def reject(self, row: int, column: str, problem: str) -> None:
        """Count a bad row, and keep its problem while there is room."""
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row, column, problem))

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer."""
        return {
            "kind": self.kind,
            "rows": self.rows,
            "imported": self.imported,
            "already_present": self.already_present,
            "rejected": self.rejected,
            "errors": [e.__dict__ for e in self.errors],
            "errors_truncated": self.rejected > len(self.errors),
            "ignored_columns": self.ignored_columns,
            "file": {"written_to_disk": False, "logged": False, "kept": False, "note": FILE_NOTE},
        }
