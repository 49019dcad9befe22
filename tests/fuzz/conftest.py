"""Generated bad-input suite (hypothesis). `make test` runs a bounded number of cases per entry
point (the "ci" profile); `make fuzz` runs the "fuzz" profile (≥ 5,000 cases per entry point)
and prints how many cases each entry point ran and how they ended."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from fuzz.checks import TALLY

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=False,
)
settings.register_profile("ci", max_examples=30, **_COMMON)
settings.register_profile("fuzz", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("BURSTLAB_FUZZ", "ci"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TALLY:
        return
    terminalreporter.write_sep("-", "generated cases per entry point")
    for entry, counts in sorted(TALLY.items()):
        total = sum(counts.values())
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(f"{entry}: {total} cases ({parts})")
