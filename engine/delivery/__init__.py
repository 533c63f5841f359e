"""After a run: the dispatcher that delivers the outbox, and the managers' task list."""
