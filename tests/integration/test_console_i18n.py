"""The console speaks the lender's language (its settings' locale) to its signed-in staff, and the browser's
(Accept-Language) to someone not signed in yet; ``<html lang>`` says which."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.integration.console_helpers import Browser, sign_up


def in_french(admin: Browser) -> None:
    page = admin.get("/console/settings")
    saved = admin.post(
        "/console/settings",
        {
            "require_invitation": "yes",
            "require_email_confirmation": "no",
            "default_banking_integration": "waterfall",
            "invitation_ttl_days": "30",
            "locale": "fr",
            "provider_1": "plaid",
        },
        page.csrf(),
    )
    assert saved.status == 303, saved.text[:2000]


def text(page: Any) -> str:
    return html.unescape(page.text)


def test_a_french_lenders_officer_sees_the_console_in_french(client: Any) -> None:
    admin, _ = sign_up(client)
    in_french(admin)

    invitations = admin.get("/console/invitations")
    assert invitations.status == 200
    shown = text(invitations)
    assert '<html lang="fr">' in shown and invitations.headers.get("Content-Language") == "fr"
    for words in ("Ajouter un client", "Téléverser une liste de comptes", "Journal des communications", "Paramètres"):
        assert words in shown, words
    assert ">Add customer<" not in shown and "Communication log" not in shown

    form = admin.get("/console/invitations/new")
    shown = text(form)
    for words in ("Prénom", "Raison sociale", "Inviter par", "Courriel et SMS", "Cascade (recommandée)"):
        assert words in shown, words
    assert '>Responsable <span class="muted">(obligatoire)</span></label>' in shown
    # An error made in Python (the form's) is in French too.
    refused = admin.post("/console/invitations/new", {"first_name": "Léa", "send": "1"}, form.csrf())
    assert refused.status == 400
    assert "Il y a un problème" in text(refused) and "Courriel : ce champ est obligatoire" in text(refused).replace(
        "\u00a0", " "
    )

    owner = re.search(r'id="owner".*?<option value="([^"]*)" selected', form.text, re.S)
    assert owner, "the add-customer form preselects the signed-in officer as owner"
    # The models' detailed reasons are English-only: a French page says what to enter instead.
    bad = admin.post(
        "/console/invitations/new",
        {"email": "pas un courriel", "owner": owner.group(1), "send": "1"},
        admin.get("/console/invitations/new").csrf(),
    )
    assert bad.status == 400 and "entrez une adresse courriel valide, p. ex. nom@exemple.com" in text(bad)
    created = admin.submit(
        "/console/invitations/new", None, {"email": "lea@example.com", "owner": owner.group(1), "send": "1"}
    )
    assert created.status == 303
    listing = text(admin.get("/console/invitations"))
    assert ">En attente</span>" in listing  # the PENDING badge; the data keeps PENDING
    assert 'class="badge PENDING"' in listing

    settings = text(admin.get("/console/settings"))
    for words in ("Exiger une invitation pour s'inscrire", "Langue des messages", "Enregistrer les paramètres"):
        assert words in settings, words


def test_an_english_lenders_officer_sees_english(client: Any) -> None:
    admin, _ = sign_up(client)
    page = admin.get("/console/invitations")
    assert '<html lang="en">' in page.text
    assert "Add customer" in page.text and "Communication log" in page.text and "Ajouter" not in page.text
    settings = text(admin.get("/console/settings"))
    assert "Require invitation to join" in settings and "Exiger" not in settings


def test_the_lenders_language_wins_over_the_browsers(client: Any) -> None:
    admin, _ = sign_up(client)
    in_french(admin)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in admin.cookies.items()), "Accept-Language": "en-US,en"}
    page = client.http.get("/console/invitations", headers=headers)
    assert '<html lang="fr">' in page.body.decode()


def test_the_sign_in_page_follows_the_browsers_language(client: Any) -> None:
    french = client.http.get("/console/login", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.8"})
    body = html.unescape(french.body.decode())
    assert french.status_code == 200 and '<html lang="fr">' in body
    assert "Connexion à la console du prêteur" in body and "Sous-domaine du prêteur" in body

    english = client.http.get("/console/login", headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert '<html lang="en">' in english.body.decode() and "Sign in to the lender console" in english.body.decode()
    unspecified = client.http.get("/console/login")
    assert '<html lang="en">' in unspecified.body.decode()

    # A refused sign-in answers in the same language, with the message made in Python.
    form = Browser(client)
    shown = client.http.get("/console/login", headers={"Accept-Language": "fr"})
    form._keep(shown)
    token = form.get("/console/login").csrf()
    refused = client.http.post(
        "/console/login",
        headers={
            "Accept-Language": "fr",
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in form.cookies.items()),
        },
        body=f"csrf_token={token}&lender=&email=&password=",
    )
    assert refused.status_code == 400
    assert "entrez le sous-domaine de votre prêteur" in html.unescape(refused.body.decode())
