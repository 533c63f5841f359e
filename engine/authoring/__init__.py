"""Tools for playbook authors that run the engine: playbook unit tests."""
