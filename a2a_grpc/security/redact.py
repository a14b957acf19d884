"""Secrets kept out of what leaves the server: answers, error texts and log lines.

* :func:`redact_userinfo` and :func:`scrub_urls`: a URL's ``user:password@`` is a credential; a URL
  shown in an error or a log line is shown without it (spec 13.4: logs must not hold credentials).
* :func:`redact_url`: a webhook URL in a log line is ``scheme://host[:port]`` only (its path and
  query may be its secret).
* :func:`without_credentials`: push notification configs are answered (Create, Get, List) with
  their ``authentication.scheme`` but ``authentication.credentials`` set to the empty string. The
  credentials are the webhook receiver's secret, given once by the client that registered the
  webhook; the server keeps them to deliver notifications and never hands them out again, so a
  caller who can read a config (or a log or cache of its answers) cannot reuse them. A client
  that updates a config sends its credentials again. The ``token`` is answered as it is: it is
  the client's own value for recognising the notifications it receives, not a credential.
"""

from __future__ import annotations

import re
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from google.protobuf.message import Message

from a2a_grpc import types

__all__ = ["redact_url", "redact_userinfo", "scrub_urls", "split_userinfo", "without_credentials"]

M = TypeVar("M", bound=Message)

# scheme://userinfo@ : everything between "//" and the last "@" of the authority.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s]*@")


def redact_userinfo(url: str) -> str:
    """``url`` without its userinfo (``http://user:password@host/x`` → ``http://host/x``)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 literal: cut by pattern instead
        return scrub_urls(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its userinfo, and the (percent-decoded) user and password it held, if any.

    For clients that send URL credentials as an ``Authorization`` header themselves: an HTTP
    library given the URL whole would write it, password and all, into its own log lines.
    """
    bare = redact_userinfo(url)
    if bare == url:
        return url, None
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    return bare, (unquote(user), unquote(password))


def scrub_urls(text: str) -> str:
    """``text`` (an error message, an exception's repr) with the userinfo of every URL in it removed."""
    return _USERINFO.sub(r"\1", text)


def _blank(config: types.TaskPushNotificationConfig) -> None:
    # Read first: writing to an absent `authentication` would make it present (an empty object).
    if config.authentication.credentials:
        config.authentication.credentials = ""


def without_credentials(answer: M) -> M:
    """``answer`` with the push credentials it holds blanked (see the module doc).

    Takes a :class:`TaskPushNotificationConfig` or a :class:`ListTaskPushNotificationConfigsResponse`
    (anything else is returned as it is). Never changes ``answer`` itself: the server's own copy
    still delivers with the credentials. Returns ``answer`` when there is nothing to blank.
    """
    if isinstance(answer, types.TaskPushNotificationConfig):
        if not answer.authentication.credentials:
            return answer
        out = types.TaskPushNotificationConfig()
        out.CopyFrom(answer)
        _blank(out)
        return out  # type: ignore[return-value]  # the same type as answer
    if isinstance(answer, types.ListTaskPushNotificationConfigsResponse):
        if not any(c.authentication.credentials for c in answer.configs):
            return answer
        page = types.ListTaskPushNotificationConfigsResponse()
        page.CopyFrom(answer)
        for config in page.configs:
            _blank(config)
        return page  # type: ignore[return-value]
    return answer


# -- webhook URLs in logs ----------------------------------------------------------------------

_LOGGABLE_HOST = re.compile(r"[A-Za-z0-9._:\[\]-]+")


def redact_url(url: str) -> str:
    """``url`` for logs: ``scheme://host[:port]``, then ``/…`` if it had a path or query.

    User info, path and query are dropped: secrets live there (chat webhooks carry their token in the
    path). Never raises; an unreadable URL is ``<unparsable url>``.
    """
    if any(c < " " or c == "\x7f" for c in url):  # urlsplit drops some silently: not what was given
        return "<unparsable url>"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    if not parts.scheme.isalpha() or not host or not _LOGGABLE_HOST.fullmatch(host):
        return "<unparsable url>"
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
    return shown + ("/…" if parts.path.strip("/") or parts.query or parts.fragment else "")
