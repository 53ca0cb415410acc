"""Property checks shipped with transferkit, run by its tests over every registered method."""
