"""Figures and the written report of a study."""
