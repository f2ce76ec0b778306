"""The durable records every service shares: the tables and their migrations, and the
repositories more than one service uses (API keys, the member directory and profiles, erasure,
the outbox, sealed secrets). Imports plumbing and schemas only."""
