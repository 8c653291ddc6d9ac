"""Certificates for real: authorities, issuance, files, and X.509 path validation."""
