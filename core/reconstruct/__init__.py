"""DDFV's face-reconstruction module (paper 002): network, files, training."""
