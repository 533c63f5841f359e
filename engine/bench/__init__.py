"""The benchmark: the engine's figures measured side by side with their physical baselines.

Each section times one part of the engine against the cheapest way the same work can be done
without it (one scan of the tables, the hand-written query, plain Jinja, a bare bulk insert,
posting straight to the gateway, raw durable-rules), so a ratio says how much the engine
costs over the floor, whatever the machine. :mod:`engine.bench.run` drives one measuring
child process per store size and backend (its peak RSS is the run's memory) and
:mod:`engine.bench.report` prints and saves the figures.
"""
