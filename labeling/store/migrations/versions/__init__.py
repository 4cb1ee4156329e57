"""Revision scripts of the labelloop store, oldest first (0001 is the first schema)."""
