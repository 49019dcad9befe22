"""burstlab.synth stage."""
