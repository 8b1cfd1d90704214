"""An issue's figures split by the segment that chose each recipient.

The ledger row of each recipient names the segment that queued it (None for a
send to a whole list), and every response joins back to that row by
(issue, subscriber), so the split is as recomputable as the totals. Rows and
states per segment come from the ledger's running counts (delivery.counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bulletin.delivery import readout
from bulletin.sqlread import Reader

WHOLE_LIST = "(whole list)"


@dataclass(frozen=True)
class SegmentFigures:
    """Recipients and responses of the people one segment chose."""

    segment: str
    recipients: int
    sent: int
    failed: int
    bounced: int
    unsubscribes: int
    replies: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def figures_by_segment(reader: Reader, issue_id: int) -> tuple[SegmentFigures, ...]:
    """One row per segment that chose anyone for this issue; empty when no send used a segment."""
    states = readout.segment_states(reader, issue_id)  # running counts: no pass over the ledger
    if all(s.segment is None for s in states):
        return ()

    def by_segment(what: str, table: str, where: str = "", **params: object) -> dict[str | None, int]:
        return {seg: int(n) for seg, n in reader.rows(
            f"SELECT d.segment, {what} FROM {table} t JOIN delivery d ON d.subscriber_id = t.subscriber_id "
            f"AND d.issue_id = :issue WHERE t.issue_id = :issue{where} GROUP BY d.segment",
            issue=issue_id, **params)}

    bounced = by_segment("count(DISTINCT t.subscriber_id)", "bounce")
    unsubscribed = by_segment("count(DISTINCT t.subscriber_id)", "subscriber_event", " AND t.kind = :kind",
                              kind="unsubscribe")
    replies = by_segment("count(t.id)", "feedback")
    rows = [SegmentFigures(s.segment or WHOLE_LIST, s.rows, s.sent, s.failed, bounced.get(s.segment, 0),
                           unsubscribed.get(s.segment, 0), replies.get(s.segment, 0)) for s in states]
    return tuple(sorted(rows, key=lambda r: (r.segment == WHOLE_LIST, r.segment)))
