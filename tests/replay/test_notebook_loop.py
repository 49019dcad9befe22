"""replay() called where an event loop already runs in the thread, as in a Jupyter cell."""

from __future__ import annotations

import asyncio

from test_faults import config, requests_frame

from burstlab.replay.run import replay


def test_replay_runs_inside_a_running_event_loop(instant_server, tmp_path):
    server = instant_server()

    async def notebook_cell():
        # a notebook cell runs inside the kernel's loop; replay() is synchronous
        return replay(
            requests_frame(20, output_tokens=5), config(server.base_url), tmp_path / "run"
        )

    result = asyncio.run(notebook_cell())
    counts = result.metrics["counts"]
    assert counts["completed"] == 20 and counts["failed"] == 0
    assert result.metrics["total_output_tokens"] == 100
