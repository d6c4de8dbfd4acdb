"""Credentials in URLs: shown nowhere, compared without them."""

from __future__ import annotations

from catalog_sync.logs import redact
from catalog_sync.urls import mask_userinfo, public_url, same_url, url_secrets


def test_public_url_drops_user_info_query_and_fragment() -> None:
    assert (
        public_url("https://admin:PW@llm.example.com:8443/base/?k=v#f")
        == "https://llm.example.com:8443/base/"
    )
    assert public_url("http://[::1]:4000/") == "http://[::1]:4000/"
    assert public_url("http://llm.example.com") == "http://llm.example.com"


def test_same_url_ignores_credentials_and_a_trailing_slash() -> None:
    assert same_url("http://admin:PW@llm:4000/", "http://llm:4000")
    assert not same_url("http://llm:4000/", "http://llm:4001/")


def test_url_secrets_are_the_password_and_user_info_as_written_and_decoded() -> None:
    assert set(url_secrets("http://admin:p%40ss@host/")) == {"admin:p%40ss", "admin:p@ss", "p%40ss", "p@ss"}
    assert url_secrets("http://host/") == ()
    assert url_secrets("http://token-only@host/") == ("token-only",)


def test_user_info_is_masked_in_free_text() -> None:
    text = "GET http://admin:S3cret@llm:4000/user/list failed; see https://x.example/a@b and bob@example.com"
    assert mask_userinfo(text) == (
        "GET http://***@llm:4000/user/list failed; see https://x.example/a@b and bob@example.com"
    )
    # the last "@" of the host part ends the user info: an unencoded "@" in the password is masked whole
    assert mask_userinfo("http://admin:p@ss@host/") == "http://***@host/"
    assert redact("url 'https://u:pw@h/'") == "url 'https://***@h/'"
