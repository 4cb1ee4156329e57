"""Retraining rounds: the round as a pipeline of stages (pipeline), queued and watched as a job
(jobs), reading the pool (pool), features and learner, training set (training), evaluation,
queue scores (scores), the round folder (artifacts, predictions), promotion, the background
worker and ``simulate`` (simulate, learning_curves)."""
