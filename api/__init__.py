"""The api service: alerts, webhook subscriptions and signed, durable webhook delivery."""
