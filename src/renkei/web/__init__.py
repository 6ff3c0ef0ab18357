"""The hub's web face: a JSON API (``/api/v1``) and server-rendered pages, for designated users at terminals.

Layout: :mod:`app` (factory), :mod:`settings`, :mod:`terminal` (client certificate and address),
:mod:`context` (route guards: terminal, session, CSRF), :mod:`security` (headers, limits, CSRF, last-resort
errors), :mod:`errors` (the one error shape), :mod:`portal` (what the routes do, through ``authorize()``),
:mod:`api`, :mod:`pages`, :mod:`server` (uvicorn, TLS). See docs/web.md.
"""
