"""Annotation: the queue and its leases, people and tokens, the per-person role-checked session."""
