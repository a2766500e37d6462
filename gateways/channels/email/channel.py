"""E-mail over SMTP with the standard library, one message per recipient.

The body is multipart/alternative: plain text, and HTML with the alert's figures in a table and
an acknowledge button (the signed reply link). `Message-ID` is derived from the idempotency key,
so a message resent after a crash carries the same id (mail clients that thread or collapse by
Message-ID show it once); `X-Fengkong-Idempotency-Key` lets the local sink count duplicates.

Retry judgement follows RFC 5321 reply classes: 4xx and lost connections are worth retrying,
5xx (bad address, refused, authentication failed) are not.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

from gateways.channels.base import DeliveryResult, Notification, redact, resolve_secret

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "X-Fengkong-Idempotency-Key"
SEVERITY_COLOURS = {
    "info": "#2f6f9f",
    "warning": "#c77700",
    "critical": "#c62828",
    "emergency": "#7b1fa2",
}


def render_html(note: Notification) -> str:
    """The HTML part: title, text, a table of figures and the acknowledge button."""
    colour = SEVERITY_COLOURS.get(note.severity, "#333")
    rows = "".join(
        f"<tr><th align='left'>{html.escape(str(k))}</th>"
        f"<td align='right'>{html.escape(_fmt(v))}</td></tr>"
        for k, v in note.fields.items()
    )
    text = "<br>".join(html.escape(line) for line in note.text.splitlines())
    button = (
        f"<p><a href='{html.escape(note.ack_url, quote=True)}' style='background:{colour};"
        "color:#fff;padding:8px 16px;text-decoration:none'>确认 Acknowledge</a></p>"
        if note.ack_url
        else ""
    )
    return (
        "<!doctype html><html><body style='font-family:sans-serif'>"
        f"<h2 style='color:{colour}'>{html.escape(note.title)}</h2>"
        f"<p>{text}</p>"
        f"<table border='1' cellpadding='4' cellspacing='0'>{rows}</table>"
        f"{button}<p style='color:#888'>alert {html.escape(note.alert_id)} · "
        f"{html.escape(note.severity)}</p></body></html>"
    )


def _fmt(value: object) -> str:
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


class EmailChannel:
    """Sends a Notification as one e-mail to note.recipient."""

    kind = "email"
    reply_links = True  # shows note.ack_url as a button and a line: the Notifier makes one

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.host, self.port = host, port
        self.sender = sender
        self.timeout = timeout
        self.starttls = starttls
        self.use_ssl = use_ssl
        self._username = username
        self._password = password
        self._local = threading.local()  # one SMTP session per sending thread

    @classmethod
    def from_config(cls, cfg: Mapping) -> EmailChannel:
        """Keys: name, base_url (smtp://host:port or smtps://), from, username, password_env
        (or password for a local sink), starttls, timeout."""
        name = cfg.get("name", "email")
        base_url = cfg.get("base_url", "smtp://127.0.0.1:25")
        parts = urlsplit(base_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"channel {name!r}: base_url must be smtp://host:port or smtps://…")
        if not cfg.get("from"):
            raise ValueError(f"channel {name!r}: missing 'from'")
        username = cfg.get("username")
        password = None
        if username:
            password = resolve_secret(cfg, "password_env", "password", base_url=base_url)
        use_ssl = parts.scheme == "smtps"
        return cls(
            name,
            host=parts.hostname,
            port=parts.port or (465 if use_ssl else 25),
            sender=cfg["from"],
            username=username,
            password=password,
            starttls=bool(cfg.get("starttls", False)),
            use_ssl=use_ssl,
            timeout=float(cfg.get("timeout", 10.0)),
        )

    def __repr__(self) -> str:
        return f"EmailChannel(name={self.name!r}, host={self.host!r}, port={self.port})"

    def message(self, note: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[{note.severity.upper()}] {note.title}"
        msg["From"] = self.sender
        msg["To"] = note.recipient
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = f"<{note.idempotency_key}@fengkong.local>"
        msg[IDEMPOTENCY_HEADER] = note.idempotency_key
        text = note.plain()
        if note.ack_url:
            text += f"\n\n确认 Acknowledge: {note.ack_url}"
        msg.set_content(text)
        msg.add_alternative(render_html(note), subtype="html")
        return msg

    def _session(self) -> smtplib.SMTP:
        """This thread's open session, checked with NOOP, or a new one (connect, TLS, login).

        Reusing a session saves the connect/EHLO/AUTH/QUIT round trips of every message; a
        session found dead is replaced before the message goes out, so a resend never comes
        from a stale connection."""
        smtp = getattr(self._local, "smtp", None)
        if smtp is not None:
            try:
                if smtp.noop()[0] == 250:
                    return smtp
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        smtp = self._connect()
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        self._local.smtp = smtp
        return smtp

    def _drop(self) -> None:
        smtp = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def send(self, note: Notification) -> DeliveryResult:
        start = time.perf_counter()
        if "@" not in note.recipient:
            return self._fail(start, False, None, f"not an e-mail address: {note.recipient!r}")
        try:
            try:
                refused = self._session().send_message(self.message(note))
            except BaseException:
                self._drop()  # whatever went wrong, the next message starts a clean session
                raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return self._fail(start, all(400 <= c < 500 for c in codes), codes[0], str(exc))
        except smtplib.SMTPResponseException as exc:  # auth, sender, data errors
            code = exc.smtp_code
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            return self._fail(start, 400 <= code < 500, code, f"SMTP {code}: {text}")
        except (smtplib.SMTPServerDisconnected, TimeoutError) as exc:
            return self._fail(start, True, None, f"{type(exc).__name__}: {exc}")
        except smtplib.SMTPException as exc:  # e.g. no AUTH offered: a config problem
            return self._fail(start, False, None, f"{type(exc).__name__}: {exc}")
        except OSError as exc:  # refused connection, unreachable host
            return self._fail(start, True, None, f"{type(exc).__name__}: {exc}")
        if refused:
            return self._fail(start, False, None, f"refused: {sorted(refused)}")
        latency = (time.perf_counter() - start) * 1000
        return DeliveryResult(ok=True, retry=False, status=250, latency_ms=latency)

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            ctx = ssl.create_default_context()
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _fail(self, start: float, retry: bool, status: int | None, error: str) -> DeliveryResult:
        error = redact(error, self._password or "")
        log.info("email %s: send failed (retry=%s): %s", self.name, retry, error)
        return DeliveryResult(
            ok=False,
            retry=retry,
            status=status,
            error=error,
            latency_ms=(time.perf_counter() - start) * 1000,
            code=status,
        )
