"""Shootout: photos x presets x backends on shared seeds, scored into one report."""
