"""MTA profiles: per-product defaults for routing, retry, expiry and status codes."""
