"""TLS negotiation between our senders and remote hosts."""

from sim.tls.negotiation import Channel, Negotiation, negotiate

__all__ = ["Channel", "Negotiation", "negotiate"]
