"""The payer simulator service."""
