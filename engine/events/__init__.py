"""Event playbooks: events in (JSONL, HTTP), durable-rules matching, windows, actions out.

Modules, in the order an event travels through them:

- ``catalog``: the event types and their fields (the documented event schema).
- ``model``: one raw event checked and typed, or rejected with a reason.
- ``trigger`` / ``parse``: the ``trigger: {event: …}`` language, typed and validated.
- ``rules``: compilation to durable-rules JSON rulesets and the host we own.
- ``windows``: counts, sequences and absence within a time window, per customer.
- ``store``: the engine's event tables (dedup by id, matches, rejections).
- ``processor``: the entry point the CLI and the daemon use.
- ``acting``: matches acted on through the shared executor, a batch at a time.
- ``ingest`` / ``server``: JSONL files and the HTTP endpoint.
- ``cursor`` / ``host``: the daemon's processing cursor and lease, and the loop that hosts
  event playbooks in the daemon.
- ``schema``: JSON Schema pieces (the trigger in the playbook schema; the event format).
- ``bench``: throughput against raw durable-rules, for the benchmark.

This package imports nothing at its top level, so the playbook model can use ``trigger``
without pulling in the rules engine.
"""
