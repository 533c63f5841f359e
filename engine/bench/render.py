"""Section 3: rendering through the engine's sandboxed environment (strict undefined, the
filters, error mapping) against plain Jinja rendering the same template sources, with the
same filters, for the same customers (each playbook's own audience). Both must produce the
same texts."""

from __future__ import annotations

from typing import Any

import jinja2

from engine.bench.figures import cpu_ratio, ratio, repeat
from engine.bench.lab import Lab
from engine.execution.executor import BATCH_SIZE
from engine.rendering.renderer import FILTERS, template_context

SAMPLE = 2000
"""Customers per playbook whose texts are rendered (the audience's first ones)."""


def _measured(lab: Lab) -> list[Any]:
    """The scheduled playbooks whose templates see the customer alone: ``context:`` rows and
    events are read by other queries, which sections 1 and 6 time."""
    return [p for p in lab.scheduled if not p.context]


def _templates(playbook: Any, lab: Lab) -> list[tuple[jinja2.Template, str]]:
    """(engine template, its source) for every template of one playbook."""
    found = []
    for action in playbook.actions:
        for value in vars(action).values():
            if isinstance(value, jinja2.Template):
                source = lab.renderer.source(value)
                if source is not None:
                    found.append((value, source))
    return found


def _contexts(playbook: Any, lab: Lab) -> list[dict[str, Any]]:
    """Template variables of the playbook's first ``SAMPLE`` audience customers."""
    executor = lab.executor()
    contexts = []
    clock = lab.clock(playbook)
    query = executor.audience_query(playbook, clock).limit(SAMPLE)
    with lab.store.connect() as conn:
        for batch in executor.batches(conn, query, BATCH_SIZE):
            batch.tags = executor.tags(conn, batch.ids, executor.reads(playbook)[1])
            for index in range(len(batch.rows)):
                values = batch.values(index)
                contexts.append(
                    template_context(
                        values,
                        playbook_id=playbook.id,
                        playbook_title=playbook.title,
                        bank_name=lab.settings.bank_name,
                        now=clock.now,
                    )
                )
    return contexts


def measure(lab: Lab, repeats: int) -> dict[str, Any]:
    work = [(_templates(p, lab), _contexts(p, lab)) for p in _measured(lab)]
    pairs = [pair for templates, _ in work for pair in templates]
    plain_env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(lab.settings.templates_dir)),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    plain_env.filters.update(FILTERS)
    plain_env.filters["label"] = lab.renderer._label
    jobs = [
        ([t for t, _ in templates], [plain_env.from_string(src) for _, src in templates], contexts)
        for templates, contexts in work
    ]

    def engine_side() -> list[str]:
        render = lab.renderer.render
        return [render(t, c) for sandboxed, _, cs in jobs for c in cs for t in sandboxed]

    def plain_side() -> list[str]:
        return [t.render(c).strip() for _, plain, cs in jobs for c in cs for t in plain]

    engine, texts = repeat(engine_side, repeats)
    base, plain_texts = repeat(plain_side, repeats)
    return {
        "templates": len(pairs),
        "customers": sum(len(contexts) for _, contexts in work),
        "renders": len(texts),
        "engine": engine.as_dict(),
        "plain": base.as_dict(),
        "ratio": ratio(engine, base),
        "cpu_ratio": cpu_ratio(engine, base),
        "same_texts": texts == plain_texts,
        "target_ratio": 1.5,
    }
