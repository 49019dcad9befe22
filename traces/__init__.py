"""burstlab.traces stage."""
