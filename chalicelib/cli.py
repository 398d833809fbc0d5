"""Command-line client for the CSV import: ``python -m chalicelib.cli import FILE --api URL --key KEY``;
and the operator's commands ``suspend TENANT --reason ...``, ``resume TENANT``, ``audit TENANT``,
``release-domain DOMAIN --reason ...``.

Uploads the file, shows a progress bar on stderr while the job runs, then prints a summary and
every rejected row (invalid or duplicate) with its reason. Standard library and ``requests`` only.

The upload carries an Idempotency-Key derived from the file's content and options, so running the
same command again (after a network error, say) reports on the same job instead of importing twice.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import requests

TIMEOUT = 60
BAR_WIDTH = 30


class CliError(Exception):
    pass


def _check(response: requests.Response) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = response.json()
    except ValueError:
        payload = {}
    if response.status_code >= 400:
        error = payload.get("error", {})
        message = error.get("message") or response.text[:200] or response.reason
        fields = error.get("fields") or {}
        details = "".join(f"\n  {name}: {reason}" for name, reason in fields.items())
        raise CliError(f"HTTP {response.status_code}: {message}{details}")
    return payload


def progress_line(job: dict[str, Any]) -> str:
    total = max(int(job.get("rows_total") or 0), 1)
    done = int(job.get("rows_done") or 0)
    filled = int(BAR_WIDTH * done / total)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"\r[{bar}] {done:,}/{total:,} rows ({100 * done // total}%) {job.get('state', '')}"


def summary(job: dict[str, Any], rejected: list[dict[str, Any]]) -> str:
    counts = job.get("counts", {})
    lines = [
        f"import {job['import_id']}: {job['state']}{' (dry run)' if job.get('dry_run') else ''}",
        f"  rows: {job.get('rows_done', 0):,} of {job.get('rows_total', 0):,}",
    ]
    if job.get("dry_run"):
        lines.append(f"  valid (would be created): {counts.get('valid', 0):,}")
    else:
        lines.append(f"  created: {counts.get('created', 0):,}")
    lines.append(f"  duplicate: {counts.get('duplicate', 0):,}")
    lines.append(f"  invalid: {counts.get('invalid', 0):,}")
    if job.get("error"):
        lines.append(f"  error: {job['error']}")
    if rejected:
        lines.append("rejected rows:")
        for r in sorted(rejected, key=lambda r: r["row"]):
            where = f"{r.get('field')}: " if r.get("field") else ""
            lines.append(f"  row {r['row']}: {r['outcome']} - {where}{r.get('reason') or ''}")
    return "\n".join(lines)


class ImportClient:
    def __init__(self, api: str, key: str, session: Any = None) -> None:
        self.api = api.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def upload(self, body: bytes, *, dry_run: bool, send: bool, idempotency_key: str) -> dict[str, Any]:
        response = self.session.post(
            f"{self.api}/v1/imports",
            params={"dry_run": str(dry_run).lower(), "send": str(send).lower()},
            data=body,
            headers={"Content-Type": "text/csv", "Idempotency-Key": idempotency_key},
            timeout=TIMEOUT,
        )
        return _check(response)

    def status(self, job_id: str, **params: Any) -> dict[str, Any]:
        response = self.session.get(f"{self.api}/v1/imports/{job_id}", params=params, timeout=TIMEOUT)
        return _check(response)

    def results(self, job_id: str, outcome: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500, "outcome": outcome}
            if cursor:
                params["cursor"] = cursor
            page = self.status(job_id, **params)
            found.extend(page["results"])
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def wait(self, job_id: str, poll: float, out: TextIO, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.status(job_id, limit=1)
            out.write(progress_line(job))
            out.flush()
            if job["state"] in ("completed", "failed"):
                out.write("\n")
                return job
            if time.monotonic() > deadline:
                out.write("\n")
                raise CliError(f"the import is still {job['state']} after {timeout:.0f} s; check it later")
            time.sleep(poll)


def import_file(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    body = Path(args.file).read_bytes()
    key = (
        args.idempotency_key
        or hashlib.sha256(body + f"|dry_run={args.dry_run}|send={not args.no_send}".encode()).hexdigest()
    )
    client = ImportClient(args.api, args.key)
    job = client.upload(body, dry_run=args.dry_run, send=not args.no_send, idempotency_key=key)
    err.write(f"uploaded {args.file}: import {job['import_id']}, {job['rows_total']:,} rows\n")
    job = client.wait(job["import_id"], args.poll, err, args.timeout)
    rejected = client.results(job["import_id"], "invalid") + client.results(job["import_id"], "duplicate")
    out.write(summary(job, rejected) + "\n")
    return 0 if job["state"] == "completed" else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chalicelib.cli", description="Lender onboarding command-line client")
    commands = p.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import", help="import invitations from a CSV file (see GET /v1/imports/template)")
    imp.add_argument("file", help="CSV file, UTF-8, header row first")
    imp.add_argument("--api", required=True, help="API base URL, e.g. http://127.0.0.1:8000")
    imp.add_argument("--key", required=True, help="the lender's API key")
    imp.add_argument("--dry-run", action="store_true", help="validate every row, create nothing")
    imp.add_argument("--no-send", action="store_true", help="create PENDING invitations without sending them")
    imp.add_argument("--idempotency-key", help="default: derived from the file's content and options")
    imp.add_argument("--poll", type=float, default=1.0, help="seconds between progress checks")
    imp.add_argument("--timeout", type=float, default=3600.0, help="give up waiting after this many seconds")
    # Operator commands: they act on the stack's AWS resources directly (the deployment's credentials and
    # settings environment), never through the lender API.
    sus = commands.add_parser("suspend", help="operator: stop every message of a lender (recorded in its audit log)")
    sus.add_argument("tenant_id")
    sus.add_argument("--reason", required=True, help="shown to the lender and kept in the audit log")
    res = commands.add_parser("resume", help="operator: lift a lender's suspension or pause")
    res.add_argument("tenant_id")
    aud = commands.add_parser(
        "audit", help="operator: print a lender's verification, pauses, suspensions and released domains"
    )
    aud.add_argument("tenant_id")
    rel = commands.add_parser(
        "release-domain",
        help="operator: free a sending domain whoever holds it (a verified claim never lapses): the lender goes back "
        "to the platform's address and the domain's new owner may claim it",
    )
    rel.add_argument("domain")
    rel.add_argument("--reason", required=True, help="kept in the lender's audit log")
    return p


def operator(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from chalicelib.bootstrap import sending, sending_domains
    from chalicelib.errors import DomainError

    out = out or sys.stdout
    service = sending()
    try:
        if args.command == "release-domain":
            released = sending_domains().release_claim(args.domain, args.reason)
            using = "it now sends from the platform's address" if released.in_use else "it was no longer using it"
            out.write(f"{released.domain} released from {released.tenant_id} ({using})\n")
        elif args.command == "suspend":
            tenant = service.suspend(args.tenant_id, args.reason)
            out.write(f"{tenant.tenant_id} suspended: {tenant.sending.suspended_reason}\n")
        elif args.command == "resume":
            tenant = service.resume(args.tenant_id)
            out.write(f"{tenant.tenant_id} may send again\n")
        else:
            for entry in service.audit_log(args.tenant_id):
                out.write(f"{entry['at']}  {entry['action']:<10} {entry['actor']:<9} {entry.get('reason') or ''}\n")
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("suspend", "resume", "audit", "release-domain"):
        return operator(args)
    try:
        return import_file(args)
    except CliError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except (OSError, requests.RequestException) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
