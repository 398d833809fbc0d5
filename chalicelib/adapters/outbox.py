"""Read what the embedded AWS "sent": SES emails and SNS text messages. Local runs only.

moto keeps every message it would have delivered and shows them at ``GET /moto-api/data.json``
(SES: ``ses.Message`` for simple content, ``ses.RawMessage`` for MIME, ``ses.TemplateMessage``;
SNS: ``sns.SMS``). Only the dev outbox page uses this adapter, so a developer can click the
invitation link an email or SMS carries without a real inbox or phone.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import threading
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from chalicelib.domain.model import Model
from chalicelib.errors import UpstreamError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from email.message import EmailMessage

    import requests

_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}"


class SentEmail(Model):
    id: str
    source: str
    destinations: list[str]
    subject: str
    html: str
    text: str
    # moto records no send time: this is when the outbox first saw the message (UTC, ISO 8601).
    timestamp: str
    links: list[str]


class SentSms(Model):
    id: str
    phone_number: str
    message: str
    timestamp: str
    links: list[str]


class Outbox(Model):
    emails: list[SentEmail]
    sms: list[SentSms]


def extract_links(*texts: str) -> list[str]:
    """Every http(s) URL in the texts, once each, in order. Other schemes (javascript:) never match."""
    found: list[str] = []
    for text in texts:
        for match in _URL.findall(html.unescape(text)):
            url = match.rstrip(_TRAILING)
            if url not in found:
                found.append(url)
    return found


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _looks_like_html(body: str) -> bool:
    return bool(re.search(r"<(html|body|p|a|div|br|table|span|h\d)\b", body, re.IGNORECASE))


def _recipients(destinations: Any) -> list[str]:
    if isinstance(destinations, dict):
        keys = ("ToAddresses", "CcAddresses", "BccAddresses")
        return [address for key in keys for address in destinations.get(key, [])]
    if isinstance(destinations, list):
        return list(dict.fromkeys(str(d) for d in destinations))
    return []


def _mime_parts(raw: str) -> tuple[str, str, str]:
    """(subject, html, text) of a raw MIME message."""
    message: EmailMessage = email.message_from_string(raw, policy=email.policy.default)
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    html_body = html_part.get_content() if html_part is not None else ""
    text_body = text_part.get_content() if text_part is not None else ""
    return str(message.get("subject", "")), html_body, text_body


class OutboxReader:
    """Reads moto's model data over HTTP. Raises :class:`UpstreamError` when the embedded AWS is unreachable."""

    def __init__(self, endpoint_url: str, session: requests.Session | None = None, timeout: float = 5.0) -> None:
        if session is None:
            import requests

            session = requests.Session()
        self.endpoint_url = endpoint_url.rstrip("/")
        self.session = session
        self.timeout = timeout
        self._first_seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def read(self) -> Outbox:
        data = self._model_data()
        ses = data.get("ses", {})
        emails = [
            *(self._simple(m) for m in ses.get("Message", [])),
            *(self._raw(m) for m in ses.get("RawMessage", [])),
            *(self._templated(m) for m in ses.get("TemplateMessage", [])),
        ]
        sms = [self._sms(m) for m in data.get("sns", {}).get("SMS", [])]
        return Outbox(emails=emails, sms=sms)

    def _model_data(self) -> dict[str, Any]:
        import requests

        try:
            response = self.session.get(f"{self.endpoint_url}/moto-api/data.json", timeout=self.timeout)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
        except (requests.RequestException, ValueError) as exc:
            logger.exception("Could not read the embedded AWS's sent messages")
            raise UpstreamError("the embedded AWS did not answer") from exc
        return data

    def _seen(self, message_id: str) -> str:
        with self._lock:
            return self._first_seen.setdefault(message_id, datetime.now(UTC).isoformat(timespec="seconds"))

    def _email(
        self, message_id: str, source: str, recipients: list[str], subject: str, html_body: str, text: str
    ) -> SentEmail:
        return SentEmail(
            id=message_id,
            source=source,
            destinations=recipients,
            subject=subject,
            html=html_body,
            text=text or html_to_text(html_body),
            timestamp=self._seen(message_id),
            links=extract_links(html_body, text),
        )

    def _simple(self, message: dict[str, Any]) -> SentEmail:
        # moto keeps one body: the HTML part when there is one, else the text part.
        body = str(message.get("body", ""))
        html_body, text = (body, "") if _looks_like_html(body) else ("", body)
        return self._email(
            str(message.get("id", "")),
            str(message.get("source", "")),
            _recipients(message.get("destinations")),
            str(message.get("subject", "")),
            html_body,
            text,
        )

    def _raw(self, message: dict[str, Any]) -> SentEmail:
        subject, html_body, text = _mime_parts(str(message.get("raw_data", "")))
        return self._email(
            str(message.get("id", "")),
            str(message.get("source", "")),
            _recipients(message.get("destinations")),
            subject,
            html_body,
            text,
        )

    def _templated(self, message: dict[str, Any]) -> SentEmail:
        data = str(message.get("template_data", ""))
        return self._email(
            str(message.get("id", "")),
            str(message.get("source", "")),
            _recipients(message.get("destinations")),
            f"(template {message.get('template', '')})",
            "",
            data,
        )

    def _sms(self, message: dict[str, Any]) -> SentSms:
        message_id = str(message.get("message_id", ""))
        text = str(message.get("message", ""))
        return SentSms(
            id=message_id,
            phone_number=str(message.get("phone_number", "")),
            message=text,
            timestamp=self._seen(message_id),
            links=extract_links(text),
        )
