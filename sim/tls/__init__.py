"""TLS negotiation between senders and receivers."""
