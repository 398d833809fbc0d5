"""The words of every message we send, in English and French, and their rendering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.adapters.idempotency import Once
    from chalicelib.adapters.messaging import Email, Mailer

TEXT = {
    "en": {
        "invitation": {
            "subject": "{lender} invites you to its secure customer portal",
            "greeting": "Hello",
            "intro": "{lender} has invited you to its secure customer portal, where you can link your bank account "
            "and upload your statements for your application.",
            "button": "Open my customer portal",
            "fallback": "If the button does not work, copy this link into your browser:",
            "expiry": "This personal link expires on",
            "security": "Only you should use this link. If you were not expecting this email, you can ignore it.",
            "sms": "{lender}: link your bank & send statements: {url} Reply STOP to opt out",
        },
        "confirmation": {
            "subject": "Confirm your email for {lender}",
            "greeting": "Hello",
            "intro": "Please confirm your email address to finish creating your account with {lender}.",
            "button": "Confirm my email",
            "fallback": "If the button does not work, copy this link into your browser:",
            "expiry": "This link expires on",
            "security": "If you did not sign up, you can ignore this email.",
            "sms": "{lender}: confirm your email: {url} Reply STOP to opt out",
        },
        "lender_verification": {
            "subject": "Confirm your email so {lender} can start inviting customers",
            "greeting": "Hello",
            "intro": "Please confirm this address for {lender}. Until you do, invitations reach only this "
            "address, so nobody else can send in your name.",
            "button": "Confirm my email",
            "fallback": "If the button does not work, copy this link into your browser:",
            "expiry": "This link works once and expires on",
            "security": "If you did not sign up, ignore this email: nothing will be sent in this name.",
        },
        "staff_invite": {
            "subject": "You are invited to the {lender} lender console",
            "greeting": "Hello",
            "intro": "You are invited to join {lender} on the lender console, where your team invites customers "
            "and follows their applications. Choose your password to finish.",
            "button": "Choose my password",
            "fallback": "If the button does not work, copy this link into your browser:",
            "expiry": "This link works once and expires on",
            "security": "If you were not expecting this invitation, you can ignore this email.",
        },
        "staff_reset": {
            "subject": "Reset your {lender} console password",
            "greeting": "Hello",
            "intro": "Someone asked to reset the password of your {lender} lender console account. "
            "Choose a new password with the button below.",
            "button": "Choose a new password",
            "fallback": "If the button does not work, copy this link into your browser:",
            "expiry": "This link works once and expires on",
            "security": "If you did not ask for this, ignore this email: your password stays the same.",
        },
    },
    "fr": {
        "lender_verification": {
            "subject": "Confirmez votre courriel pour que {lender} puisse inviter ses clients",
            "greeting": "Bonjour",
            "intro": "Veuillez confirmer cette adresse pour {lender}. D'ici là, les invitations ne parviennent "
            "qu'à cette adresse : personne d'autre ne peut écrire en votre nom.",
            "button": "Confirmer mon courriel",
            "fallback": "Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :",
            "expiry": "Ce lien fonctionne une fois et expire le",
            "security": "Si vous ne vous êtes pas inscrit, ignorez ce courriel : rien ne sera envoyé à ce nom.",
        },
        "staff_invite": {
            "subject": "Invitation à la console prêteur de {lender}",
            "greeting": "Bonjour",
            "intro": "Vous êtes invité à rejoindre {lender} sur la console prêteur, où votre équipe invite des "
            "clients et suit leurs demandes. Choisissez votre mot de passe pour terminer.",
            "button": "Choisir mon mot de passe",
            "fallback": "Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :",
            "expiry": "Ce lien fonctionne une fois et expire le",
            "security": "Si vous n'attendiez pas cette invitation, ignorez ce courriel.",
        },
        "staff_reset": {
            "subject": "Réinitialiser votre mot de passe de la console {lender}",
            "greeting": "Bonjour",
            "intro": "Quelqu'un a demandé à réinitialiser le mot de passe de votre compte de la console prêteur "
            "de {lender}. Choisissez un nouveau mot de passe avec le bouton ci-dessous.",
            "button": "Choisir un nouveau mot de passe",
            "fallback": "Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :",
            "expiry": "Ce lien fonctionne une fois et expire le",
            "security": "Si vous n'avez rien demandé, ignorez ce courriel : votre mot de passe ne change pas.",
        },
        "invitation": {
            "subject": "{lender} vous invite sur son portail client sécurisé",
            "greeting": "Bonjour",
            "intro": "{lender} vous invite sur son portail client sécurisé pour lier votre compte bancaire et "
            "téléverser vos relevés pour votre demande.",
            "button": "Ouvrir mon portail client",
            "fallback": "Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :",
            "expiry": "Ce lien personnel expire le",
            "security": "Ce lien vous est réservé. Si vous n'attendiez pas ce courriel, vous pouvez l'ignorer.",
            "sms": "{lender}: liez votre banque, vos relevés: {url} Répondez STOP pour désabonner",
        },
        "confirmation": {
            "subject": "Confirmez votre courriel pour {lender}",
            "greeting": "Bonjour",
            "intro": "Veuillez confirmer votre adresse courriel pour terminer la création de votre compte chez {lender}.",
            "button": "Confirmer mon courriel",
            "fallback": "Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :",
            "expiry": "Ce lien expire le",
            "security": "Si vous ne vous êtes pas inscrit, ignorez ce courriel.",
            "sms": "{lender} : confirmez votre courriel : {url} Répondez STOP pour désabonner",
        },
    },
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def render_email(
    template: str,
    locale: str,
    *,
    lender: str,
    url: str,
    name: str | None,
    expires: datetime,
    colour: str,
    logo_url: str | None,
) -> RenderedEmail:
    from chalicelib.web import render

    words = {k: v.format(lender=lender, url=url) for k, v in TEXT.get(locale, TEXT["en"])[template].items()}
    context = {
        "t": words,
        "subject": words["subject"],
        "locale": locale,
        "lender": lender,
        "url": url,
        "name": name,
        "expires": expires.strftime("%Y-%m-%d"),
        "colour": colour,
        "logo_url": logo_url,
    }
    return RenderedEmail(
        subject=words["subject"],
        html=render("email/message.html", **context),
        text=render("email/message.txt", **context),
    )


# A lender name is shortened (never below this) so that the message fits one SMS where it can.
MIN_SMS_LENDER = 12


def render_sms(template: str, locale: str, *, lender: str, url: str) -> str:
    """The SMS text, with the opt-out wording A2P messaging requires, in one segment where possible."""
    from chalicelib.domain.sms import segments

    words = TEXT.get(locale, TEXT["en"])[template]["sms"]
    text = words.format(lender=lender, url=url)
    if segments(text) > 1:
        room = 160 - len(words.format(lender="", url=url))
        shorter = lender[: max(room, MIN_SMS_LENDER)].rstrip()
        text = words.format(lender=shorter, url=url)
    return text


def sender_display(name: str, platform: str) -> str:
    """The From display name of every email: the lender's name "via" the platform, never a bare string that
    could pass for someone else (issue 15, honest sender identity)."""
    return f"{name} via {platform}"


def send_once(mailer: Mailer, once: Once, key: str, email: Email) -> str:
    """Send one transactional email at most once per ``key``; ``sent`` or ``refused`` (final). Raises UpstreamError."""
    from chalicelib.errors import DeliveryRefused

    def effect() -> dict[str, Any]:
        try:
            return {"status": "sent", "message_id": mailer.send(email)}
        except DeliveryRefused as exc:
            return {"status": "refused", "detail": exc.message}

    return str(once(key, effect)["status"])
