"""The whole system in one process: embedded AWS (moto server), the Chalice app over HTTP, SQS pollers.

Order matters: the resources must exist and the environment must point at them *before* ``app`` is
imported, because settings are read once per process and Chalice binds event sources at import.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from devstack.embedded_aws import writes
from devstack.heap import IdleCollector, freeze_after_full_collections
from devstack.poller import FunctionSettings, Pollers
from devstack.resources import create_resources
from devstack.scheduler import Scheduler
from devstack.state import StateKeeper

if TYPE_CHECKING:
    from chalice import Chalice
    from chalice.config import Config
    from chalice.local import LocalDevServer

    from devstack.embedded_aws import EmbeddedAws
    from devstack.sandbox import ProviderSandbox
    from devstack.ses_simulator import SesSimulator

log = logging.getLogger("devstack")

ROOT = Path(__file__).resolve().parent.parent
CHALICE_STAGE = "dev"
LISTEN_BACKLOG = 128

# Never let a developer's real credentials or profile reach the embedded AWS (or AWS itself).
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


class PortInUse(RuntimeError):
    pass


def client_host(host: str) -> str:
    """The address clients use: a wildcard bind is reached through the loopback address."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def ensure_port_free(host: str, port: int) -> None:
    """Fail fast: moto's ThreadedMotoServer waits forever when its port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"{host}:{port} is already in use ({exc.strerror})") from exc


class EndpointSession:
    """Session-like object for :func:`create_resources`: every client it makes talks to ``endpoint_url``."""

    def __init__(self, endpoint_url: str) -> None:
        import boto3

        self._session = boto3.session.Session()
        self.endpoint_url = endpoint_url

    def client(self, service: str, region_name: str | None = None, **kwargs: Any) -> Any:
        return self._session.client(  # type: ignore[call-overload]
            service, region_name=region_name, endpoint_url=self.endpoint_url, **kwargs
        )


def chalice_config(app: Chalice) -> Config:
    """What ``chalice local`` builds: .chalice/config.json for the stage, with the app attached.

    The stage's ``environment_variables`` are deliberately not applied (they say STAGE=prod).
    """
    from chalice.config import Config

    config_file = ROOT / ".chalice" / "config.json"
    from_disk = json.loads(config_file.read_text()) if config_file.exists() else {}
    return Config(
        chalice_stage=CHALICE_STAGE,
        user_provided_params={"chalice_app": app, "project_dir": str(ROOT)},
        config_from_disk=from_disk,
        default_params={"app_name": app.app_name, "project_dir": str(ROOT)},
    )


@dataclass
class LocalStack:
    host: str = "127.0.0.1"
    api_port: int = 8000
    moto_port: int = 5000
    sandbox_port: int = 8100
    region: str = "us-east-1"
    retry_visibility_s: int | None = 2
    # Where the embedded AWS's data is kept between runs (None: nothing is kept); ``fresh`` drops it first.
    state_dir: Path | None = None
    fresh: bool = False
    snapshot_every_s: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    restored: dict[str, int] | None = field(default=None, init=False)
    _moto: EmbeddedAws | None = field(default=None, init=False, repr=False)
    _server: LocalDevServer | None = field(default=None, init=False, repr=False)
    _http_thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _pollers: Pollers | None = field(default=None, init=False, repr=False)
    _sandbox: ProviderSandbox | None = field(default=None, init=False, repr=False)
    _ses_simulator: SesSimulator | None = field(default=None, init=False, repr=False)
    _scheduler: Scheduler | None = field(default=None, init=False, repr=False)
    _state: StateKeeper | None = field(default=None, init=False, repr=False)
    _idle_collector: IdleCollector | None = field(default=None, init=False, repr=False)

    @property
    def api_url(self) -> str:
        return f"http://{client_host(self.host)}:{self.api_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://{client_host(self.host)}:{self.sandbox_port}"

    @property
    def aws_url(self) -> str:
        return f"http://{client_host(self.host)}:{self.moto_port}"

    def start(self) -> None:
        """Start everything; on any failure stop what already started and re-raise."""
        ensure_port_free(self.host, self.moto_port)
        ensure_port_free(self.host, self.api_port)
        ensure_port_free(self.host, self.sandbox_port)
        freeze_after_full_collections()  # full collections walk only what is new (devstack/heap.py)
        try:
            self._start_aws()
            self._start_sandbox()
            app = self._configure_app()
            self._start_http(app)
            self._start_pollers(app)
            self._start_ses_simulator()
            self._scheduler = Scheduler(app, self.region)
            self._scheduler.start()
            if self._state is not None:
                self._state.start()
            self._idle_collector = IdleCollector(writes).start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Pollers first (they call the app and AWS), then HTTP, then the embedded AWS."""
        if self._idle_collector is not None:
            self._idle_collector.stop()
            self._idle_collector = None
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self._ses_simulator is not None:
            self._ses_simulator.stop()
            self._ses_simulator = None
        if self._pollers is not None:
            self._pollers.stop()
            self._pollers = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server.server_close()
            self._server = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None
        if self._state is not None:
            try:
                self._state.stop()  # the last snapshot, once nothing else writes
            except Exception:
                log.exception("Could not save the embedded AWS's state")
            self._state = None
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def _start_aws(self) -> None:
        from devstack.embedded_aws import EmbeddedAws

        # The request log of every long poll would drown the app's own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = EmbeddedAws(self.host, self.moto_port)
        self._moto.start()
        # moto's state machine runner calls the other services at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.moto_port)
        response = requests.post(
            f"{self.aws_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        )
        response.raise_for_status()

    def _start_sandbox(self) -> None:
        from devstack.sandbox import ProviderSandbox

        # Credentials come from the same variables (or defaults) the app's settings read.
        self._sandbox = ProviderSandbox(self.host, self.sandbox_port, api_url=self.api_url).start()
        self.sandbox_port = self._sandbox.port  # port 0 asks for any free port

    def _configure_app(self) -> Chalice:
        from chalicelib.domain.providers import known as known_providers

        for name in UNSET:
            os.environ.pop(name, None)
        os.environ.update(DUMMY_CREDENTIALS)
        os.environ.update({"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region})
        resources = create_resources(EndpointSession(self.aws_url), self.region)
        if self.state_dir is not None:
            self._state = StateKeeper(self.state_dir, self.region, self.snapshot_every_s)
            if self.fresh:
                self._state.clear()
            self.restored = self._state.restore()
        self.env = {
            **resources,
            "STAGE": "local",
            "AWS_ENDPOINT_URL": self.aws_url,
            "PUBLIC_BASE_URL": self.api_url,
            # Every bank-link partner is the local sandbox (<KEY>_BASE_URL by convention): the flow runs offline.
            **{f"{key.upper()}_BASE_URL": self.sandbox_url for key in known_providers()},
        }
        os.environ.update(self.env)
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "lender-onboarding")
        os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LenderOnboardingLocal")

        from chalicelib import bootstrap

        bootstrap.reset()
        app: Chalice = importlib.import_module("app").app
        return app

    def _start_http(self, app: Chalice) -> None:
        from chalice.deploy.validate import validate_routes
        from chalice.local import create_local_server

        from devstack.access_log import redact_access_log
        from devstack.gateway import answer_like_api_gateway

        validate_routes(app.routes)  # what `chalice local` checks: no point serving routes AWS would refuse
        self._server = create_local_server(app, chalice_config(app), self.host, self.api_port)
        # socketserver listens with a backlog of 5: a burst of connections (a page's assets, a client's
        # parallel calls) overflowed it and got connections reset. Listening again raises it.
        self._server.server.socket.listen(LISTEN_BACKLOG)
        redact_access_log(self._server)  # request lines carry link tokens and emails
        answer_like_api_gateway(self._server)  # an unknown route: the deployed 404 in the error shape
        self._http_thread = threading.Thread(target=self._server.server.serve_forever, name="http", daemon=True)
        self._http_thread.start()

    def _start_ses_simulator(self) -> None:
        """Faithful feedback for SES's mailbox-simulator addresses (see devstack/ses_simulator.py)."""
        from devstack.resources import SENDER_IDENTITY
        from devstack.ses_simulator import SesSimulator

        session = EndpointSession(self.aws_url)
        self._ses_simulator = SesSimulator(
            session.client("sns", region_name=self.region), self.env["SES_FEEDBACK_TOPIC_ARN"], self.region
        )
        ses = session.client("ses", region_name=self.region)
        self._ses_simulator.silence_canned_notifications(ses, SENDER_IDENTITY)
        self._ses_simulator.skip_sent()  # restored messages had their feedback in the previous run
        self._ses_simulator.start()

    def _start_pollers(self, app: Chalice) -> None:
        config = chalice_config(app)

        def function_settings(name: str) -> FunctionSettings:
            scoped = config.scope(CHALICE_STAGE, name)
            return FunctionSettings(
                memory_mb=scoped.lambda_memory_size or 128,
                timeout_s=scoped.lambda_timeout or 60,
            )

        self._pollers = Pollers(
            app,
            EndpointSession(self.aws_url).client("sqs", region_name=self.region),
            region=self.region,
            stage=CHALICE_STAGE,
            function_settings=function_settings,
            retry_visibility_s=self.retry_visibility_s,
        )
        started = self._pollers.start()
        for poller in started:
            log.info("Polling %s for %s", poller.queue_url, poller.function_name)
