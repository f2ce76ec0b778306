"""The bottom floor: settings, database engine and migrations, Kafka helpers, logging, retry.

Every room (ingest, detector, api, the command line) may import from here; nothing here
imports a room. Only ``retry`` lives here yet: the layout redesign (issue 19) moves the rest
of the floor in from ``lapse/``.
"""
