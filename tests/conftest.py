"""Shared fixtures: the local page server (a stand-in for the watched websites) and the alert sinks."""

pytest_plugins = [
    "support.pageserver",
    "support.sinks",
    "support.postgres",
    "support.daemon",
    "support.wayback",
]
