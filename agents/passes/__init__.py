"""The pass-ordering problem's agents (``optgym/PassOrdering-v0``)."""
