"""The words of the join, confirmation and sign-in pages, in English and French.

Placeholders: ``{lender}``, ``{domain}``, ``{email}``, ``{wait}``.
"""

from __future__ import annotations

from typing import Any

WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "join_title": "Create your account",
        "join_intro": "{lender} invites you to create your account, where you will share your banking information "
        "and documents securely.",
        "email": "Email",
        "email_hint": "Use the email address at which {lender} invited you.",
        "open_join_intro": "Create your account with {lender} to share your banking information and documents "
        "securely.",
        "open_email_hint": "If {lender} invited you, use the email address the invitation was sent to.",
        "business_name": "Business name",
        "password": "Password",
        "password_hint": "12 to 128 characters. A few unrelated words make a strong password that is easy to remember.",
        "account_subdomain": "Account subdomain",
        "account_subdomain_hint": "You will sign in at https://your-subdomain.{domain}. "
        "Lowercase letters, digits and hyphens.",
        "create": "Create Account",
        "errors_heading": "Please correct the following:",
        "join_url_note": "Your lender's join page: ",
        "problems": {
            "email": {
                "invalid": "Enter a valid email address, like name@example.com.",
                "already_joined": "An account already exists for this email. Please sign in instead.",
            },
            "business_name": {"required": "Enter your business name.", "too_long": "Use at most 200 characters."},
            "password": {"too_short": "Use at least 12 characters.", "too_long": "Use at most 128 characters."},
            "account_subdomain": {
                "required": "Choose the subdomain where you will sign in.",
                "invalid": "Use 3 to 63 lowercase letters, digits or hyphens, starting and ending with a letter "
                "or digit.",
                "reserved": "This name is reserved. Please choose another.",
                "taken": "This subdomain is already taken. Please choose another.",
            },
            "invitation_id": {"required": "Select your Business Legal Name."},
            "csrf_token": {"expired": "The form expired. Please submit it again."},
        },
        "not_on_list_title": "Email is not on our list",
        "not_on_list_intro": "We could not find an invitation from {lender} for this email address.",
        "checkpoint_1": "Check that you used the same email address at which {lender} invited you. If the "
        "invitation went to another address, sign up with that address.",
        "checkpoint_2": "If you have not received an invitation, {lender} has not invited you yet: please "
        "contact {lender} and ask them to add you to their invitation list.",
        "choose_title": "Select your Business Legal Name",
        "choose_intro": "{lender} has invited more than one business with this email address. Which business "
        "are you signing up?",
        "continue": "Continue",
        "check_title": "Check your email",
        "check_body": "We sent a confirmation link to {email}. Click the link in the email to finish creating "
        "your account. It expires in 24 hours.",
        "check_body_any": "We sent a confirmation link to your email address. Click the link in the email to "
        "finish creating your account. It expires in 24 hours.",
        "check_resend": "No email? Check your spam folder, or ask for a new link.",
        "confirm_title": "Confirm your email",
        "confirm_body": "Confirm your email address to finish creating your account {account}.",
        "confirm_button": "Confirm my email",
        "confirm_password_hint": "Enter the password you chose when you created this account.",
        "confirm_refused": "The password is incorrect.",
        "confirm_not_you": "Did not create this account, or forgot its password? Create your account again on "
        "{lender}'s join page: the new sign-up replaces this one.",
        "done_title": "Your account is ready",
        "done_body": "Sign in at your account address with the username admin or your email address, and the "
        "password you chose:",
        "sign_in_now": "Sign in now",
        "invalid_title": "This link has expired or was already used",
        "invalid_body": "Confirmation links work once and expire after 24 hours. If you already confirmed your "
        "email, sign in at your account address. Otherwise, ask for a new link:",
        "used_title": "You have already confirmed your email",
        "used_body": "This confirmation link was used. Your account is ready: sign in at your account address.",
        "resend": "Send a new link",
        "resent_title": "Check your email",
        "resent_body": "If a sign-up with this email address is waiting for confirmation, we sent it a new link.",
        "chosen_title": "You already chose your business",
        "chosen_body_confirm": "Your sign-up went through. To finish it, check your email: click the link we sent "
        "you to confirm your email address.",
        "chosen_body_ready": "Your sign-up went through and your account is ready.",
        "gone_title": "Your choice of business is no longer open",
        "gone_body": "We could not find a sign-up waiting for you to choose your business on this page.",
        "gone_if_chosen_confirm": "If you already chose your business, your sign-up went through: check your email "
        "for the link that finishes it.",
        "gone_if_chosen_ready": "If you already chose your business, your sign-up went through: sign in at the "
        "account address you chose.",
        "gone_if_lapsed": "If you did not choose within {minutes} minutes of starting, nothing was saved: please "
        "start again.",
        "start_again": "Start again",
        "login_title": "Sign in",
        "username": "Username or email",
        "username_hint": "Your username is admin, or use your email address.",
        "sign_in": "Sign in",
        "bad_credentials": "The username or password is incorrect.",
        "unconfirmed": "Please confirm your email first: click the link in the email we sent you.",
        "inactive": "This account is inactive. Please contact your lender.",
        "too_many_title": "Too many attempts",
        "too_many_body": "For your security we paused this for a while. Please try again in {wait}.",
        "minutes": "{n} minutes",
        "minute": "1 minute",
        "seconds": "{n} seconds",
        "not_found_title": "Page not found",
        "not_found_body": "We could not find this page. Please check the address you were given.",
        "unavailable_title": "Something went wrong",
        "unavailable_body": "Something went wrong on our side. Please try again in a moment.",
    },
    "fr": {
        "join_title": "Créez votre compte",
        "join_intro": "{lender} vous invite à créer votre compte, où vous partagerez vos renseignements bancaires "
        "et vos documents en toute sécurité.",
        "email": "Courriel",
        "email_hint": "Utilisez l'adresse courriel à laquelle {lender} vous a invité.",
        "open_join_intro": "Créez votre compte auprès de {lender} pour partager vos renseignements bancaires et vos "
        "documents en toute sécurité.",
        "open_email_hint": "Si {lender} vous a invité, utilisez l'adresse courriel à laquelle l'invitation a été "
        "envoyée.",
        "business_name": "Nom de l'entreprise",
        "password": "Mot de passe",
        "password_hint": "De 12 à 128 caractères. Quelques mots sans rapport font un mot de passe solide et facile "
        "à retenir.",
        "account_subdomain": "Sous-domaine du compte",
        "account_subdomain_hint": "Vous vous connecterez à https://votre-sous-domaine.{domain}. "
        "Lettres minuscules, chiffres et traits d'union.",
        "create": "Créer le compte",
        "errors_heading": "Veuillez corriger ce qui suit :",
        "join_url_note": "Page d'inscription de votre prêteur : ",
        "problems": {
            "email": {
                "invalid": "Entrez une adresse courriel valide, par exemple nom@exemple.com.",
                "already_joined": "Un compte existe déjà pour ce courriel. Veuillez plutôt vous connecter.",
            },
            "business_name": {
                "required": "Entrez le nom de votre entreprise.",
                "too_long": "Utilisez au plus 200 caractères.",
            },
            "password": {
                "too_short": "Utilisez au moins 12 caractères.",
                "too_long": "Utilisez au plus 128 caractères.",
            },
            "account_subdomain": {
                "required": "Choisissez le sous-domaine où vous vous connecterez.",
                "invalid": "Utilisez de 3 à 63 lettres minuscules, chiffres ou traits d'union, commençant et "
                "finissant par une lettre ou un chiffre.",
                "reserved": "Ce nom est réservé. Veuillez en choisir un autre.",
                "taken": "Ce sous-domaine est déjà pris. Veuillez en choisir un autre.",
            },
            "invitation_id": {"required": "Sélectionnez la raison sociale de votre entreprise."},
            "csrf_token": {"expired": "Le formulaire a expiré. Veuillez le soumettre de nouveau."},
        },
        "not_on_list_title": "Ce courriel n'est pas sur notre liste",
        "not_on_list_intro": "Nous n'avons trouvé aucune invitation de {lender} pour cette adresse courriel.",
        "checkpoint_1": "Vérifiez que vous utilisez la même adresse courriel que celle à laquelle {lender} vous a "
        "invité. Si l'invitation a été envoyée à une autre adresse, inscrivez-vous avec celle-ci.",
        "checkpoint_2": "Si vous n'avez pas reçu d'invitation, {lender} ne vous a pas encore invité : veuillez "
        "communiquer avec {lender} pour être ajouté à sa liste d'invitations.",
        "choose_title": "Sélectionnez la raison sociale de votre entreprise",
        "choose_intro": "{lender} a invité plus d'une entreprise avec cette adresse courriel. Quelle entreprise "
        "inscrivez-vous ?",
        "continue": "Continuer",
        "check_title": "Vérifiez vos courriels",
        "check_body": "Nous avons envoyé un lien de confirmation à {email}. Cliquez sur le lien du courriel pour "
        "terminer la création de votre compte. Il expire dans 24 heures.",
        "check_body_any": "Nous avons envoyé un lien de confirmation à votre adresse courriel. Cliquez sur le lien "
        "du courriel pour terminer la création de votre compte. Il expire dans 24 heures.",
        "check_resend": "Pas de courriel ? Vérifiez vos indésirables, ou demandez un nouveau lien.",
        "confirm_title": "Confirmez votre courriel",
        "confirm_body": "Confirmez votre adresse courriel pour terminer la création de votre compte {account}.",
        "confirm_button": "Confirmer mon courriel",
        "confirm_password_hint": "Entrez le mot de passe choisi à la création de ce compte.",
        "confirm_refused": "Le mot de passe est incorrect.",
        "confirm_not_you": "Vous n'avez pas créé ce compte, ou avez oublié son mot de passe ? Créez de nouveau votre "
        "compte sur la page d'inscription de {lender} : la nouvelle inscription remplace celle-ci.",
        "done_title": "Votre compte est prêt",
        "done_body": "Connectez-vous à l'adresse de votre compte avec le nom d'utilisateur admin ou votre adresse "
        "courriel, et le mot de passe choisi :",
        "sign_in_now": "Me connecter",
        "invalid_title": "Ce lien a expiré ou a déjà été utilisé",
        "invalid_body": "Les liens de confirmation ne servent qu'une fois et expirent après 24 heures. Si vous avez "
        "déjà confirmé votre courriel, connectez-vous à l'adresse de votre compte. Sinon, demandez un nouveau lien :",
        "used_title": "Vous avez déjà confirmé votre courriel",
        "used_body": "Ce lien de confirmation a déjà servi. Votre compte est prêt : connectez-vous à l'adresse de "
        "votre compte.",
        "resend": "Envoyer un nouveau lien",
        "resent_title": "Vérifiez vos courriels",
        "resent_body": "Si une inscription avec cette adresse courriel attend sa confirmation, nous lui avons "
        "envoyé un nouveau lien.",
        "chosen_title": "Vous avez déjà choisi votre entreprise",
        "chosen_body_confirm": "Votre inscription a été reçue. Pour la terminer, vérifiez vos courriels : cliquez "
        "sur le lien que nous vous avons envoyé pour confirmer votre adresse courriel.",
        "chosen_body_ready": "Votre inscription a été reçue et votre compte est prêt.",
        "gone_title": "Le choix de votre entreprise n'est plus ouvert",
        "gone_body": "Nous n'avons trouvé aucune inscription en attente du choix de votre entreprise sur cette page.",
        "gone_if_chosen_confirm": "Si vous avez déjà choisi votre entreprise, votre inscription a été reçue : "
        "vérifiez vos courriels pour le lien qui la termine.",
        "gone_if_chosen_ready": "Si vous avez déjà choisi votre entreprise, votre inscription a été reçue : "
        "connectez-vous à l'adresse de compte que vous avez choisie.",
        "gone_if_lapsed": "Si vous n'avez pas choisi dans les {minutes} minutes suivant le début, rien n'a été "
        "enregistré : veuillez recommencer.",
        "start_again": "Recommencer",
        "login_title": "Connexion",
        "username": "Nom d'utilisateur ou courriel",
        "username_hint": "Votre nom d'utilisateur est admin, ou utilisez votre adresse courriel.",
        "sign_in": "Me connecter",
        "bad_credentials": "Le nom d'utilisateur ou le mot de passe est incorrect.",
        "unconfirmed": "Veuillez d'abord confirmer votre courriel : cliquez sur le lien que nous vous avons envoyé.",
        "inactive": "Ce compte est inactif. Veuillez communiquer avec votre prêteur.",
        "too_many_title": "Trop de tentatives",
        "too_many_body": "Pour votre sécurité, nous avons mis cette action en pause. Veuillez réessayer dans {wait}.",
        "minutes": "{n} minutes",
        "minute": "1 minute",
        "seconds": "{n} secondes",
        "not_found_title": "Page introuvable",
        "not_found_body": "Nous n'avons pas trouvé cette page. Veuillez vérifier l'adresse qui vous a été donnée.",
        "unavailable_title": "Un problème est survenu",
        "unavailable_body": "Un problème est survenu de notre côté. Veuillez réessayer dans un instant.",
    },
}


def words(locale: str) -> dict[str, Any]:
    return WORDS.get(locale, WORDS["en"])


def wait_text(locale: str, seconds: int) -> str:
    w = words(locale)
    if seconds < 60:
        return str(w["seconds"]).format(n=max(seconds, 1))
    minutes = (seconds + 59) // 60
    return str(w["minute"]) if minutes == 1 else str(w["minutes"]).format(n=minutes)
