"""Inbound stage: store raw mail, classify, match, and turn it into feedback, bounces and complaints.

`reading/` takes mail apart (no database below that line); `acting/` stores,
matches and acts. The front door below is what the shells may call.
"""

from __future__ import annotations

from typing import Any

from bulletin.inbound.acting.feedback import (
    FeedbackView,
    answer_feedback,
    export_csv,
    list_feedback,
    mark_feedback,
    show_feedback,
)
from bulletin.inbound.acting.pipeline import IngestResult, ingest, process, reprocess
from bulletin.inbound.acting.review import (
    CLASSES,
    InboundDetail,
    InboundSummary,
    list_inbound,
    show_inbound,
)
from bulletin.inbound.acting.sources import (
    SourceItem,
    imap_poll,
    ingest_items,
    maildir_items,
    mbox_items,
)
from bulletin.inbound.acting.unmatched import (
    UnmatchedMail,
    attach_inbound,
    attach_unmatched,
    list_unmatched,
    new_feedback_count,
)


def start_listener(*args: Any, **kwargs: Any) -> Any:
    """`acting.listener.start_listener`; imported on call so every CLI start does not load aiosmtpd."""
    from bulletin.inbound.acting.listener import start_listener as start

    return start(*args, **kwargs)


__all__ = [
    "CLASSES", "FeedbackView", "InboundDetail", "InboundSummary", "IngestResult", "SourceItem", "answer_feedback",
    "attach_inbound", "export_csv", "imap_poll", "ingest", "ingest_items", "list_feedback", "list_inbound",
    "maildir_items", "mark_feedback", "mbox_items", "process", "reprocess", "show_feedback", "show_inbound",
    "start_listener",
    "UnmatchedMail", "attach_unmatched", "list_unmatched", "new_feedback_count",
]
