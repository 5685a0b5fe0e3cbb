"""mudiff: which training samples are hard to unlearn, why, and what to do about it."""

__version__ = "0.1.0"
