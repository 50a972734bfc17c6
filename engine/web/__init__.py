"""The web app of dealerdocs (``dealerdocs serve``): pages for the store's staff and a JSON API.

Everything here calls the :class:`engine.Engine` API; the rules (roles, separation of duties,
required fields, checks) are the engine's, so a page can do nothing the command line refuses.
Import :func:`engine.web.app.create_app` to build the ASGI app.
"""
