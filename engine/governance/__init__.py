"""Governance (issue 18): playbook versions, maker-checker approval, publish, rollback, pause,
and the gate that lets only the live approved version of each playbook run.

Service functions take ``(store, settings, actor)`` so the CLI (``runner.py playbook …``) and
the console call the same code. See docs/governance.md.
"""
