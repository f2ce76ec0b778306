"""The edge: member events in over HTTP, authenticated, validated and acknowledged by Kafka.

``ingest.app.create_app(settings)`` builds the HTTP service.
"""
