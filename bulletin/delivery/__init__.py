"""Delivery: per-recipient messages, transports (Maildir outbox, SMTP pool), the ledger, the send engine."""
