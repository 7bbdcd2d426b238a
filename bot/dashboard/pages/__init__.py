"""The dashboard's pages, one module per part of the work; each gives ``routes(dash)``."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bot.dashboard.web import Dashboard


def all_routes(dash: Dashboard) -> list[BaseRoute]:
    from bot.dashboard.pages import audit, campaigns, cases, export, indicators, reports, trends

    found: list[BaseRoute] = []
    for module in (reports, indicators, campaigns, trends, cases, export, audit):
        found.extend(module.routes(dash))
    return found
