"""Unit tests of the ops tools (timeline, dead letters, benchmark analysis)."""
