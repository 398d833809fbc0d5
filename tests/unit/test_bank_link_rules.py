"""Waterfall and document rules: plain Python, no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.domain.invitation import CreateInvitation, PortalStatus
from chalicelib.domain.providers import (
    PROVIDERS,
    BankingIntegration,
    Provider,
    ProviderInfo,
    customer_name,
    known,
    label,
)
from chalicelib.domain.tenant import TenantSettings, TenantSettingsPatch
from chalicelib.domain.waterfall import (
    MAX_DOCUMENT_BYTES,
    UploadRequest,
    advance,
    document_key,
    duration_seconds,
    execution_input,
    execution_name,
    providers_for,
    reason_from_error,
    safe_filename,
)

ASL = Path(__file__).resolve().parents[2] / "infra" / "waterfall.asl.json"


def test_waterfall_uses_the_lender_order_and_a_chosen_provider_alone() -> None:
    settings = TenantSettings(provider_order=[Provider("mx"), Provider("plaid")])
    assert providers_for(BankingIntegration.WATERFALL, settings) == [Provider("mx"), Provider("plaid")]
    assert providers_for(BankingIntegration("finicity"), settings) == [Provider("finicity")]


def test_the_provider_order_may_name_every_registered_provider_once() -> None:
    # No cap tied to the state machine (it loops over the list): the only bound is each provider once.
    everyone = [Provider(k) for k in known()]
    assert TenantSettings(provider_order=everyone).provider_order == everyone
    with pytest.raises(ValidationError):
        TenantSettings(provider_order=[*everyone, everyone[0]])


def test_the_registry_decides_what_a_lender_may_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    # A provider only inside the waterfall (alone=False), not in new lenders' order (default=False).
    extra = ProviderInfo("yodlee", "Yodlee", "tests.nowhere", "Yodlee webhook", alone=False, default=False)
    monkeypatch.setitem(PROVIDERS, "yodlee", extra)
    assert known() == ["plaid", "finicity", "mx", "yodlee"]
    assert TenantSettings().provider_order == ["plaid", "finicity", "mx"]
    assert TenantSettingsPatch(provider_order=["yodlee", "mx"]).provider_order == ["yodlee", "mx"]
    with pytest.raises(ValidationError) as refused:
        CreateInvitation(email="a@b.co", owner="O", banking_integration="yodlee")
    (error,) = refused.value.errors()
    assert error["loc"] == ("banking_integration",)
    assert error["msg"] == "Input should be 'waterfall', 'plaid', 'finicity' or 'mx'"
    assert CreateInvitation(email="a@b.co", owner="O", banking_integration="mx").banking_integration == "mx"
    # Labels: the console's short name, the customer's full name; a key no longer registered shows as is.
    assert (label("finicity"), customer_name("finicity")) == ("Finicity", "Mastercard Open Banking (Finicity)")
    assert (label("gone"), customer_name("gone")) == ("gone", "gone")


def test_execution_input_matches_the_state_machine() -> None:
    payload = execution_input("t1", "inv_1", 2, [Provider("plaid"), Provider("finicity")], 900, 300)
    assert payload == {
        "tenant_id": "t1",
        "invitation_id": "inv_1",
        "attempt": 2,
        "providers": ["plaid", "finicity"],
        "timeout_seconds": 900,
        "heartbeat_seconds": 300,
        "last_error": None,
    }
    # Every path the ASL reads from its input exists in what we send.
    asl = json.loads(ASL.read_text())
    text = json.dumps(asl)
    for path in ("$.tenant_id", "$.invitation_id", "$.attempt", "$.providers", "$.timeout_seconds", "$.last_error"):
        assert path in text
    assert execution_name("inv_1", 2) == "inv_1-2"


def test_heartbeat_stays_below_the_timeout() -> None:
    assert execution_input("t", "i", 1, [Provider("mx")], 60, 300)["heartbeat_seconds"] == 59
    assert execution_input("t", "i", 1, [Provider("mx")], 1, 300)["heartbeat_seconds"] == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"Error": "institution_not_supported", "Cause": None}, "institution_not_supported"),
        ({"Error": "user_exited"}, "user_exited"),
        ({"Error": "provider_error"}, "provider_error"),
        ({"Error": "States.Timeout", "Cause": ""}, "timeout"),
        ({"Error": "States.HeartbeatTimeout"}, "timeout"),
        ({"Error": "States.TaskFailed"}, "provider_error"),
        (None, "provider_error"),
    ],
)
def test_reason_from_a_catch(error: dict[str, str] | None, reason: str) -> None:
    assert reason_from_error(error) == reason


def test_portal_status_only_moves_forward() -> None:
    assert advance(PortalStatus.OPENED, PortalStatus.BANK_LINKED) is PortalStatus.BANK_LINKED
    assert advance(PortalStatus.DOCUMENTS_UPLOADED, PortalStatus.BANK_LINKED) is None
    assert advance(PortalStatus.COMPLETED, PortalStatus.DOCUMENTS_UPLOADED) is None


def test_duration() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert duration_seconds(start, start + timedelta(seconds=90, milliseconds=5)) == 90.005
    assert duration_seconds(None, start) is None


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("statement.pdf", "statement.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\jo\\Relevé août.PDF", "Releve_aout.PDF"),
        ("   ", "document"),
        ("a" * 300 + ".csv", "a" * 96 + ".csv"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_document_key_is_scoped_to_lender_and_invitation() -> None:
    assert document_key("ten_1", "inv_1", "doc_1", "../x y.pdf") == "tenants/ten_1/invitations/inv_1/doc_1/x_y.pdf"


def test_upload_request_rules() -> None:
    ok = UploadRequest(filename="a.pdf", content_type="application/PDF; charset=binary", size=10)
    assert ok.content_type == "application/pdf"
    with pytest.raises(ValidationError, match="PDF, PNG, JPEG or CSV"):
        UploadRequest(filename="a.exe", content_type="application/x-msdownload", size=10)
    with pytest.raises(ValidationError):
        UploadRequest(filename="a.pdf", content_type="application/pdf", size=MAX_DOCUMENT_BYTES + 1)
    with pytest.raises(ValidationError):
        UploadRequest(filename="a.pdf", content_type="application/pdf", size=0)


def test_provider_run_transition_count() -> None:
    """The cost figure quoted in the ASL's Comment: count states entered on each path, n providers long."""
    states = json.loads(ASL.read_text())["States"]

    def path(providers: int, failures: int) -> list[str]:
        seen, name, index = [], "Begin", 0
        while True:
            seen.append(name)
            state = states[name]
            if state["Type"] in ("Succeed", "Fail"):
                return seen
            if state["Type"] == "Choice":
                name = state["Choices"][0]["Next"] if index < providers else state["Default"]
            elif name == "TryProvider" and index < failures:
                name = state["Catch"][0]["Next"]  # the provider's own failure
            else:
                index += name == "NextProvider"
                name = state["Next"]

    assert len(path(3, 0)) == 5  # Begin, HasProvider, TryProvider, FetchData, Linked
    assert len(path(3, 2)) == 11  # ... twice (HasProvider, TryProvider, NextProvider) ...
    for n in (1, 3, 4):
        assert path(n, n)[-2:] == ["Exhausted", "FellBackToDocuments"]
        assert len(path(n, n)) == 3 * n + 4


def test_stored_attempts_and_slots_load_as_records_whatever_version_wrote_them() -> None:
    """Items written before the records existed (ISO times with +00:00, counters read back as Decimal-made ints,
    the table's keys and type beside them) load as the records the services use."""
    from chalicelib.domain.waterfall import AttemptRecord, AttemptState, SessionLookup, SlotRecord, SlotState

    keys = {"PK": "TENANT#t#INV#i", "SK": "BANKLINK#0001", "type": "bank_link_attempt"}
    attempt = AttemptRecord.model_validate(
        {
            **keys,
            "tenant_id": "t",
            "invitation_id": "i",
            "attempt": 1,
            "state": "linked",
            "providers": ["plaid", "finicity"],
            "started_at": "2026-12-01T10:00:00+00:00",
            "ended_at": "2026-12-01T10:05:00Z",
            "execution_name": "i-1",
            "input": {"providers": ["plaid", "finicity"]},
            "linked_provider": "finicity",
            "current_slot": 2,
        }
    )
    assert attempt.state is AttemptState.LINKED
    assert attempt.providers == [Provider("plaid"), Provider("finicity")]
    assert attempt.ended_at == datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
    slot = SlotRecord.model_validate(
        {**keys, "type": "bank_link_slot", "tenant_id": "t", "invitation_id": "i", "attempt": 1, "slot": 2}
        | {"provider": "finicity", "state": "open", "task_token": "secret-token", "credential": "secret-credential"}
    )
    assert slot.state is SlotState.OPEN and not slot.state.closed
    assert "secret" not in repr(slot)  # task token and credential never reach a log line
    lookup = SessionLookup.model_validate(
        {"type": "provider_session", "tenant_id": "t", "invitation_id": "i", "attempt": 1, "slot": 2}
        | {"provider": "finicity"}
    )
    assert (lookup.attempt, lookup.slot) == (1, 2)
    with pytest.raises(ValidationError, match="state"):
        SlotRecord.model_validate(
            {"tenant_id": "t", "invitation_id": "i", "attempt": 1, "slot": 1} | {"provider": "plaid", "state": "lost"}
        )


def test_a_stored_record_that_fails_validation_does_not_quote_its_secrets() -> None:
    """repr=False keeps a secret out of repr, not out of pydantic's error text (input_value), which a worker's
    logger.exception would write: the records that hold a task token, a credential or an access token hide it."""
    from chalicelib.domain.financial import ConnectionRecord
    from chalicelib.domain.waterfall import SlotRecord

    with pytest.raises(ValidationError) as slot:
        SlotRecord.model_validate({"tenant_id": "t", "attempt": 1, "task_token": "TOKEN-SECRET", "credential": "CRED"})
    with pytest.raises(ValidationError) as connection:
        ConnectionRecord.model_validate({"provider": "plaid", "session_id": "s", "access": "access-sandbox-SECRET"})
    assert "SECRET" not in str(slot.value) and "CRED" not in str(slot.value)
    assert "SECRET" not in str(connection.value)
    assert "created_at" in str(connection.value)  # the error still names the field
