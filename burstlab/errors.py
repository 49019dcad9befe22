"""One error tree for the whole package: a user can catch `BurstlabError` and act on the rest.

    BurstlabError
    ├── InputError     bad input data: names the file, the line or row, the field, expected/found
    │   └── SchemaError   a table lacks the columns or types a stage expects
    ├── SpecError      a workload spec document is malformed or of an unsupported version
    ├── UsageError     a bad parameter (also a ValueError): names the parameter, not a CLI flag
    │   └── MissingExtraError   an optional dependency is not installed: names the extra
    ├── FitError       the data cannot carry the model asked for
    ├── ReplayError    a replay cannot start (unreachable target, empty schedule, …)
    └── EngineError    a local engine cannot start or serve

Faults during a replay run are data (per-request records), never exceptions. The CLI prints
every BurstlabError as one line and exits 2 for a UsageError, 1 for the rest.
"""

from __future__ import annotations

from pathlib import Path


class BurstlabError(Exception):
    """Base class: the CLI prints these as one clean line, without a traceback."""


class InputError(BurstlabError):
    """Bad input data: names the file, the (1-based) line or row when known, the field, and what
    was expected and found. `path` may be None only for in-memory data (then `field` names what
    is wrong, e.g. the column)."""

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        expected: object | None = None,
        found: object | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.line = line
        self.field = field
        self.expected = expected
        self.found = found
        parts = []
        if self.path is not None:
            parts.append(str(self.path))
        if line is not None:
            parts.append(f"line {line}")
        if field is not None:
            parts.append(field)
        text = f"{', '.join(parts)}: {message}" if parts else message
        if expected is not None:
            text += f"; expected {expected}"
        if found is not None:
            text += f", found {found}"
        super().__init__(text)


class SchemaError(InputError):
    """A table does not have the columns or types a stage expects."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(path, message)


class SpecError(BurstlabError):
    """A workload spec document is malformed or of an unsupported version (names the field)."""


class UsageError(BurstlabError, ValueError):
    """A parameter has a value the function cannot use. `param` is the parameter's Python name
    (``max_input_tokens``); the CLI shows it as the option it came from (``--max-input-tokens``),
    so library messages never name CLI flags themselves."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        self.message = message
        super().__init__(f"{param}: {message}" if param else message)


class MissingExtraError(UsageError):
    """An optional dependency is missing; says which extra installs it."""

    def __init__(self, extra: str, module: str, purpose: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"{purpose} needs the optional package {module!r}: pip install 'burstlab[{extra}]'"
        )


class FitError(BurstlabError):
    """The data cannot carry the model asked for (too few rows, no variation, …)."""


class ReplayError(BurstlabError):
    """A replay could not start (bad target, empty schedule); faults during a run are data."""


class EngineError(BurstlabError):
    """A local engine could not start or serve (port taken, process died, not healthy)."""
