"""Scoring label maps against annotations (Qt-free; numpy and scipy only)."""

from .accuracy import MatchResult, hungarian_accuracy, hungarian_match
from .contingency import contingency

__all__ = ["MatchResult", "contingency", "hungarian_accuracy", "hungarian_match"]
