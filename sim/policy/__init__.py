"""Transport policies as decision tables: MTA-STS, DANE, REQUIRETLS (reference modern-policies.md)."""
