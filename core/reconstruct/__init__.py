"""DDFV's face-reconstruction module (Xu et al. 2023): network, files, training."""
