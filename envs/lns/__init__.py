"""Large Neighborhood Search for integer programs (``optgym/ILPNeighborhood-v0``): DESIGN 2.3."""
