"""The bottom floor: settings, the database engine, Kafka helpers, the local broker, logging,
retry, HTTP problem details and health. Imports no room of Lapse; every room may import it."""
