import base64
import shutil
import sqlite3
import subprocess
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bulletin.config import load_settings
from bulletin.db import session_scope
from bulletin.doctor import run_checks
from bulletin.doctor.checks import check_database, check_public_url, check_smtp
from bulletin.doctor.mailauth import check_alignment, check_records, org_domain
from bulletin.doctor.secrets import check_secrets
from bulletin.models import MailingList
from bulletin.workspace import Workspace
from tests.report.servers import dns_server, http_server
from tests.smtp_sink import closed_port, free_port


@pytest.fixture
def ws_settings(workspace):
    def make(**overrides):
        return load_settings(workspace, **{"sending_domain": "news.example.org", **overrides})
    return make


def by_name(checks):
    return {c.name: c for c in checks}


# Database ----------------------------------------------------------------------------------------

def test_database_at_head_passes_on_both_backends(settings, engine):
    check = check_database(settings, 5)
    assert check.status == "pass", check
    from bulletin.db import head_revision

    assert f"schema at {head_revision()}" in check.detail


def test_missing_sqlite_file_warns_and_is_not_created(ws_settings, workspace):
    settings = ws_settings()
    check = check_database(settings, 5)
    assert check.status == "warn" and "does not exist yet" in check.detail
    assert "bulletin db upgrade" in check.fix
    assert not (workspace / ".bulletin" / "bulletin.db").exists()


def test_database_without_schema_warns_with_the_upgrade_fix(ws_settings, tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    check = check_database(ws_settings(database_url=f"sqlite:///{path}"), 5)
    assert check.status == "warn" and "empty database" in check.detail
    assert check.fix == "run `bulletin db upgrade`"


def test_unreachable_database_fails_naming_the_setting_and_hiding_the_password(ws_settings):
    with closed_port() as port:
        check = check_database(ws_settings(database_url=f"postgresql://u:hunter2@127.0.0.1:{port}/x"), 2)
    assert check.status == "fail" and "cannot reach" in check.detail
    assert "hunter2" not in check.detail
    assert "database_url" in check.fix


# SMTP --------------------------------------------------------------------------------------------

class Sink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"doctor", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port(), authenticator=_authenticator,
                            auth_require_tls=False)
    controller.start()
    yield controller.port
    controller.stop()


@pytest.fixture
def plain_smtp_server():
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port
    controller.stop()


def test_smtp_login_that_works_passes(ws_settings, smtp_server):
    s = ws_settings(transport="smtp", smtp_port=smtp_server, smtp_username="doctor", smtp_password="s3cret")
    check = check_smtp(s, 5)
    assert check.status == "pass", check
    assert "logged in as doctor" in check.detail


def test_smtp_wrong_password_fails_naming_the_settings(ws_settings, smtp_server):
    s = ws_settings(transport="smtp", smtp_port=smtp_server, smtp_username="doctor", smtp_password="wrong")
    check = check_smtp(s, 5)
    assert check.status == "fail" and "refused login as 'doctor'" in check.detail
    assert "smtp_password" in check.fix and "wrong" not in check.detail + check.fix


def test_smtp_login_against_a_server_without_auth_fails(ws_settings, plain_smtp_server):
    s = ws_settings(transport="smtp", smtp_port=plain_smtp_server, smtp_username="doctor", smtp_password="x")
    check = check_smtp(s, 5)
    assert check.status == "fail" and "AUTH" in check.detail


def test_smtp_starttls_against_a_server_without_it_fails(ws_settings, plain_smtp_server):
    s = ws_settings(transport="smtp", smtp_port=plain_smtp_server, smtp_security="starttls")
    check = check_smtp(s, 5)
    assert check.status == "fail" and "smtp_security" in check.fix


def test_smtp_nobody_listening_fails_with_host_and_port(ws_settings):
    port = free_port()
    check = check_smtp(ws_settings(transport="smtp", smtp_port=port), 2)
    assert check.status == "fail" and f"127.0.0.1:{port}" in check.detail
    assert "smtp_host" in check.fix


def test_maildir_transport_warns_that_nothing_leaves(ws_settings):
    check = check_smtp(ws_settings(), 2)
    assert check.status == "warn" and "maildir" in check.detail and 'transport = "smtp"' in check.fix


# Public URL --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "expected"), [(400, "pass"), (404, "fail"), (200, "warn"), (500, "fail")])
def test_public_url_judged_by_the_unsubscribe_answer(ws_settings, status, expected):
    with http_server(status) as base:
        check = check_public_url(ws_settings(public_base_url=base), 5)
    assert check.status == expected, check


def test_public_url_over_plain_http_off_loopback_warns_about_https(ws_settings):
    with http_server(400, host="127.0.0.2") as base:
        check = check_public_url(ws_settings(public_base_url=base), 5)
    assert check.status == "warn" and "https" in check.fix


def test_public_url_with_nothing_listening_fails(ws_settings):
    with closed_port() as port:
        check = check_public_url(ws_settings(public_base_url=f"http://127.0.0.1:{port}"), 2)
    assert check.status == "fail" and "bulletin serve" in check.fix


def test_public_url_passes_against_bulletins_own_web_app(settings, engine):
    web = pytest.importorskip("bulletin.web.app")
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    server = uvicorn.Server(uvicorn.Config(web.create_app(Workspace(settings)), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            thread.join(0.05)
        check = check_public_url(settings, 5)
    finally:
        server.should_exit = True
        thread.join()
    assert check.status == "pass", check


# Secrets -----------------------------------------------------------------------------------------

def test_generated_key_outside_git_passes(ws_settings):
    check = check_secrets(ws_settings())
    assert check.status == "pass", check


def test_key_file_readable_by_others_warns_with_chmod(ws_settings, workspace):
    settings = ws_settings()
    (workspace / ".bulletin" / "secret_keys.json").chmod(0o644)
    check = check_secrets(settings)
    assert check.status == "warn" and "chmod 600" in check.fix


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_passwords_in_a_committable_toml_and_unignored_keys_warn(ws_settings, workspace):
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    (workspace / "bulletin.toml").write_text('smtp_password = "x"\n')
    check = check_secrets(ws_settings())
    assert check.status == "warn"
    assert "BULLETIN_SMTP_PASSWORD" in check.fix and ".bulletin/ to .gitignore" in check.fix
    (workspace / ".gitignore").write_text(".bulletin/\nbulletin.toml\n")
    assert check_secrets(ws_settings()).status == "pass"


# Alignment and DNS -------------------------------------------------------------------------------

def test_from_domain_in_another_organisation_fails_alignment_without_dkim(ws_settings):
    s = ws_settings(sending_domain="news.example.org")
    assert check_alignment(s, ["example.org", "mail.example.org"]).status == "pass"
    check = check_alignment(s, ["example.org", "council.example.gov.uk"])
    assert check.status == "fail" and "council.example.gov.uk" in check.detail
    assert "dkim_key_path" in check.fix


def test_dkim_signing_as_the_from_domain_rescues_alignment(ws_settings, tmp_path):
    path, _ = _dkim_key(tmp_path)
    check = check_alignment(ws_settings(dkim_key_path=path), ["council.example.gov.uk"])
    assert check.status == "pass" and "through DKIM" in check.detail
    assert org_domain("a.b.example.gov.uk") == "example.gov.uk"


def _dkim_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, base64.b64encode(public).decode()


def test_spf_dkim_and_dmarc_pass_when_published(ws_settings, tmp_path):
    path, public = _dkim_key(tmp_path)
    zone = {"news.example.org": ["v=spf1 ip4:192.0.2.0/24 ~all", "google-site-verification=x"],
            "bulletin._domainkey.example.org": [f"v=DKIM1; k=rsa; p={public}"],
            "_dmarc.example.org": ["v=DMARC1; p=none; rua=mailto:d@example.org"]}
    with dns_server(zone) as resolver:
        checks = by_name(check_records(ws_settings(dkim_key_path=path), ["example.org"], resolver))
    assert [c.status for c in checks.values()] == ["pass"] * 3, checks
    assert "p=none" in checks["dmarc"].detail


def test_missing_or_wrong_records_fail_with_the_record_to_publish(ws_settings, tmp_path):
    path, _ = _dkim_key(tmp_path)
    _, other_public = _dkim_key(tmp_path / "..")
    zone = {"news.example.org": ["v=spf1 +all", "v=spf1 -all"],
            "bulletin._domainkey.example.org": [f"v=DKIM1; p={other_public}"]}
    with dns_server(zone) as resolver:
        checks = by_name(check_records(ws_settings(dkim_key_path=path), ["example.org"], resolver))
    assert checks["spf"].status == "fail" and "2 SPF records" in checks["spf"].detail
    assert checks["dkim"].status == "fail" and "does not match" in checks["dkim"].detail
    assert checks["dmarc"].status == "fail" and "_dmarc.example.org" in checks["dmarc"].fix


def test_no_dkim_key_configured_fails_and_spf_plus_all_warns(ws_settings):
    zone = {"news.example.org": ["v=spf1 +all"]}
    with dns_server(zone) as resolver:
        checks = by_name(check_records(ws_settings(), ["example.org"], resolver))
    assert checks["spf"].status == "warn" and "+all" in checks["spf"].detail
    assert checks["dkim"].status == "fail" and "dkim_key_path" in checks["dkim"].fix


def test_dns_checks_say_skipped_offline_when_the_resolver_cannot_reach_the_root(ws_settings):
    with dns_server({}, offline=True) as resolver:
        checks = check_records(ws_settings(), ["example.org"], resolver)
    assert [(c.name, c.status, c.detail) for c in checks] == [
        ("spf", "warn", "skipped: offline"), ("dkim", "warn", "skipped: offline"),
        ("dmarc", "warn", "skipped: offline")]


# The whole run -----------------------------------------------------------------------------------

def test_run_checks_uses_the_lists_from_domains_for_alignment_and_dmarc(settings, engine):
    with session_scope(engine) as s:
        s.add(MailingList(slug="a", name="A", from_name="A", from_address="news@elsewhere.example.net"))
    with dns_server({}) as resolver:
        checks = by_name(run_checks(settings, timeout=2, resolver=resolver))
    assert checks["database"].status == "pass"
    assert checks["alignment"].status == "fail" and "elsewhere.example.net" in checks["alignment"].detail
    assert "elsewhere.example.net" in checks["dmarc"].detail


def test_offline_flag_skips_dns_entirely(ws_settings):
    checks = run_checks(ws_settings(), timeout=1, offline=True)
    assert [c.name for c in checks] == ["database", "smtp", "public_url", "secrets", "alignment", "spf", "dkim", "dmarc"]
    assert all(c.detail.startswith("skipped: offline") for c in checks[-3:])


# References without foreign keys (migration 0021) ---------------------------------------------------

def test_references_pass_on_a_queued_issue_and_name_rows_whose_parent_was_deleted_by_hand(settings, engine):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from bulletin.delivery import service
    from bulletin.doctor.references import check_references
    from tests.delivery.conftest import add_list, add_subscribers, make_compiled

    list_id = add_list(engine)
    add_subscribers(engine, list_id, 3)
    service.queue_issue(engine, settings, make_compiled(), "shared-services")
    assert check_references(settings).status == "pass"
    with engine.connect() as conn:
        (sid,) = conn.execute(text("SELECT min(subscriber_id) FROM delivery")).one()
    delete = text("DELETE FROM subscriber WHERE id = :id")
    if engine.dialect.name == "sqlite":  # SQLite keeps its foreign keys: the delete is refused
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(delete, {"id": sid})
        return
    with engine.begin() as conn:
        conn.execute(delete, {"id": sid})
    check = check_references(settings)
    assert check.status == "fail"
    assert "1 delivery row(s) refer to a missing subscriber (delivery.subscriber_id)" in check.detail
    assert "1 subscription row(s) refer to a missing subscriber (subscription.subscriber_id)" in check.detail
    assert "delivery.issue_id" not in check.detail


def test_postgresql_ledger_and_consent_tables_have_no_foreign_keys_and_sqlite_keeps_them(engine):
    from sqlalchemy import inspect

    fks = {t: inspect(engine).get_foreign_keys(t) for t in ("delivery", "subscription", "subscriber_event")}
    if engine.dialect.name == "postgresql":
        assert fks == {"delivery": [], "subscription": [], "subscriber_event": []}
    else:
        assert {fk["constrained_columns"][0] for fk in fks["delivery"]} == {"issue_id", "send_id", "subscriber_id"}
