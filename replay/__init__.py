"""burstlab.replay stage."""
