"""The integration API (``/api/v1/``): the loan system's HTTP way in, beside the review console.

:mod:`~watcher.api.app` builds the FastAPI app the console mounts; :mod:`~watcher.api.common` holds
what every endpoint shares; :mod:`~watcher.api.tokens` the tokens (no FastAPI: the CLI uses it);
:mod:`~watcher.api.docs` the rendered docs. Nothing here is imported at CLI start-up.

Adding a resource group (e.g. ``alerts``):

1. ``watcher/api/alerts.py`` with ``router = APIRouter(tags=["alerts"])`` and typed pydantic models
   for what goes out; request bodies subclass ``common.ApiModel`` (unknown fields: 422).
2. Each route takes ``who: Reader`` (read) or ``who: Writer`` (write; 403 for a read token) and
   ``api: Deployment``, declares ``responses=ERRORS`` (``WRITE_ERRORS`` with a body), is a plain
   ``def`` (FastAPI runs it in a worker thread: the database calls block), reads through
   ``watcher.visibility.scoped(query, who)`` so an officer's token sees only that officer's parties,
   and pages with ``page: PageQuery`` returning ``Page[Item]``.
3. Writes go through the modules the CLI and console use (``watcher.alerts``, ``watcher.lifecycle``,
   ``watcher.importer``) with ``actor=who.actor``, or record :func:`common.audit_write`, inside
   ``api.store.transaction()``.
4. Add the router to ``app.RESOURCES``; the OpenAPI document and the docs pick it up.
"""
