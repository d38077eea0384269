"""Motion Studio: turn one photo into short video variants, on a CPU or with open image-to-video models."""

__version__ = "0.1.0"
