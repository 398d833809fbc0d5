"""Routes: the customer's financial data after a bank link (accounts, summary, transactions, CSV)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.api.imports import csv_response
from chalicelib.api.routing import endpoint
from chalicelib.bootstrap import financial_data
from chalicelib.domain.financial import FinancialDataView, TransactionFilter, TransactionPage, TransactionQuery

if TYPE_CHECKING:
    from chalicelib.domain.tenant import Tenant

bp = Blueprint(__name__)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}/financial-data",
    "GET",
    summary=(
        "The customer's linked accounts, balances and underwriting summary; status pending while the data "
        "step runs after a link, failed with a reason when the provider never gave the data"
    ),
    response=FinancialDataView,
    errors=(404,),
    tags=("financial data",),
)
def get_financial_data(tenant: Tenant, invitation_id: str, **_: Any) -> FinancialDataView:
    return financial_data().view(tenant, invitation_id)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}/financial-data/transactions",
    "GET",
    summary="The customer's transactions, newest first; amounts are signed (positive = into the account)",
    query=TransactionQuery,
    response=TransactionPage,
    errors=(404,),
    tags=("financial data",),
)
def list_transactions(tenant: Tenant, invitation_id: str, query: TransactionQuery, **_: Any) -> TransactionPage:
    return financial_data().transactions(tenant, invitation_id, query)


@endpoint(
    bp,
    "/v1/invitations/{invitation_id}/financial-data.csv",
    "GET",
    summary="The customer's transactions as CSV (formula-like cells neutralised), with the list's filters",
    query=TransactionFilter,
    errors=(404,),
    tags=("financial data",),
    response_content_type="text/csv",
)
def export_transactions(tenant: Tenant, invitation_id: str, query: TransactionFilter, **_: Any) -> Response:
    text = financial_data().transactions_csv(tenant, invitation_id, query)
    return csv_response(text, f"{invitation_id}-transactions.csv")
