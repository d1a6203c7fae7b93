"""The data-selection problem's agents (``optgym/DataSelection-v0``) and the influence
functions they use."""
