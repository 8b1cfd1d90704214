"""Inbound mail: store raw, classify, match, and turn it into feedback, bounces and complaints."""

from __future__ import annotations

from bulletin.inbound.acting.pipeline import IngestResult, ingest, process, reprocess

__all__ = ["IngestResult", "ingest", "process", "reprocess"]
