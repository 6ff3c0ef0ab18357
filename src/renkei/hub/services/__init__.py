"""What the faces (the web portal, its JSON API and the CLI) call: one function per thing a user does.

Each function takes the :class:`~renkei.hub.home.Hub`, the :class:`~renkei.hub.access.authz.Actor` who asks
and a clock; it opens its own database session, asks ``authorize()`` (directly, or through the workflow
functions of :mod:`renkei.hub.access.applications` and :mod:`~renkei.hub.access.grants`, which call it
themselves), runs the queries and returns read models: frozen dataclasses holding plain values, never ORM
objects, so a face can render them after the session is closed. A face parses its input, calls one of these
functions and renders the result; it shows only the fields it chooses (the web's views leave out row counts).

- :mod:`.catalog`: datasets, their snapshots and columns;
- :mod:`.applications`: data-use applications, their parts, the review queue and every move of the workflow;
- :mod:`.grants`: grants, their revocation, and folder access lists.
- :mod:`.admin`: the operators' changes (departments, users, cards, terminals, senders, imports), each decided
  as ``admin.users``, ``admin.terminals`` or ``admin.catalog`` before it changes anything.

Lists of objects a user owns (own applications, own grants, the review queue) are filtered object by object
through the choke point (:func:`.decisions.permitted`), so nothing is shown that a direct request would
refuse; the decisions of one list are recorded as one ``authz.decision`` entry naming every object covered. Lists for the hub's operators (``renkei application list``) are one decision on the
resource type. A decision refused because the object does not exist raises :class:`.decisions.NotFoundError`.

The functions block (database, argon2): the web runs them in threads.
"""
