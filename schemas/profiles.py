"""A member's profile fields (issue 20: people, not ids), as a contract: the body of
``PUT /v1/members/{member_id}/profile``, the columns of ``lapse members import-profiles`` and
the optional ``profile`` of a membership event (``schemas.events.MembershipEvent``) are all
this model, so the three paths accept exactly the same values (records/profiles.py stores them).

Validation is deliberately loose where the world is varied (names, plans) and strict where a
link is built from the value: a phone becomes a ``tel:``/``sms:`` link (digits, an optional
leading ``+``; separators removed), an email a ``mailto:`` link, a photo URL an ``<img>`` source
(``https`` only, so a page served over https never loads mixed content or a ``javascript:`` URL).
Error messages name the rule, never the value (profiles are personal data).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.text import LABEL_PATTERN

FIELDS = ("display_name", "phone", "email", "plan", "photo_url", "crm_id")
_SEPARATORS = re.compile(r"[\s().\-/]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
# One @, no spaces or characters that would break out of a mailto: link or an attribute.
_EMAIL = re.compile(
    r"^[^@\s<>\"'(),;:\\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def _phone(value: str | None) -> str | None:
    """E.164-ish: an optional ``+`` and 6 to 15 digits once spaces, dots, dashes, slashes and
    parentheses are removed (a national number without the ``+`` is kept: the desk dials it)."""
    if value is None:
        return None
    compact = _SEPARATORS.sub("", value)
    if not _PHONE.match(compact):
        raise ValueError("not a phone number: digits with an optional leading +, 6 to 15 digits")
    return compact


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


def _photo(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or re.search(r"[\s\"'<>]", value):
        raise ValueError("not an https URL")
    return value


Text = Annotated[str, Field(min_length=1, pattern=LABEL_PATTERN, strict=True)]


class ProfileIn(BaseModel):
    """A member's profile as written; every field optional (null or absent: not known). A PUT
    replaces the whole profile."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    display_name: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="The name the staff call the member by."
    )
    phone: Annotated[Text | None, Field(max_length=32), AfterValidator(_phone)] = Field(
        default=None,
        description="E.164 preferred (+972501234567); spaces, dots, dashes and parentheses are "
        "removed; 6 to 15 digits.",
    )
    email: Annotated[Text | None, AfterValidator(_email)] = Field(
        default=None, description="An email address (at most 254 characters)."
    )
    plan: Annotated[Text, Field(max_length=100)] | None = Field(
        default=None, description="The membership plan, as the club names it."
    )
    photo_url: Annotated[Text | None, Field(max_length=500), AfterValidator(_photo)] = Field(
        default=None, description="An https URL of the member's photo."
    )
    crm_id: Annotated[Text, Field(max_length=128)] | None = Field(
        default=None, description="The member's id in the club's CRM."
    )
