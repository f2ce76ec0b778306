"""Shared plumbing for Lapse: settings, database, Kafka helpers, logging, metrics, the CLI.

Kept small on purpose; the services live in the top-level packages
``ingest``, ``detector`` and ``api``, the contracts in ``schemas``.
"""

__version__ = "0.1.0"
