"""Free-text bounces of older and less common mail servers, written here in each family's own shape.

Every message below is made up for this test (addresses, hosts and wording
follow what each server family prints, not any one real message). Each case
says who failed and whether the server gave up (permanent) or will retry.
"""

from __future__ import annotations

import pytest

from bulletin.audience.links import Links
from bulletin.config import load_settings
from bulletin.inbound.reading.addresses import read_tokens
from bulletin.inbound.reading.classify import Classification, classify
from bulletin.inbound.reading.parse import parse_bytes


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Links:
    ws = tmp_path_factory.mktemp("ws")
    return Links.for_settings(load_settings(ws, secret_keys=["test-key"], sending_domain="news.example.org"))


def _classify(raw: str, links: Links) -> Classification:
    msg = parse_bytes(raw.encode())
    return classify(msg, read_tokens(msg, links, []))


def _notice(frm: str, subject: str, body: str, *, extra: str = "") -> str:
    return (f"Return-Path: <>\nFrom: {frm}\nTo: bulletin@news.example.org\nSubject: {subject}\n{extra}"
            f"Date: Mon, 6 Jan 2025 09:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
            f"{body}")


ORIGINAL = """From: Team <bulletin@news.example.org>
To: {rcpt}
Subject: Shared Services e-bulletin: January
Message-ID: <issue-7.sub-3@news.example.org>

Hello
"""

QMAIL = _notice("MAILER-DAEMON@mx1.hosting.example", "failure notice", """Hi. This is the qmail-send program at mx1.hosting.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<olga.petrova@mail.example.ru>:
192.0.2.10 does not like recipient.
Remote host said: 550 No such mailbox here
Giving up on 192.0.2.10.

--- Below this line is a copy of the message.

""" + ORIGINAL.format(rcpt="olga.petrova@mail.example.ru"))

QMAIL_DEFERRED = _notice("MAILER-DAEMON@mx1.hosting.example", "failure notice", """Hi. This is the qmail-send program at mx1.hosting.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a temporary failure; the message stays in the queue and will be retried.

<dmitri@slow.example.net>:
Connection to 203.0.113.9 timed out.
""")

EXIM = _notice("Mail Delivery System <Mailer-Daemon@relay.example.co.uk>",
               "Mail delivery failed: returning message to sender", """This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  j.bloggs@council.example.gov.uk
    host mx.council.example.gov.uk [198.51.100.7]
    SMTP error from remote mail server after RCPT TO:<j.bloggs@council.example.gov.uk>:
    550 Recipient address rejected: User unknown in local recipient table

------ This is a copy of the message, including all the headers. ------

""" + ORIGINAL.format(rcpt="j.bloggs@council.example.gov.uk"), extra="X-Failed-Recipients: j.bloggs@council.example.gov.uk\n")

EXIM_DELAY = _notice("Mail Delivery System <Mailer-Daemon@relay.example.co.uk>", "Warning: message 1tX-0004 delayed 24 hours",
                     """This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on relay.example.co.uk.

The message identifier is:     1tX-0004
The subject of the message is: Shared Services e-bulletin: January

The address to which the message has not yet been delivered is:

  pat.doyle@busy.example.ie
    host mx.busy.example.ie [203.0.113.4]
    Delay reason: SMTP error from remote mail server after RCPT TO:<pat.doyle@busy.example.ie>:
    451 Temporary local problem - please try later

No action is required on your part. Delivery attempts will continue for
some time, and this warning may be repeated at intervals if the message
remains undelivered.
""")

SENDMAIL = _notice("Mail Delivery Subsystem <MAILER-DAEMON@gw.example.edu>", "Returned mail: see transcript for details",
                   """The original message was received at Mon, 6 Jan 2025 08:59:58 GMT
from news.example.org [192.0.2.25]

   ----- The following addresses had permanent fatal errors -----
<ahmed.karim@dept.example.edu>
    (reason: 550 5.1.1 <ahmed.karim@dept.example.edu>... User unknown)

   ----- Transcript of session follows -----
... while talking to dept.example.edu.:
>>> RCPT To:<ahmed.karim@dept.example.edu>
<<< 550 5.1.1 <ahmed.karim@dept.example.edu>... User unknown
550 5.1.1 <ahmed.karim@dept.example.edu>... User unknown
""")

SENDMAIL_TRANSIENT = _notice("Mail Delivery Subsystem <MAILER-DAEMON@gw.example.edu>",
                             "Warning: could not send message for past 4 hours",
                             """    **********************************************
    **      THIS IS A WARNING MESSAGE ONLY      **
    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **
    **********************************************

The original message was received at Mon, 6 Jan 2025 05:00:00 GMT
from news.example.org [192.0.2.25]

   ----- Transcript of session follows -----
<lena.fischer@uni.example.de>... Deferred: Connection timed out with mx.uni.example.de.
Warning: message still undelivered after 4 hours
Will keep trying until message is 5 days old
""")


def _exchange(subject: str, lead: str, address: str, explanation: str) -> str:
    return _notice("Microsoft Outlook <postmaster@tenant.example.com>", subject, f"""{lead}

{address}
{explanation}

Diagnostic information for administrators:

Generating server: AM0PR01MB0001.eurprd01.prod.example.com

{address}
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'
""", extra="Auto-Submitted: auto-replied\n")


EXCHANGE = {
    "en": _exchange("Undeliverable: January", "Delivery has failed to these recipients or groups:",
                    "sam.taylor@agency.example.com", "The email address you entered couldn't be found."),
    "de": _exchange("Unzustellbar: Januar", "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:",
                    "jonas.weber@firma.example.de", "Die eingegebene E-Mail-Adresse wurde nicht gefunden."),
    "fr": _exchange("Non remis : Janvier", "La remise aux destinataires ou groupes suivants a échoué :",
                    "claire.martin@mairie.example.fr", "L'adresse de messagerie que vous avez entrée est introuvable."),
    "es": _exchange("No se puede entregar: Enero", "Error en la entrega a estos destinatarios o grupos:",
                    "lucia.garcia@ayto.example.es", "No se encontró la dirección de correo electrónico."),
    "nl": _exchange("Onbestelbaar: Januari", "Bezorging is mislukt voor deze ontvangers of groepen:",
                    "daan.jansen@gemeente.example.nl", "Het e-mailadres is niet gevonden."),
    "pl": _exchange("Niedostarczalne: Styczeń", "Dostarczenie do tych adresatów lub grup nie powiodło się:",
                    "anna.nowak@urzad.example.pl", "Nie można odnaleźć wprowadzonego adresu e-mail."),
    "sv": _exchange("Kan inte levereras: Januari", "Leverans till följande mottagare eller grupper misslyckades:",
                    "erik.lind@kommun.example.se", "E-postadressen kunde inte hittas."),
}

DOMINO = _notice("Postmaster <postmaster@notes.example.com>", "DELIVERY FAILURE: User not listed",
                 """Your message

  Subject: Shared Services e-bulletin: January

was not delivered to:

  maria.rossi@notes.example.com

because:

  User maria.rossi (maria.rossi@notes.example.com) not listed in Domino Directory
""")

GROUPWISE = _notice("Mail Delivery System <postmaster@gw.example.org>", "Undeliverable: Shared Services e-bulletin",
                    """The message that you sent was undeliverable to the following:
        peter.king@gw.example.org (user not found)

Possibly truncated original message follows:

""" + ORIGINAL.format(rcpt="peter.king@gw.example.org"))

YAHOO = _notice("MAILER-DAEMON@yahoo.example.com", "Failure Notice", """Sorry, we were unable to deliver your message to the following address.

<kim.lee@partner.example.com>:
Remote host said: 554 delivery error: dd This user doesn't have a partner.example.com account [-5] - mta1012.example.com [RCPT_TO]

--- Below this line is a copy of the message.
""")

AOL = _notice("Mail Delivery Subsystem <MAILER-DAEMON@aol.example.com>", "Returned mail: User unknown",
              """The original message was received at Mon, 6 Jan 2025 09:00:00 EST
from news.example.org [192.0.2.25]

    ----- The following addresses had permanent fatal errors -----
tom.hardy@aol.example.com

    ----- Transcript of session follows -----
... while talking to air-xa01.mail.aol.example.com.:
>>> RCPT To:<tom.hardy@aol.example.com>
<<< 550 MAILBOX NOT FOUND
""")

HOTMAIL = _notice("postmaster@hotmail.example.com", "Delivery Status Notification (Failure)",
                  """This is an automatically generated Delivery Status Notification.

Delivery to the following recipients failed.

       ruth.adams@hotmail.example.com
""")


@pytest.mark.parametrize(("raw", "address", "permanent"), [
    (QMAIL, "olga.petrova@mail.example.ru", True),
    (QMAIL_DEFERRED, "dmitri@slow.example.net", False),
    (EXIM, "j.bloggs@council.example.gov.uk", True),
    (EXIM_DELAY, "pat.doyle@busy.example.ie", False),
    (SENDMAIL, "ahmed.karim@dept.example.edu", True),
    (SENDMAIL_TRANSIENT, "lena.fischer@uni.example.de", False),
    (DOMINO, "maria.rossi@notes.example.com", True),
    (GROUPWISE, "peter.king@gw.example.org", True),
    (YAHOO, "kim.lee@partner.example.com", True),
    (AOL, "tom.hardy@aol.example.com", True),
], ids=["qmail", "qmail-deferred", "exim", "exim-delay", "sendmail", "sendmail-transient", "domino", "groupwise",
        "yahoo", "aol"])
def test_free_text_bounce_families(raw: str, address: str, permanent: bool, links: Links) -> None:
    c = _classify(raw, links)
    assert c.kind == "bounce", c
    assert [(b.address, b.permanent) for b in c.bounces] == [(address, permanent)]


def test_hotmail_legacy_notice_without_a_code_is_read_but_only_soft(links: Links) -> None:
    """No code and no wording that says the server gave up: a bounce, counted as soft."""
    c = _classify(HOTMAIL, links)
    assert (c.kind, [(b.address, b.permanent) for b in c.bounces]) == (
        "bounce", [("ruth.adams@hotmail.example.com", False)])


@pytest.mark.parametrize("lang", sorted(EXCHANGE))
def test_exchange_ndr_in_several_languages(lang: str, links: Links) -> None:
    c = _classify(EXCHANGE[lang], links)
    assert c.kind == "bounce"
    assert len(c.bounces) == 1 and c.bounces[0].permanent and c.bounces[0].status == "5.1.10"
    assert c.bounces[0].address.split("@")[1].startswith(("agency", "firma", "mairie", "ayto", "gemeente", "urzad",
                                                           "kommun"))


def test_a_person_pasting_a_bounce_into_a_reply_is_not_a_bounce(links: Links) -> None:
    raw = ("From: Amina <amina@example.gov.uk>\nTo: reply@news.example.org\nSubject: Re: January\n\n"
           "Your last issue bounced for my colleague, see below. Can you fix it?\n\n"
           "> Hi. This is the qmail-send program at mx1.hosting.example.\n"
           "> <colleague@example.gov.uk>:\n> Remote host said: 550 No such mailbox here\n")
    assert _classify(raw, links).kind == "mail"


def test_mta_wording_alone_without_a_machine_sign_is_not_a_bounce(links: Links) -> None:
    raw = ("From: Amina <amina@example.gov.uk>\nTo: reply@news.example.org\nSubject: Question\n\n"
           "Our IT said: Delivery has failed to these recipients or groups:\n\nwho@example.gov.uk\n")
    assert _classify(raw, links).kind == "mail"


def test_report_with_a_broken_boundary_is_read_from_its_text(links: Links) -> None:
    raw = """Return-Path: <>
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: bulletin@news.example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="AAA.1"

--BBB.2
Content-Type: text/plain

This is the mail system at host mx.example.net.

--BBB.2
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; nadia@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 no such user

--BBB.2--
"""
    c = _classify(raw, links)
    assert (c.kind, [(b.address, b.permanent, b.status) for b in c.bounces]) == (
        "bounce", [("nadia@example.org", True, "5.1.1")])


def test_a_report_returned_inside_a_bounce_is_not_read_as_ours(links: Links) -> None:
    """A bounce of a bounce: only the outer report's recipients failed."""
    inner = """From: MAILER-DAEMON@far.example.com
To: someone@elsewhere.example
Subject: Undelivered Mail
Content-Type: multipart/report; report-type=delivery-status; boundary="IN"

--IN
Content-Type: message/delivery-status

Reporting-MTA: dns; far.example.com

Final-Recipient: rfc822; innocent@far.example.com
Action: failed
Status: 5.1.1

--IN--
"""
    raw = f"""Return-Path: <>
From: MAILER-DAEMON@mx.example.net
To: bulletin@news.example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="OUT"

--OUT
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; outer@example.org
Action: failed
Status: 5.2.1

--OUT
Content-Type: message/rfc822

{inner}
--OUT--
"""
    c = _classify(raw, links)
    assert [b.address for b in c.bounces] == ["outer@example.org"]


def test_message_ids_are_never_taken_for_recipients(links: Links) -> None:
    raw = _notice("mailer-daemon@mail.example.com", "Undelivered Mail Returned to Sender",
                  """This message was created automatically by mail delivery software.

A message that you sent could not be delivered. This is a permanent error.

Message-ID:<1a2b3c.4d5e@news.example.org>
To:<gone@example.org>
""")
    c = _classify(raw, links)
    assert "1a2b3c.4d5e@news.example.org" not in [b.address for b in c.bounces]


def test_a_mailto_with_no_address_in_a_failure_list_is_text_not_a_crash() -> None:
    """A signature line like "Contact us <mailto:...>" broken over the list must not raise while reading."""
    from bulletin.inbound.reading.bounce_forms import family_recipients

    body = ("----- The following addresses had permanent fatal errors -----\n"
            "Help desk <mailto:\n"
            "<ann@example.org>\n")
    assert family_recipients(body) == ["ann@example.org"]
