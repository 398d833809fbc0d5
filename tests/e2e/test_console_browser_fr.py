"""The console in French in a real browser (Debian's Chromium, Playwright) on the local stack: a lender switches its
language to French and its officer's pages follow; a browser that prefers French gets the sign-in page in French.
Screenshots at 390 px and 1280 px go to ``test-output/console-fr-*.png``; French words are longer than English ones,
so at 390 px no page may scroll sideways."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.browser import chromium_executable
from tests.e2e.conftest import RunningStack
from tests.e2e.test_console_browser import PASSWORD, chromium, shoot
from tests.e2e.test_join_browser import CHROMIUM_ARGS, OUTPUT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_a_french_lenders_console(stack: RunningStack) -> None:
    from playwright.sync_api import expect

    subdomain = f"fr-{uuid.uuid4().hex[:8]}"
    OUTPUT.mkdir(exist_ok=True)
    executable = chromium_executable()  # skips on a developer machine without it, fails under CI (REQUIRE_BROWSER=1)
    with chromium() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            # Before sign-in there is no lender: the browser's language decides.
            visitor: Any = browser.new_context(locale="fr-CA", viewport={"width": 1280, "height": 900}).new_page()
            visitor.goto(f"{stack.api}/console/login")
            expect(visitor.get_by_role("heading", name="Connexion à la console du prêteur")).to_be_visible()
            expect(visitor.locator("html")).to_have_attribute("lang", "fr")
            shoot(visitor, "fr-login")

            page: Any = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{stack.api}/signup")
            page.get_by_label("Institution name").fill("Caisse Érable")
            page.get_by_label("Subdomain").fill(subdomain)
            page.get_by_label("Administrator email").fill(f"odile.{uuid.uuid4().hex[:6]}@caisse-erable.example")
            page.get_by_label("Your name").fill("Odile Ouellet")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Create account").click()
            page.get_by_role("link", name="Open the console").click()

            # The lender chooses French; every console page follows.
            page.goto(f"{stack.api}/console/settings")
            page.get_by_label("Language of messages").select_option("fr")
            page.get_by_role("button", name="Save settings").click()
            expect(page.get_by_role("heading", name="Paramètres", exact=True)).to_be_visible()
            expect(page.locator("html")).to_have_attribute("lang", "fr")
            shoot(page, "fr-settings")

            page.get_by_role("link", name="Invitations", exact=True).click()
            page.get_by_role("link", name="Ajouter un client").click()
            page.get_by_label("Courriel (obligatoire)").fill("pas un courriel")
            page.get_by_role("button", name="Ajouter un client").click()
            expect(page.get_by_role("alert")).to_contain_text("Il y a un problème")
            shoot(page, "fr-add-customer-errors")
            page.get_by_label("Prénom").fill("Geneviève")
            page.get_by_label("Nom", exact=True).fill("Desrochers-Vaillancourt")
            page.get_by_label("Courriel (obligatoire)").fill(f"genevieve.{uuid.uuid4().hex[:6]}@boulangerie.example")
            page.get_by_label("Raison sociale").fill("Boulangerie artisanale Desrochers-Vaillancourt inc.")
            page.get_by_label("Ajouter sans envoyer d'invitation pour l'instant").check()
            page.get_by_role("button", name="Ajouter un client").click()
            expect(page.locator(".notice")).to_contain_text("aucune invitation envoyée")
            expect(page.get_by_role("heading", name="Geneviève Desrochers-Vaillancourt")).to_contain_text("En attente")
            shoot(page, "fr-invitation-detail")

            page.get_by_role("link", name="Invitations", exact=True).click()
            expect(page.get_by_role("link", name="Notifications : 0 non lue")).to_be_visible()
            shoot(page, "fr-invitations")
        finally:
            browser.close()
