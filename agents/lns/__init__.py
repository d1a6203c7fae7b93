"""The LNS problem's agents (``optgym/ILPNeighborhood-v0``): heuristics, local branching,
the loop they share and the graph policy."""
