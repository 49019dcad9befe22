"""Errors a user can act on: each names the file, the line or row, and what was expected."""

from __future__ import annotations

from pathlib import Path


class BurstlabError(Exception):
    """Base class: the CLI prints these as one clean line, without a traceback."""


class SchemaError(BurstlabError):
    """A table does not have the columns or types a stage expects."""


class InputError(BurstlabError):
    """Bad input data: names the file, the (1-based) line or row when known, and what was expected."""

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        line: int | None = None,
        expected: object | None = None,
        found: object | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = str(self.path) if self.path is not None else "<input>"
        if line is not None:
            where += f", line {line}"
        text = f"{where}: {message}"
        if expected is not None:
            text += f"; expected {expected}"
        if found is not None:
            text += f", found {found}"
        super().__init__(text)


class SpecError(BurstlabError):
    """A workload spec is malformed or of an unsupported version."""


class ReplayError(BurstlabError):
    """A replay could not start (bad target, bad options); faults during a run are data, not this."""
