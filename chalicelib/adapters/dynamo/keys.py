"""Every DynamoDB key of the single table, built in one place.

Tenant-owned items live under a partition key that starts with ``TENANT#<tenant_id>``, so no
query can forget the tenant. The few global items are lookups by a secret or a globally unique
name (API key hash, link-token hash, subdomain, SES message id) and carry the tenant id inside.
See docs/data-model.md for the access patterns.
"""

from __future__ import annotations

Key = dict[str, str]


def tenant_pk(tenant_id: str) -> str:
    if not tenant_id:
        raise ValueError("tenant_id is required for every tenant-owned key")
    return f"TENANT#{tenant_id}"


def tenant(tenant_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": "TENANT"}


def subdomain_guard(subdomain: str) -> Key:
    return {"PK": f"SUBDOMAIN#{subdomain}", "SK": "SUBDOMAIN"}


def sending_domain_claim(domain: str) -> Key:
    """One lender per sending domain (global: the domain is the lookup); carries the tenant id."""
    return {"PK": f"SENDINGDOMAIN#{domain}", "SK": "SENDINGDOMAIN"}


def api_key_lookup(key_hash: str) -> Key:
    return {"PK": f"APIKEY#{key_hash}", "SK": "APIKEY"}


def api_key_listing(tenant_id: str, key_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"APIKEY#{key_id}"}


API_KEY_LISTING_PREFIX = "APIKEY#"


def idempotency(tenant_id: str, scope: str, key: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"IDEMPOTENCY#{scope}#{key}"}


def invitation(tenant_id: str, invitation_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"INV#{invitation_id}"}


INVITATION_PREFIX = "INV#"


def invitation_pk(tenant_id: str, invitation_id: str) -> str:
    """Partition of one invitation's history and communications."""
    return f"{tenant_pk(tenant_id)}#INV#{invitation_id}"


def invitation_event(tenant_id: str, invitation_id: str, sort: str) -> Key:
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": f"EVENT#{sort}"}


EVENT_PREFIX = "EVENT#"


def send_request(tenant_id: str, invitation_id: str, send_id: str) -> Key:
    """The outbox record of one send (email and/or SMS), written with the change that asked for it."""
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": f"SEND#{send_id}"}


def communication(tenant_id: str, invitation_id: str, communication_id: str) -> Key:
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": f"COMM#{communication_id}"}


COMMUNICATION_PREFIX = "COMM#"


def email_guard(tenant_id: str, email: str, business_key: str) -> Key:
    """One open invitation per (email, business legal name) in a lender."""
    return {"PK": tenant_pk(tenant_id), "SK": f"EMAIL#{email}#{business_key}"}


def email_guard_prefix(email: str) -> str:
    return f"EMAIL#{email}#"


def suppression(tenant_id: str, email: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"SUPPRESS#{email}"}


def link_token(token_hash: str) -> Key:
    return {"PK": f"TOKEN#{token_hash}", "SK": "TOKEN"}


def provider_message(message_id: str) -> Key:
    """SES / SNS message id -> communication record (feedback carries no tenant)."""
    return {"PK": f"MSG#{message_id}", "SK": "MSG"}


def account_guard(account_subdomain: str) -> Key:
    return {"PK": f"ACCOUNT#{account_subdomain}", "SK": "ACCOUNT"}


def rate_limit(scope: str, subject: str, window: int) -> Key:
    return {"PK": f"RATE#{scope}#{subject}", "SK": f"W#{window}"}


def dedupe(scope: str, event_id: str) -> Key:
    """Marker that an inbound event (webhook, SQS body) had its effect once."""
    return {"PK": f"DEDUPE#{scope}#{event_id}", "SK": "DEDUPE"}


# Global secondary indexes. Each one is a tenant-scoped listing, newest first by invitation id.
GSI_STATUS = "GSI1"  # GSI1PK = TENANT#<id>#STATUS#<status>
GSI_OWNER = "GSI2"  # GSI2PK = TENANT#<id>#OWNER#<free-text owner> or TENANT#<id>#STAFF#<owner_staff_id>
GSI_DELIVERY = "GSI3"  # GSI3PK = TENANT#<id>#DELIVERY#<delivery_status>


def status_index(tenant_id: str, status: str) -> str:
    return f"{tenant_pk(tenant_id)}#STATUS#{status}"


def owner_index(tenant_id: str, owner: str) -> str:
    return f"{tenant_pk(tenant_id)}#OWNER#{owner.strip().lower()}"


def staff_owner_index(tenant_id: str, staff_id: str) -> str:
    """A teammate's invitations (``owner_staff_id``): never the free-text owners' keys, whatever their text."""
    return f"{tenant_pk(tenant_id)}#STAFF#{staff_id}"


def delivery_index(tenant_id: str, delivery_status: str) -> str:
    return f"{tenant_pk(tenant_id)}#DELIVERY#{delivery_status}"


def held_sends_index(tenant_id: str) -> str:
    """GSI1: the lender's sends held until its standing changes (admin email unconfirmed, paused, suspended),
    oldest first (sort key: the send request's creation time, then its id); released when it does."""
    return f"{tenant_pk(tenant_id)}#HELDSENDS"


# The lender-wide communication log reuses the three indexes (communication items carry their own
# GSI keys): GSI1 all of a lender's messages, GSI2 by channel, GSI3 by outcome. The sort key is the
# time sent then the id in every one, so a date range is a key condition and newest first is free.
def communications_index(tenant_id: str) -> str:
    return f"{tenant_pk(tenant_id)}#COMMS"


def communications_channel_index(tenant_id: str, channel: str) -> str:
    return f"{tenant_pk(tenant_id)}#COMMS#CHANNEL#{channel}"


def communications_outcome_index(tenant_id: str, status: str) -> str:
    return f"{tenant_pk(tenant_id)}#COMMS#OUTCOME#{status}"


def communication_sort(created_at: str, communication_id: str) -> str:
    return f"{created_at}#{communication_id}"


# --- bank links and documents (customer portal) -------------------------------------------------
def bank_link_state(tenant_id: str, invitation_id: str) -> Key:
    """The invitation's current bank-link attempt number (the counter that names executions)."""
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": "BANKLINK#STATE"}


def bank_link_attempt(tenant_id: str, invitation_id: str, attempt: int) -> Key:
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": f"BANKLINK#A#{attempt:04d}"}


def bank_link_slot(tenant_id: str, invitation_id: str, attempt: int, slot: int) -> Key:
    """One provider try of an attempt: its session, task token and decision."""
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": f"BANKLINK#A#{attempt:04d}#S#{slot}"}


BANK_LINK_PREFIX = "BANKLINK#"
BANK_LINK_ATTEMPT_PREFIX = "BANKLINK#A#"


def provider_session(provider: str, session_id: str) -> Key:
    """Provider session id -> tenant, invitation, attempt and slot (webhooks carry no tenant)."""
    return {"PK": f"PSESSION#{provider}#{session_id}", "SK": "PSESSION"}


def document(tenant_id: str, invitation_id: str, document_id: str) -> Key:
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": f"DOC#{document_id}"}


DOCUMENT_PREFIX = "DOC#"


def financial_data(tenant_id: str, invitation_id: str) -> Key:
    """The customer's financial data after a bank link: state, accounts, summary, where the rest is in S3."""
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": "FIN#DATA"}


def financial_connection(tenant_id: str, invitation_id: str, provider: str) -> Key:
    """What reaches the customer's data at one provider (a Plaid access token): kept to revoke it later."""
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": f"FIN#CONNECTION#{provider}"}


FINANCIAL_PREFIX = "FIN#"


def send_stats(tenant_id: str, day: str) -> Key:
    """A lender's sends and feedback of one UTC day (``YYYY-MM-DD``): quotas and the bounce/complaint rates."""
    return {"PK": tenant_pk(tenant_id), "SK": f"SENDSTATS#{day}"}


def lender_verification(tenant_id: str) -> Key:
    """The admin email's pending verification: the nonce its emailed link is derived from, and its expiry."""
    return {"PK": tenant_pk(tenant_id), "SK": "VERIFY"}


def audit(tenant_id: str, at: str, audit_id: str) -> Key:
    """One entry of the lender's audit log (pauses, suspensions, verification), oldest first."""
    return {"PK": tenant_pk(tenant_id), "SK": f"AUDIT#{at}#{audit_id}"}


def portal_submission(tenant_id: str, invitation_id: str) -> Key:
    """Marker that the customer submitted the portal, holding the published event's id."""
    return {"PK": invitation_pk(tenant_id, invitation_id), "SK": "PORTAL#SUBMITTED"}


# --- customer accounts (join page, sign-in) ------------------------------------------------------
def session(session_hash: str) -> Key:
    """A signed-in customer's session, found by the hash of the random id in their cookie."""
    return {"PK": f"SESSION#{session_hash}", "SK": "SESSION"}


def pending_join(join_hash: str) -> Key:
    """A join waiting for the customer to pick their business (several invitations share the email)."""
    return {"PK": f"PENDINGJOIN#{join_hash}", "SK": "PENDINGJOIN"}


# --- Lender notifications and outbound webhooks -----------------------------------------------
# Unread notifications sort before read ones ("U" > "R") in a newest-first query of the tenant's
# partition, so one Query serves "unread first" with an ordinary cursor.
NOTIFICATION_PREFIX = "NOTIF#"


def notification(tenant_id: str, read: bool, created_at: str, notification_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"NOTIF#{'R' if read else 'U'}#{created_at}#{notification_id}"}


def notification_ref(tenant_id: str, notification_id: str) -> Key:
    """Where a notification is found by id (its listing key moves when it is read)."""
    return {"PK": tenant_pk(tenant_id), "SK": f"NOTIFREF#{notification_id}"}


def notification_counter(tenant_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": "NOTIFCOUNT"}


def webhook_event(tenant_id: str, event_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"WHEVENT#{event_id}"}


WEBHOOK_DELIVERY_PREFIX = "WHDELIVERY#"


def webhook_delivery(tenant_id: str, delivery_id: str) -> Key:
    """One delivery attempt; delivery ids sort by time, so the listing is newest first."""
    return {"PK": tenant_pk(tenant_id), "SK": f"WHDELIVERY#{delivery_id}"}


def webhook_secrets(tenant_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": "WHSECRETS"}


# --- CSV imports ------------------------------------------------------------------------------
IMPORT_PREFIX = "IMPORT#"


def import_job(tenant_id: str, job_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"IMPORT#{job_id}"}


def export_job(tenant_id: str, export_id: str) -> Key:
    """A CSV export job: its filters, state and the S3 key of the file once written."""
    return {"PK": tenant_pk(tenant_id), "SK": f"EXPORT#{export_id}"}


def import_pk(tenant_id: str, job_id: str) -> str:
    """Partition of one import's stored chunks and per-chunk results."""
    return f"{tenant_pk(tenant_id)}#IMPORT#{job_id}"


def import_chunk(tenant_id: str, job_id: str, index: int) -> Key:
    return {"PK": import_pk(tenant_id, job_id), "SK": f"CHUNK#{index:05d}"}


def import_result(tenant_id: str, job_id: str, index: int) -> Key:
    return {"PK": import_pk(tenant_id, job_id), "SK": f"RESULT#{index:05d}"}


# --- lender staff and console sessions ----------------------------------------------------------
STAFF_PREFIX = "STAFF#"


def staff(tenant_id: str, staff_id: str) -> Key:
    return {"PK": tenant_pk(tenant_id), "SK": f"STAFF#{staff_id}"}


def staff_email(tenant_id: str, email: str) -> Key:
    """One staff member per email in a lender; sign-in finds the member here."""
    return {"PK": tenant_pk(tenant_id), "SK": f"STAFFEMAIL#{email}"}


def console_session(session_hash: str) -> Key:
    """A signed-in staff member's console session, found by the hash of the random id in their cookie."""
    return {"PK": f"CONSOLESESSION#{session_hash}", "SK": "CONSOLESESSION"}


def shown_once(session_hash: str) -> Key:
    """A secret a console session is shown once (the first API key, after sign-up), sealed with its session id."""
    return {"PK": f"CONSOLESESSION#{session_hash}", "SK": "SHOWNONCE"}
