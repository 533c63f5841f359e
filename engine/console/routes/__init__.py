"""The console's routes, one module per area; each route names the permission it needs."""

from __future__ import annotations

from engine.console.guard import RouteSpec
from engine.console.routes import (
    audit,
    login,
    operations,
    playbooks,
    reports,
    tasks,
    texts,
    users,
    versions,
)

ROUTES: list[RouteSpec] = [
    *login.ROUTES,
    *playbooks.ROUTES,
    *texts.ROUTES,
    *tasks.ROUTES,
    *reports.ROUTES,
    *operations.ROUTES,
    *users.ROUTES,
    *audit.ROUTES,
    *versions.ROUTES,
]
