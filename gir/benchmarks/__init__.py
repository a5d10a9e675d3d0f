"""Benchmarks behind `gir bench`: generator cost and quality, tiled-inference memory."""
