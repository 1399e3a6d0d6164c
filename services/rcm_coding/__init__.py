"""The coding service."""
