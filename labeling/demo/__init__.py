"""The demo workspace and its text generator."""
