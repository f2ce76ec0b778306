"""The bottom floor: settings, the database engine, Kafka helpers, the local broker, logging,
retry, HTTP problem details and health. Imports no room of Lapse; every room may import it."""

__version__ = "0.1.0"  # the source tree's version when Lapse is not installed (pyproject.toml)
