"""Weak supervision: labelling functions, appliers, label models and LF analysis.

This package knows nothing of the database; ``labeling`` stores and serves what it computes.
The LF decorator, appliers and label models land with the weak-supervision work.
"""
