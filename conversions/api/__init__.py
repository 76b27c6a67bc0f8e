"""The JSON API under ``/api/v1/``: thin endpoints over the same forms, model methods and permission rules
as the pages (``site`` builds it; one router module per resource; ``schemas`` is what goes in and out).

Every request carries ``Authorization: Bearer <token>`` (``auth``); errors are ``{"error", "field"}``
(``errors``), with ``field`` the new-run, checkpoint or dataset form's field name.
"""
