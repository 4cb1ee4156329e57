"""Weak supervision in the workspace: the glue between the store and ``weak_supervision``."""
