"""What the REST API and the Celery entry points both do: accepting a send
(``accepting``), checking API keys (``keys``) and validating a send's body
(``requests``). Imports ``models``, ``messaging`` and ``settings``, never ``api`` or
``workers``.
"""
