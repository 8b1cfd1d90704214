"""The messenger: how any mail leaves (transports, DKIM, header hygiene, single notices).

It sits below every stage and knows nothing of lists, issues or the database.
Bulk sending (delivery/) keeps its ledger and engine and hands bytes to these
transports; confirmations, answers to feedback and test proofs go through
`send_notice` / `deliver`.
"""

from bulletin.messenger.dkim import dkim_sign, load_dkim_key
from bulletin.messenger.headers import clean_header, domain_of, fold, format_address
from bulletin.messenger.maildir import MaildirTransport
from bulletin.messenger.notice import Notice, bounce_address, deliver, send_notice, simple_message
from bulletin.messenger.result import SendResult
from bulletin.messenger.smtp import SMTPConfig, SMTPPool
from bulletin.messenger.transport import Transport, make_transport

__all__ = [
    "MaildirTransport", "Notice", "SMTPConfig", "SMTPPool", "SendResult", "Transport", "bounce_address",
    "clean_header", "deliver", "dkim_sign", "domain_of", "fold", "format_address", "load_dkim_key",
    "make_transport", "send_notice", "simple_message",
]
