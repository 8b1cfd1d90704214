"""Audience stage: lists, subscribers, subscriptions, the consent log, import/export, signed tokens."""
