"""Run the benchmark from a script: ``python bench/run.py [--customers N] [--db URL] …``.

The same as ``python runner.py bench …`` (see ``engine/bench/``); the former
``benchmarks/dispatch_throughput.py`` is now its dispatch section.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the deployment folder: playbooks/, templates/, config/

from engine.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
