"""The path-planning problem's agents (``optgym/PathPlanning2D-v0`` and its closed-loop twin)."""
