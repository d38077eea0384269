"""The embedded motion engine's parts: camera paths, scene building, layered warping, ambient effects."""
