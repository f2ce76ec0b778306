"""The detector: a pure core (``detector.core``) and the Kafka runner around it."""
