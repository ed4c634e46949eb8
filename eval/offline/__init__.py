"""Offline evaluation: benchmark items, systems side by side, a judge, one report."""
