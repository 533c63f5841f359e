"""Audience conditions: the tree, its parser, the SQL compiler and the Python reference."""
