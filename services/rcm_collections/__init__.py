"""The collections service."""
