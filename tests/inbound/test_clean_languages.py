"""Replies in the wild: attributions in eight languages, wrapped attributions, Outlook header blocks,
"Original Message" separators, bottom-posting and interleaved answers. Every message is written here."""

from __future__ import annotations

import pytest

from bulletin.inbound.reading.clean import visible_text

QUOTE = "> Welcome to the June issue of the Shared Services e-bulletin.\n> Tell us what you think.\n"

ATTRIBUTIONS = {
    "en": "On Wed, 1 Jun 2016 at 10:00, Shared Services Team <team@news.example.org> wrote:",
    "de": "Am Mi., 1. Juni 2016 um 10:00 Uhr schrieb Shared Services Team <team@news.example.org>:",
    "fr": "Le mer. 1 juin 2016 à 10:00, Shared Services Team <team@news.example.org> a écrit :",
    "es": "El mié, 1 jun 2016 a las 10:00, Shared Services Team (<team@news.example.org>) escribió:",
    "nl": "Op wo 1 jun. 2016 om 10:00 schreef Shared Services Team <team@news.example.org>:",
    "ru": "1 июня 2016 г., в 10:00, пользователь Shared Services Team <team@news.example.org> написал:",
    "ru-short": "Ср, 1 июн. 2016 г. в 10:00, Shared Services Team <team@news.example.org>:",
    "pl": "W dniu 1.06.2016 o 10:00, Shared Services Team <team@news.example.org> pisze:",
    "pl-napisal": "śr., 1 cze 2016 o 10:00 Shared Services Team <team@news.example.org> napisał(a):",
    "sv": "Den ons 1 juni 2016 kl 10:00 skrev Shared Services Team <team@news.example.org>:",
    "it": "Il giorno mer 1 giu 2016 alle ore 10:00 Shared Services Team <team@news.example.org> ha scritto:",
}
ANSWERS = {
    "en": "Yes, more on the payroll merger please.",
    "de": "Ja, bitte mehr zur Zusammenlegung der Gehaltsabrechnung.",
    "fr": "Oui, davantage sur la fusion de la paie, s'il vous plaît.",
    "es": "Sí, más sobre la fusión de nóminas, por favor.",
    "nl": "Ja, graag meer over de fusie van de salarisadministratie.",
    "ru": "Да, пожалуйста, больше о слиянии расчёта зарплаты.",
    "ru-short": "Спасибо, очень полезно.",
    "pl": "Tak, proszę więcej o połączeniu działów płac.",
    "pl-napisal": "Dziękuję, bardzo przydatne.",
    "sv": "Ja, gärna mer om sammanslagningen av lönehanteringen.",
    "it": "Sì, di più sulla fusione delle buste paga, per favore.",
}


@pytest.mark.parametrize("lang", sorted(ATTRIBUTIONS))
def test_attribution_line_in_each_language(lang: str) -> None:
    text = f"{ANSWERS[lang]}\n\n{ATTRIBUTIONS[lang]}\n{QUOTE}"
    assert visible_text(text) == ANSWERS[lang]


@pytest.mark.parametrize("lang", ["en", "de", "fr", "es", "nl", "ru", "pl", "sv"])
def test_attribution_wrapped_over_two_lines(lang: str) -> None:
    line = ATTRIBUTIONS[lang]
    cut = line.index("Team") + len("Team")
    text = f"{ANSWERS[lang]}\n\n{line[:cut]}\n{line[cut:].lstrip()}\n{QUOTE}"
    assert visible_text(text) == ANSWERS[lang]


@pytest.mark.parametrize("lang", ["en", "de", "fr", "ru"])
def test_attribution_without_quote_marks_below(lang: str) -> None:
    """Some clients quote by indentation or not at all: everything below the attribution is the old mail."""
    text = f"{ANSWERS[lang]}\n\n{ATTRIBUTIONS[lang]}\n\nWelcome to the June issue.\nTell us what you think.\n"
    assert visible_text(text) == ANSWERS[lang]


OUTLOOK = {
    "en": ("From: Shared Services Team <team@news.example.org>", "Sent: Wednesday, June 1, 2016 10:00 AM",
           "To: Amina Khan <amina@example.gov.uk>", "Subject: Shared Services e-bulletin: June 2016"),
    "de": ("Von: Shared Services Team <team@news.example.org>", "Gesendet: Mittwoch, 1. Juni 2016 10:00",
           "An: Jonas Weber <jonas@firma.example.de>", "Betreff: Shared Services e-bulletin: Juni 2016"),
    "fr": ("De : Shared Services Team <team@news.example.org>", "Envoyé : mercredi 1 juin 2016 10:00",
           "À : Claire Martin <claire@mairie.example.fr>", "Objet : Shared Services e-bulletin : juin 2016"),
    "es": ("De: Shared Services Team <team@news.example.org>", "Enviado: miércoles, 1 de junio de 2016 10:00",
           "Para: Lucía García <lucia@ayto.example.es>", "Asunto: Shared Services e-bulletin: junio 2016"),
    "nl": ("Van: Shared Services Team <team@news.example.org>", "Verzonden: woensdag 1 juni 2016 10:00",
           "Aan: Daan Jansen <daan@gemeente.example.nl>", "Onderwerp: Shared Services e-bulletin: juni 2016"),
    "pl": ("Od: Shared Services Team <team@news.example.org>", "Wysłano: środa, 1 czerwca 2016 10:00",
           "Do: Anna Nowak <anna@urzad.example.pl>", "Temat: Shared Services e-bulletin: czerwiec 2016"),
    "sv": ("Från: Shared Services Team <team@news.example.org>", "Skickat: den 1 juni 2016 10:00",
           "Till: Erik Lind <erik@kommun.example.se>", "Ämne: Shared Services e-bulletin: juni 2016"),
    "ru": ("От: Shared Services Team <team@news.example.org>", "Отправлено: 1 июня 2016 г. 10:00",
           "Кому: Ольга Петрова <olga@mail.example.ru>", "Тема: Shared Services e-bulletin: июнь 2016"),
}


@pytest.mark.parametrize("lang", sorted(OUTLOOK))
def test_outlook_header_block_in_each_language(lang: str) -> None:
    answer = ANSWERS[lang]
    block = "\n".join(OUTLOOK[lang])
    text = f"{answer}\n\n________________________________\n{block}\n\nWelcome to the June issue.\nTell us what you think.\n"
    assert visible_text(text) == answer
    # Without the rule above it, as Outlook on the web and many mobile clients send it.
    assert visible_text(f"{answer}\n\n{block}\n\nWelcome to the June issue.\n") == answer


SEPARATORS = ["-----Original Message-----", "-----Ursprüngliche Nachricht-----", "-----Message d'origine-----",
              "-----Mensaje original-----", "-----Oorspronkelijk bericht-----", "-----Wiadomość oryginalna-----",
              "-----Ursprungligt meddelande-----", "-----Исходное сообщение-----", "-----Messaggio originale-----",
              "--- Original Message ---"]


@pytest.mark.parametrize("separator", SEPARATORS)
def test_original_message_separator(separator: str) -> None:
    text = (f"Count me in for the workshop.\n\n{separator}\nFrom: team@news.example.org\n"
            "Sent: 01 June 2016 10:00\nTo: amina@example.gov.uk\nSubject: June\n\nWelcome to the June issue.\n")
    assert visible_text(text) == "Count me in for the workshop."


def test_bottom_posted_reply_keeps_the_answer_below_the_quote() -> None:
    text = f"{ATTRIBUTIONS['en']}\n{QUOTE}\nThe payroll story was the most useful part for us.\n"
    assert visible_text(text) == "The payroll story was the most useful part for us."


def test_bottom_posted_reply_in_german_with_signature() -> None:
    text = f"{ATTRIBUTIONS['de']}\n{QUOTE}\nSehr hilfreich, danke.\n\n-- \nJonas Weber\nFirma GmbH\n"
    assert visible_text(text) == "Sehr hilfreich, danke."


def test_interleaved_reply_keeps_every_answer_and_drops_the_quotes() -> None:
    text = (f"{ATTRIBUTIONS['en']}\n"
            "> Would you like more on the payroll merger?\n"
            "Yes, especially the timeline.\n"
            "\n"
            "> Should we add an events calendar?\n"
            "> It would list training dates.\n"
            "No, the intranet already has one.\n")
    got = visible_text(text)
    assert "Yes, especially the timeline." in got and "No, the intranet already has one." in got
    assert ">" not in got and "events calendar" not in got and "wrote:" not in got


def test_interleaved_reply_under_a_top_answer_keeps_both() -> None:
    text = ("Two answers below.\n\n"
            "> Would you like more on the payroll merger?\n"
            "Yes.\n\n"
            "> Should we add an events calendar?\n"
            "No.\n")
    got = visible_text(text)
    assert got.startswith("Two answers below.") and "Yes." in got and got.rstrip().endswith("No.")
    assert "payroll merger?" not in got


def test_a_reply_that_only_mentions_a_word_like_wrote_is_kept_whole() -> None:
    text = "On reflection, I wrote to my manager about the merger:\nshe agrees with the plan.\n"
    assert visible_text(text) == text.strip()


def test_a_sentence_starting_with_von_is_not_an_outlook_block() -> None:
    text = "Von: meiner Seite aus alles gut.\nDanke für die Ausgabe.\n"
    assert visible_text(text) == text.strip()
