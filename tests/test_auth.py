"""The UI's role decision (ui/auth.py), without Streamlit: settings + what the request carries -> identity, role."""
from __future__ import annotations

import pytest

from search.settings import Settings
from ui.auth import EDITOR, READER, decide, store_location

DB = "postgresql://editor:pw@db.example:5432/equisearch"
READER_DB = "postgresql://reader:pw@db.example:5432/equisearch"


def s(**kw) -> Settings:
    return Settings.from_env({}, **kw)


def test_no_sign_in_is_one_user_who_may_do_everything():
    a = decide(s())
    assert (a.identity, a.role, a.signed_in, a.is_editor, a.list_user) == ("", EDITOR, True, True, None)
    # Headers or a user are not read without auth: a forged header changes nothing.
    assert decide(s(), headers={"X-Forwarded-Email": "x@y.org"}) == a


def test_an_unknown_auth_mode_lets_nobody_in():
    a = decide(s(auth="sso"), headers={"X-Forwarded-Email": "boss@school.example"})
    assert not a.signed_in and "EQUISEARCH_AUTH='sso'" in a.refusal and "none, oidc, proxy" in a.refusal


@pytest.mark.parametrize("user", [None, {}, {"email": "a@b.org"}, {"is_logged_in": False, "email": "a@b.org"},
                                  {"is_logged_in": "true", "email": "a@b.org"}])
def test_oidc_signed_out_has_no_role(user):
    a = decide(s(auth="oidc", editors="a@b.org"), user=user)
    assert (a.role, a.identity, a.mode) == ("", "", "oidc") and a.refusal == "sign in to use equisearch"


def test_oidc_editors_by_email_any_case_everyone_else_reads():
    settings = s(auth="oidc", editors=" Ann@School.example , lead@school.example")
    ann = decide(settings, user={"is_logged_in": True, "email": "ann@school.EXAMPLE", "name": "Ann"})
    assert (ann.identity, ann.role, ann.list_user) == ("ann@school.example", EDITOR, "ann@school.example")
    bob = decide(settings, user={"is_logged_in": True, "email": "bob@school.example"})
    assert (bob.identity, bob.role, bob.is_editor) == ("bob@school.example", READER, False)
    # No email claim: the subject identifies them (a reader: editors are named by email).
    assert decide(settings, user={"is_logged_in": True, "sub": "1234"}).role == READER
    nobody = decide(settings, user={"is_logged_in": True})
    assert not nobody.signed_in and "no email address" in nobody.refusal


def test_proxy_without_the_header_is_refused_never_everyone_as_editor():
    settings = s(auth="proxy", editors="ann@school.example")
    for headers in (None, {}, {"Host": "x"}, {"X-Forwarded-Email": "  "}, {"X-Forwarded-Email": []}):
        a = decide(settings, headers=headers)
        assert not a.signed_in and not a.is_editor and a.refusal.startswith("sign-in required")


def test_proxy_identity_from_the_configured_header_any_case():
    settings = s(auth="proxy", editors="ann@school.example")
    assert decide(settings, headers={"x-forwarded-email": "Ann@School.example"}).role == EDITOR
    assert decide(settings, headers={"X-Forwarded-Email": ["bob@school.example"]}).role == READER
    other = s(auth="proxy", auth_header="X-Auth-Request-Email", editors="ann@school.example")
    assert not decide(other, headers={"X-Forwarded-Email": "ann@school.example"}).signed_in
    assert decide(other, headers={"X-Auth-Request-Email": "ann@school.example"}).is_editor


@pytest.mark.parametrize("headers", [{"X-Forwarded-Email": ["eve@evil.example", "ann@school.example"]},
                                     {"X-Forwarded-Email": "eve@evil.example, ann@school.example"}])
def test_proxy_with_two_identities_trusts_neither(headers):
    a = decide(s(auth="proxy", editors="ann@school.example"), headers=headers)
    assert not a.signed_in and "more than one X-Forwarded-Email" in a.refusal


def test_proxy_editor_group():
    settings = s(auth="proxy", auth_groups_header="X-Forwarded-Groups", editor_group="Equisearch-Editors")
    headers = {"X-Forwarded-Email": "cat@school.example", "X-Forwarded-Groups": "staff, equisearch-editors"}
    assert decide(settings, headers=headers).role == EDITOR
    assert decide(settings, headers={**headers, "X-Forwarded-Groups": "staff,editors-old"}).role == READER
    # Groups are read only from the header the operator named, and only when a group is named.
    assert decide(s(auth="proxy", editor_group="equisearch-editors"), headers=headers).role == READER
    assert decide(s(auth="proxy", auth_groups_header="X-Forwarded-Groups"), headers=headers).role == READER


def test_readers_on_postgresql_use_the_reader_login(tmp_path):
    reader, editor = decide(s(auth="oidc"), user={"is_logged_in": True, "email": "r@x.org"}), decide(s())
    pg = s(database_url=DB, reader_database_url=READER_DB)
    assert store_location(pg, reader) == READER_DB
    assert store_location(pg, editor) == DB
    # No reader login configured: the store as it is (the pages still hide the editors' controls).
    assert store_location(s(database_url=DB), reader) == DB
    # A SQLite store has no logins: the directory, whoever asks.
    sqlite = s(home=str(tmp_path), reader_database_url=READER_DB)
    assert store_location(sqlite, reader) == store_location(sqlite, editor) == str(tmp_path)
