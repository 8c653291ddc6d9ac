"""MTA profiles: per-product defaults for routing, retry, expiry and status codes."""

from sim.mta.profiles import PROFILES, MtaProfile, RetrySchedule, get_profile

__all__ = ["PROFILES", "MtaProfile", "RetrySchedule", "get_profile"]
