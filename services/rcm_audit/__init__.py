"""The audit service: keeps the audit trail of every service and answers auditors."""
