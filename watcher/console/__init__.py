"""The review console: server-rendered pages where officers and compliance work through alerts and history.

``watcher serve`` runs it on its own; ``watcher run`` also starts it when ``[console] enabled = true``.
"""
