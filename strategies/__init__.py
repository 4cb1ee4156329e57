"""Query strategies: pure functions from model outputs to the items worth labelling next.

The registry and the modAL-based strategies land with the active-learning loop; until a model
exists the queue serves items in a seeded random order (see ``labeling.queue``).
"""
