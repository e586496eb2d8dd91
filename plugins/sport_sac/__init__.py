"""Soft actor-critic for sport: prioritized replay, a level curriculum, exact resume (plugin ``sac``)."""
