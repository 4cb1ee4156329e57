"""Retraining rounds: features, learner, the round pipeline, scores, promotion, predictions,
the background worker and ``simulate``."""
