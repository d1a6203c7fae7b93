"""The surrogate-optimization problem's agents (``optgym/SurrogateOptimization-v0``): baselines
(:mod:`~optgym.agents.surco.baselines`) and SurCo-zero (:mod:`~optgym.agents.surco.surco`),
on the shared cost search of :mod:`~optgym.agents.surco.search`."""
