"""burstlab.fitting stage."""
