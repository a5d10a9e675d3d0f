"""GIR, the Generative Image Rectifier: find blur, tell its kind, remove it with a cGAN."""

__version__ = "0.1.0"
