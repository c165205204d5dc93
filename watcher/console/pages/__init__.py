"""The console's pages and actions, one module per area; ``watcher.console.app`` routes to them.

Handlers only read through :mod:`watcher.console.queries`, which scopes every query to the
borrowers the user may see; state changes go through :mod:`watcher.alerts`, as the CLI's do.
"""
