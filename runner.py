"""Entry point kept at the top level as the client asked: ``python runner.py COMMAND``."""

from __future__ import annotations

from engine.cli import main

if __name__ == "__main__":
    main()
