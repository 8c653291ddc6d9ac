"""Importers: real configurations and mail logs -> the same YAML files a user would write."""
