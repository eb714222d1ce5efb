"""Who is using the browser UI, and as what: the role decision, without Streamlit.

``decide(settings, user=..., headers=...)`` turns the settings and what the
request carries (Streamlit's ``st.user`` under ``auth=oidc``, the request
headers under ``auth=proxy``) into an :class:`Access`: an identity and a role.

- ``auth=none`` (the default): no sign-in, one user who may do everything
  (today's single-user UI; reading lists are the single user's).
- ``auth=oidc``: Streamlit's own sign-in (``st.login``); the identity is the
  provider's email claim (else its subject). Signed out: no role.
- ``auth=proxy``: an authenticating reverse proxy (oauth2-proxy, a company
  SSO gateway) puts the identity in ``auth_header``. A request without it, or
  with two values (a client's copy the proxy appended to rather than
  replaced), gets no role: never everyone-as-editor.

A signed-in identity is an **editor** when ``editors`` lists it (any case)
or, under ``proxy``, when ``auth_groups_header`` carries ``editor_group``;
everyone else signed in is a **reader**: Ask, Sources and their reading
lists, no Add sources and no Remove. On a PostgreSQL store a reader's pages
use ``reader_database_url`` (a login in ``equisearch_reader``), so even a
bug in a page cannot change the corpus: the database refuses
(:func:`store_location`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

AUTH_MODES = ("none", "oidc", "proxy")
EDITOR = "editor"
READER = "reader"


@dataclass(frozen=True)
class Access:
    """The outcome for one request: who (``identity``) and what they may do (``role``).

    ``role`` is ``''`` when nobody is signed in (or the request is refused);
    ``refusal`` then says why, in one line for the page.
    """

    identity: str = ""
    role: str = ""
    refusal: str = ""
    #: The auth mode that decided (the page offers a sign-in button for oidc).
    mode: str = "none"

    @property
    def signed_in(self) -> bool:
        return bool(self.role)

    @property
    def is_editor(self) -> bool:
        """May add, refresh and remove sources."""
        return self.role == EDITOR

    @property
    def list_user(self) -> str | None:
        """The ``user`` for :class:`search.lists.ReadingLists`: None for the single user (auth=none)."""
        return self.identity if self.mode != "none" else None


def _names(text: str) -> set[str]:
    return {part.strip().casefold() for part in (text or "").split(",") if part.strip()}


def _header_values(headers: Mapping | None, name: str) -> list[str]:
    """Every value of header ``name`` (any case); a mapping's value may be a string or a list of them."""
    if not headers or not name:
        return []
    wanted = name.strip().lower()
    values: list[str] = []
    for key, value in headers.items():
        if str(key).lower() != wanted:
            continue
        values.extend([value] if isinstance(value, str) else list(value or ()))
    return [v.strip() for v in values if v is not None and v.strip()]


def decide(settings, *, user: Mapping | None = None, headers: Mapping[str, str | Sequence[str]] | None = None) -> Access:
    """The identity and role for one request (see the module docstring).

    ``user``: ``st.user`` as a dict (oidc); ``headers``: the request headers,
    a value per name or a list of values (proxy).
    """
    mode = (settings.auth or "none").strip().lower()
    if mode not in AUTH_MODES:
        return Access(refusal=f"the server's sign-in setting EQUISEARCH_AUTH={settings.auth!r} is not one of "
                              f"{', '.join(AUTH_MODES)}: ask the operator to fix it", mode=mode)
    if mode == "none":
        return Access(role=EDITOR, mode=mode)
    groups: set[str] = set()
    if mode == "oidc":
        user = user or {}
        if user.get("is_logged_in") is not True:
            return Access(refusal="sign in to use equisearch", mode=mode)
        identity = str(user.get("email") or user.get("sub") or "").strip()
        if not identity:
            return Access(refusal="the sign-in gave no email address: ask the operator to allow the email scope",
                          mode=mode)
    else:
        values = _header_values(headers, settings.auth_header)
        if not values:
            return Access(refusal="sign-in required: open equisearch through the organisation's sign-in page",
                          mode=mode)
        if len(values) > 1 or "," in values[0]:
            # A client's own copy of the header survived beside the proxy's: trust neither.
            return Access(refusal=f"sign-in required: the request carried more than one {settings.auth_header}",
                          mode=mode)
        identity = values[0]
        if settings.auth_groups_header:
            for value in _header_values(headers, settings.auth_groups_header):
                groups |= _names(value)
    identity = identity.casefold()
    editor = identity in _names(settings.editors) or (
        mode == "proxy" and bool(settings.editor_group.strip()) and settings.editor_group.strip().casefold() in groups)
    return Access(identity=identity, role=EDITOR if editor else READER, mode=mode)


def store_location(settings, access: Access) -> str:
    """Where this session's engine opens the store.

    A reader on a PostgreSQL store gets ``reader_database_url`` when it is
    set (a login that may write only reading lists); everyone else, and
    every SQLite store, the store itself (``settings.location``).
    """
    from search.store.base import is_database_url

    location = settings.location
    if access.role == READER and is_database_url(location) and settings.reader_database_url.strip():
        return settings.reader_database_url.strip()
    return str(location)
