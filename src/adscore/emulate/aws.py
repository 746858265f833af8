"""``adscore emulate aws``: the Lambda handlers against moto, through the real delivery paths.

moto runs in server mode on 127.0.0.1 (a free port, a thread of this process) for DynamoDB, SNS,
SQS, S3 and Secrets Manager. :func:`run` creates what ``infra/aws/main.tf`` creates, with the
same names (``name_prefix`` ``adscore``): the ``adscore-state`` table (through
:func:`adscore.state.init_store`, as ``adscore state init`` does), the ``adscore-alerts`` and
``adscore-alarms`` topics, the ``adscore-cloudtrail-files`` and ``adscore-events`` queues with their
redrive policy to ``adscore-dlq``, the ``adscore-failed-invocations`` queue and a webhook secret.
It adds what a user owns: a CloudTrail bucket whose ``s3:ObjectCreated:*`` notification (prefix
``AWSLogs/``, suffix ``.json.gz``) goes to ``adscore-cloudtrail-files``, and ``adscore-alerts-tap``,
a queue subscribed to the alerts topic (raw message delivery) from which alerts are read as they
arrive.

Then each input record takes the path AWS gives it, into ``functions/aws/handler.py``. Input files
are sent one after the other in the order of their earliest record (the services deliver in time
order), each file's records in their own order:

- CloudTrail records (bare, or ``{"Records": [...]}`` files) are written as gzipped CloudTrail log
  files (``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`` +
  ``<account>_CloudTrail_<region>_<ts>_<rand>.json.gz``, one per input file and region) into the
  bucket; S3 announces each on the queue; the messages are received and handed to
  ``sqs_handler`` as the SQS event source mapping does (batches of 5,
  ``ReportBatchItemFailures``: acknowledged messages are deleted, failed ones come back until
  ``maxReceiveCount`` (5) moves them to ``adscore-dlq``);
- EventBridge events go to ``eventbridge_handler``, CloudWatch Logs subscription payloads to
  ``cloudwatch_logs_handler`` (asynchronous invocations: 2 retries, then the event is sent to
  ``adscore-failed-invocations`` as Lambda's dead-letter queue does);
- Kubernetes audit events are shipped as EKS ships them: CloudWatch Logs subscription payloads
  (gzip, base64) from ``/aws/eks/<cluster>/cluster``, stream ``kube-apiserver-audit-<id>``, one
  audit event per log event, to ``cloudwatch_logs_handler``;
- Kubernetes audit ``EventList`` records (a self-managed API server's webhook batch) and Docker
  Engine events (``adscore forward docker``) go to ``ingest_handler`` as Lambda Function URL
  requests (payload 2.0), with the bearer token and the Standard Webhooks signature
  (:mod:`adscore.emulate.ingest`); the token and signing secret are in Secrets Manager, as
  ``enable_ingest_endpoint`` creates them;
- anything else (Azure, GCP records) is skipped with the reason.

The handlers run in this process with the environment Terraform gives them (``ADSCORE_STATE``,
``ADSCORE_SINKS``, ``ADSCORE_CONFIG`` (the settings file), ``ADSCORE_WEBHOOK_SECRET`` = the
secret's ARN, ``POWERTOOLS_*``) plus the emulator's endpoint and fake credentials; the previous
environment is restored afterwards. The functions' logs and metrics (what CloudWatch Logs would
hold) go to a file, kept and named when something failed. With ``keep`` the event source mappings
stay on: a CloudTrail file put in the bucket (or an EventBridge event sent to ``adscore-events``)
reaches ``sqs_handler`` and its alerts are printed, until Ctrl-C.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import importlib
import importlib.util
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import orjson

from adscore.emulate import (
    NAME_PREFIX,
    WEBHOOK_SECRET,
    EmulationResult,
    EmulatorMissing,
    StopSignals,
    function_file,
    iter_records,
)
from adscore.emulate.ingest import IngestSender, ingest_kind, ingest_settings
from adscore.errors import AdscoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path
    from types import ModuleType

    from moto.server import ThreadedMotoServer

    from adscore.emulate import Reporter

__all__ = [
    "ACCOUNT",
    "AWS_VARS_REMOVED",
    "CLUSTER",
    "REGION",
    "LambdaContext",
    "MotoServer",
    "Names",
    "moto_available",
    "run",
]

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
#: The EKS cluster whose control-plane audit log group Kubernetes audit events are shipped from.
CLUSTER = "adscore-emulated"

#: Removed from the environment while the emulation runs: anything that could reach a real account
#: (a profile, its files) or send one service elsewhere than moto.
AWS_VARS_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_ENDPOINT_OVERRIDE = re.compile(r"^AWS_ENDPOINT_URL_[A-Z0-9_]+$|^AWS_IGNORE_CONFIGURED_ENDPOINT_URLS$")

# infra/aws/variables.tf defaults
LAMBDA_TIMEOUT_SECONDS = 300
MAX_RECEIVE_COUNT = 5
CLOUDTRAIL_BATCH_SIZE = 5
SQS_BATCH_SIZE = 10  # an SQS ReceiveMessage returns at most 10 (sqs_batch_size is 100 with batching windows)
ASYNC_RETRIES = 2  # aws_lambda_function_event_invoke_config.maximum_retry_attempts
LOG_LEVEL = "INFO"

#: Records per CloudTrail file, and bytes of log events per CloudWatch Logs payload (the real
#: limits are larger; these keep each invocation small).
MAX_FILE_RECORDS = 5_000
MAX_CWLOGS_BYTES = 200_000
#: How long alerts are still awaited after the last invocation with nothing new arriving.
QUIET_SECONDS = 1.0

_FUNCTIONS = {
    "eventbridge": "eventbridge_handler",
    "sqs": "sqs_handler",
    "cwlogs": "cloudwatch_logs_handler",
    "ingest": "ingest_handler",
}

PATH_S3 = "cloudtrail file -> s3 -> sqs -> sqs_handler"
PATH_EVENTBRIDGE = "eventbridge -> eventbridge_handler"
PATH_CWLOGS = "cloudwatch logs -> cloudwatch_logs_handler"
PATH_EKS = "eks audit -> cloudwatch logs -> cloudwatch_logs_handler"
PATH_INGEST_K8S = "k8s audit webhook -> function url -> ingest_handler"
PATH_INGEST_DOCKER = "adscore forward docker -> function url -> ingest_handler"

log = logging.getLogger("adscore.emulate.aws")


# --------------------------------------------------------------------------------------- moto server


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[module] is None (blocked)
        return False


def moto_available() -> bool:
    """Whether moto's server mode (moto plus its ``[server]`` extra: flask) can be imported."""
    return _installed("moto") and _installed("flask") and _installed("flask_cors")


def _serialise_dynamodb(server: ThreadedMotoServer) -> None:
    """Have a started moto server answer its DynamoDB requests one at a time.

    DynamoDB applies each write, with its condition, atomically; moto's backend reads the
    item, checks the condition and writes it back without a lock, so two concurrent
    conditional updates can both pass a check that one of them should fail (a capped set
    overfilled, a claim won twice). Serialising the DynamoDB requests restores the
    guarantee the state store relies on; the other services keep serving in parallel.
    Werkzeug reads the server's ``app`` on every request, and nobody knows the port before
    :meth:`MotoServer.start` returns, so wrapping it here misses no request.
    """
    wsgi_server: Any = server._server  # private: moto exposes no hook around its WSGI app
    app, lock = wsgi_server.app, threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Any:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:  # the whole response is produced inside: moto's DynamoDB answers are not streamed
            return list(app(environ, start_response))

    wsgi_server.app = serialised


@dataclass
class MotoServer:
    """moto in server mode on loopback (``ThreadedMotoServer`` on 127.0.0.1, a free port).

    Its backends are this process's: two servers in one process share their data.

    Attributes
    ----------
    endpoint : str
        ``http://127.0.0.1:<port>`` once started.

    Example
    -------
    >>> server = MotoServer().start()  # doctest: +SKIP
    >>> server.client("s3").list_buckets()  # doctest: +SKIP
    """

    endpoint: str = ""
    _server: ThreadedMotoServer | None = field(default=None, repr=False)

    def start(self) -> MotoServer:
        """Start the server; returns self."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _serialise_dynamodb(server)
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint = f"http://{host}:{port}"
        return self

    @property
    def port(self) -> int:
        """The TCP port (0 before start)."""
        return int(self.endpoint.rsplit(":", 1)[1]) if self.endpoint else 0

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def env(self) -> dict[str, str]:
        """The environment that points boto3 (and the AWS CLI) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client bound to this server (independent of the environment)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )


# --------------------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Names:
    """Resource names, as ``infra/aws/main.tf`` derives them from ``name_prefix``."""

    prefix: str = NAME_PREFIX

    @property
    def table(self) -> str:
        return f"{self.prefix}-state"

    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def alarms_topic(self) -> str:
        return f"{self.prefix}-alarms"

    @property
    def cloudtrail_queue(self) -> str:
        return f"{self.prefix}-cloudtrail-files"

    @property
    def events_queue(self) -> str:
        return f"{self.prefix}-events"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}-dlq"

    @property
    def failed_invocations(self) -> str:
        return f"{self.prefix}-failed-invocations"

    @property
    def unreadable(self) -> str:
        """The dead-letter store of unreadable records (``ADSCORE_DEADLETTER=sqs://...``)."""
        return f"{self.prefix}-unreadable"

    @property
    def webhook_secret(self) -> str:
        return f"{self.prefix}-webhook-emulated"

    @property
    def notification_id(self) -> str:
        return f"{self.prefix}-cloudtrail-files"

    # What the user owns in reality (not in the module):
    @property
    def bucket(self) -> str:
        return f"aws-cloudtrail-logs-{ACCOUNT}-{self.prefix}"

    @property
    def tap_queue(self) -> str:
        return f"{self.prefix}-alerts-tap"

    def function(self, key: str) -> str:
        return f"{self.prefix}-{key}"


@dataclass
class _Stack:
    server: MotoServer
    names: Names
    sqs: Any
    s3: Any
    queues: dict[str, str] = field(default_factory=dict)  # name -> URL
    arns: dict[str, str] = field(default_factory=dict)  # name -> ARN
    topic_arn: str = ""
    secret_arn: str = ""
    ingest_secret_arns: dict[str, str] = field(default_factory=dict)  # ADSCORE_INGEST_* -> ARN

    def queue_arn(self, name: str) -> str:
        return self.arns[name]


def _create_queue(stack: _Stack, name: str, attributes: dict[str, str]) -> None:
    url = stack.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    stack.queues[name] = url
    stack.arns[name] = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]


def _create_resources(server: MotoServer, names: Names) -> _Stack:
    """Create the module's resources and the user's bucket and tap queue in moto."""
    from adscore.state import init_store

    stack = _Stack(server, names, server.client("sqs"), server.client("s3"))
    init_store(f"dynamodb://{names.table}")  # the same code as `adscore state init`

    sns = server.client("sns")
    stack.topic_arn = sns.create_topic(Name=names.alerts_topic)["TopicArn"]  # standard topic, as main.tf
    sns.create_topic(Name=names.alarms_topic)

    visibility = str(6 * LAMBDA_TIMEOUT_SECONDS)
    _create_queue(stack, names.dlq, {"MessageRetentionPeriod": "1209600"})
    redrive = orjson.dumps(
        {"deadLetterTargetArn": stack.queue_arn(names.dlq), "maxReceiveCount": MAX_RECEIVE_COUNT}
    ).decode()
    _create_queue(
        stack,
        names.events_queue,
        {"VisibilityTimeout": visibility, "MessageRetentionPeriod": "345600", "RedrivePolicy": redrive},
    )
    _create_queue(
        stack,
        names.cloudtrail_queue,
        {"VisibilityTimeout": visibility, "MessageRetentionPeriod": "1209600", "RedrivePolicy": redrive},
    )
    _create_queue(stack, names.failed_invocations, {"MessageRetentionPeriod": "1209600"})
    _create_queue(stack, names.unreadable, {"MessageRetentionPeriod": "1209600"})

    # The user's side: the trail bucket announcing new log files to the module's queue ...
    stack.s3.create_bucket(Bucket=names.bucket)
    stack.s3.put_bucket_notification_configuration(
        Bucket=names.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": names.notification_id,
                    "QueueArn": stack.queue_arn(names.cloudtrail_queue),
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "AWSLogs/"},
                                {"Name": "suffix", "Value": ".json.gz"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    # ... and a queue subscribed to the alerts topic, where alerts are read as they arrive.
    _create_queue(stack, names.tap_queue, {})
    sns.subscribe(
        TopicArn=stack.topic_arn,
        Protocol="sqs",
        Endpoint=stack.queue_arn(names.tap_queue),
        Attributes={"RawMessageDelivery": "true"},
    )

    secrets = server.client("secretsmanager")
    stack.secret_arn = secrets.create_secret(Name=names.webhook_secret, SecretString=WEBHOOK_SECRET)["ARN"]
    for variable, value in ingest_settings().items():  # enable_ingest_endpoint's two secrets
        name = f"{names.prefix}-{variable.removeprefix('ADSCORE_').lower().replace('_', '-')}"
        stack.ingest_secret_arns[variable] = secrets.create_secret(Name=name, SecretString=value)["ARN"]
    return stack


def _function_env(stack: _Stack, config: str | None) -> dict[str, str]:
    """The functions' environment as main.tf sets it (``local.environment``), plus the emulator's.

    main.tf stores the settings in the ``/<prefix>/config`` SSM parameter and sets
    ``ADSCORE_CONFIG=ssm:///<prefix>/config``; here ``ADSCORE_CONFIG`` names the file itself
    (moto's SSM costs a second of start-up, and the SSM fetch has its own e2e test).
    """
    env = {
        **stack.server.env(),
        "ADSCORE_STATE": f"dynamodb://{stack.names.table}",
        "ADSCORE_SINKS": f"sns://{stack.topic_arn}",
        "ADSCORE_WEBHOOK_SECRET": stack.secret_arn,
        "ADSCORE_DEADLETTER": f"sqs://{stack.names.unreadable}",
        "POWERTOOLS_SERVICE_NAME": "adscore",
        "POWERTOOLS_LOG_LEVEL": LOG_LEVEL,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        **stack.ingest_secret_arns,  # main.tf gives them to the ingest function only
    }
    if config is not None:
        env["ADSCORE_CONFIG"] = os.path.abspath(config)
    return env


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` (and drop profile and per-service endpoint variables); restore afterwards."""
    drop = [k for k in os.environ if k in AWS_VARS_REMOVED or _ENDPOINT_OVERRIDE.match(k)]
    saved = {k: os.environ.get(k) for k in [*values, *drop, "ADSCORE_CONFIG"]}
    try:
        for k in drop:
            os.environ.pop(k, None)
        os.environ.pop("ADSCORE_CONFIG", None)
        os.environ.update(values)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------------------- functions


@dataclass
class LambdaContext:
    """What Lambda passes as ``context`` (the attributes Powertools reads)."""

    function_name: str
    invoked_function_arn: str
    log_group_name: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = field(
        default_factory=lambda: f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    )
    deadline: float = field(default_factory=lambda: time.monotonic() + LAMBDA_TIMEOUT_SECONDS)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _load_handler(functions_dir: Path) -> ModuleType:
    """Import ``functions/aws/handler.py`` as Lambda does (its folder on ``sys.path``, module ``handler``)."""
    wanted = (functions_dir / "handler.py").resolve()
    loaded = sys.modules.get("handler")
    if loaded is not None:
        if getattr(loaded, "__file__", None) and os.path.realpath(str(loaded.__file__)) == str(wanted):
            return loaded
        raise AdscoreError(f"another module named 'handler' is already imported ({loaded!r})")
    if str(functions_dir) not in sys.path:
        sys.path.insert(0, str(functions_dir))
    return importlib.import_module("handler")


class _Functions:
    """Invokes the three handlers in this process; their logs and metrics go to ``log_file``."""

    def __init__(self, module: ModuleType, names: Names, log_file: IO[str]) -> None:
        self.module = module
        self.names = names
        self.log_file = log_file
        self._lock = threading.Lock()
        self._stream_handler: logging.StreamHandler[Any] | None = None
        self._old_stream: Any = None
        handler = getattr(getattr(module, "logger", None), "registered_handler", None)
        if isinstance(handler, logging.StreamHandler):  # Powertools binds its stream at import
            self._stream_handler = handler
            self._old_stream = handler.setStream(log_file)
        self._reset_caches()

    def _reset_caches(self) -> None:
        """Forget the engine and the adapter's S3 client built for another environment (another emulator)."""
        from adscore import runtime

        runtime.reset_engine()

    def close(self) -> None:
        with self._lock:
            self._reset_caches()
            if self._stream_handler is not None:
                self._stream_handler.setStream(self._old_stream)
                self._stream_handler = None

    def invoke(self, key: str, event: dict[str, Any]) -> Any:
        """Call function ``key`` (eventbridge, sqs, cwlogs) with ``event``; exceptions propagate."""
        name = self.names.function(key)
        context = LambdaContext(
            function_name=name,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            log_group_name=f"/aws/lambda/{name}",
        )
        with (
            self._lock,
            contextlib.redirect_stdout(self.log_file),  # EMF metrics are printed
            warnings.catch_warnings(record=True) as caught,  # "No application metrics to publish"
        ):
            try:
                return getattr(self.module, _FUNCTIONS[key])(event, context)
            finally:
                for w in caught:
                    self.log_file.write(f"{name}: {w.category.__name__}: {str(w.message)[:500]}\n")
                self.log_file.flush()


# --------------------------------------------------------------------------------------- deliveries


def function_url_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A Lambda Function URL request event (payload format 2.0) for a POST of ``body``."""
    now = datetime.now(UTC)
    url_id = "adscoreemulatedingest"
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()} | {"host": f"{url_id}.lambda-url.{REGION}.on.aws"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": f"{url_id}.lambda-url.{REGION}.on.aws",
            "domainPrefix": url_id,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "adscore-emulate"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _lambda_sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as the event source mapping hands it to Lambda."""
    attributes = {
        str(name): {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _s3_keys(body: str) -> list[str]:
    """Object keys an S3 notification body announces (URL-decoded)."""
    from urllib.parse import unquote_plus

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    records = doc.get("Records") if isinstance(doc, dict) else None
    keys = []
    for r in records if isinstance(records, list) else []:
        key = r.get("s3", {}).get("object", {}).get("key") if isinstance(r, dict) else None
        if isinstance(key, str):
            keys.append(unquote_plus(key))
    return keys


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        ms = int(at.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None
    return ms if 0 <= ms < 253_402_300_800_000 else None  # 1970 .. 9999: a key's date must be printable


def _cwlogs_payload(message: dict[str, Any]) -> dict[str, Any]:
    """``{"awslogs": {"data": base64(gzip(json))}}``: a subscription's Lambda event."""
    return {"awslogs": {"data": base64.b64encode(gzip.compress(orjson.dumps(message), 6)).decode()}}


class _Deliverer:
    """Sends records down their delivery path, in input order, and counts what happened."""

    def __init__(
        self, stack: _Stack, functions: _Functions, result: EmulationResult, reporter: Reporter
    ) -> None:
        self.stack = stack
        self.functions = functions
        self.result = result
        self.reporter = reporter
        self.records_by_key: dict[str, int] = {}
        self._pending: list[Any] = []
        self._pending_key: tuple[str, str, str] | None = None
        self._pending_bytes = 0
        self._stream = f"kube-apiserver-audit-{uuid.uuid4().hex}"
        self._log_event = 0
        self.ingest = IngestSender(
            self._post_url, result, reporter, k8s_path=PATH_INGEST_K8S, docker_path=PATH_INGEST_DOCKER
        )

    def _post_url(self, body: bytes, headers: dict[str, str]) -> int:
        """One Function URL request to ``ingest_handler``; its HTTP status (0 when the function raised)."""
        try:
            answer = self.functions.invoke("ingest", function_url_event(body, headers))
        except Exception as exc:  # a Function URL answers 502 when the function fails
            self.reporter.note(f"ingest_handler raised {type(exc).__name__}: {str(exc)[:200]}")
            return 502
        return int(answer.get("statusCode", 0)) if isinstance(answer, dict) else 0

    # -- sorting ---------------------------------------------------------------------------------

    @staticmethod
    def classify(record: Any) -> tuple[str, list[Any] | str]:
        """``(path, items)`` for a record, or ``("skip", reason)``."""
        from adscore.sources import sniff

        kind = ingest_kind(record)
        if kind is not None:
            return kind, [record]
        family = sniff(record)
        if family == "kubernetes":
            if record.get("kind") == "EventList":
                api = record.get("apiVersion")
                items = record.get("items")
                events = []
                for item in items if isinstance(items, list) else []:
                    if isinstance(item, dict):
                        item = {"kind": "Event", **({"apiVersion": api} if api else {}), **item}
                    events.append(item)
                return "eks", events
            return "eks", [record]
        if family != "aws":
            what = f"{family} event" if family else "unrecognised record shape"
            return "skip", f"{what}: no aws delivery path"
        if "awslogs" in record:
            return "cwlogs", [record]
        if "logEvents" in record and "messageType" in record:
            return "cwlogs", [_cwlogs_payload(record)]
        if "detail-type" in record and "detail" in record:
            return "eventbridge", [record]
        records = record.get("Records")
        if isinstance(records, list):
            first = records[0] if records else None
            if isinstance(first, dict) and first.get("eventSource") == "aws:s3":
                return (
                    "skip",
                    "S3 event notification: it names an object elsewhere; send the CloudTrail file itself",
                )
            return "cloudtrail", records
        return "cloudtrail", [record]

    def deliver(self, paths: Sequence[str]) -> None:
        """Read ``paths`` and send every record, file by file in time order (see :func:`_in_time_order`)."""
        for group in _in_time_order(paths):
            self._deliver(group)
        self.flush()

    def _deliver(self, paths: Sequence[str]) -> None:
        for ref, record in iter_records(paths, self.result):
            path, items = self.classify(record)
            if isinstance(items, str):
                self.result.skipped.append(f"{ref}: {items}")
                continue
            source = _source_file(ref)
            if path == "docker":
                self._flush_pending()
                self.ingest.docker(source, items[0])
                continue
            self.ingest.flush()
            if path == "eventlist":
                self.flush()
                self.ingest.event_list(items[0])
            elif path == "cloudtrail":
                for item in items:
                    region = item.get("awsRegion") if isinstance(item, dict) else None
                    self._add(("cloudtrail", source, region if isinstance(region, str) else REGION), item)
            elif path == "eks":
                for item in items:
                    self._add(("eks", source, ""), item)
            else:
                self.flush()
                if path == "eventbridge":
                    self._invoke_async("eventbridge", items[0], PATH_EVENTBRIDGE, 1)
                else:
                    self._invoke_async("cwlogs", items[0], PATH_CWLOGS, _count_log_events(items[0]))

    def _add(self, key: tuple[str, str, str], item: Any) -> None:
        size = len(orjson.dumps(item, default=str)) if key[0] == "eks" else 0
        if (
            key != self._pending_key
            or len(self._pending) >= MAX_FILE_RECORDS
            or (self._pending and self._pending_bytes + size > MAX_CWLOGS_BYTES)
        ):
            self.flush()
            self._pending_key = key
        self._pending.append(item)
        self._pending_bytes += size

    def flush(self) -> None:
        """Send what is pending: a Docker batch, a CloudTrail file into S3, an EKS audit payload."""
        self.ingest.flush()
        self._flush_pending()

    def _flush_pending(self) -> None:
        if not self._pending or self._pending_key is None:
            return
        kind, _, region = self._pending_key
        items, self._pending, self._pending_bytes = self._pending, [], 0
        if kind == "cloudtrail":
            self._put_trail_file(items, region)
        else:
            self._send_eks(items)

    # -- S3 -> SQS -> sqs_handler ----------------------------------------------------------------

    def _put_trail_file(self, records: list[Any], region: str) -> None:
        first = next((r for r in records if isinstance(r, dict)), {})
        identity = first.get("userIdentity")
        account = str(
            first.get("recipientAccountId")
            or (identity.get("accountId") if isinstance(identity, dict) else None)
            or ACCOUNT
        )
        if not re.fullmatch(r"\d{12}", account):  # log text goes into the key only when it is an account id
            account = ACCOUNT
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
            region = REGION
        ms = _epoch_ms(first.get("eventTime"))
        when = datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else datetime.now(UTC)
        key = (
            f"AWSLogs/{account}/CloudTrail/{region}/{when:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%MZ}_{uuid.uuid4().hex[:16]}.json.gz"
        )
        body = gzip.compress(orjson.dumps({"Records": records}, default=str), 6)
        self.stack.s3.put_object(Bucket=self.stack.names.bucket, Key=key, Body=body)
        self.records_by_key[key] = len(records)
        self.result.delivery(PATH_S3).records += len(records)
        self.drain(self.stack.names.cloudtrail_queue, expected=1)

    def drain(self, queue: str, expected: int = 0, wait: float = 1.0) -> int:
        """Feed ``queue`` to ``sqs_handler`` as the event source mapping does, until it is empty.

        Waits up to ``wait`` seconds for each of the ``expected`` new messages. Acknowledged messages
        are deleted; failed ones are made visible again until the redrive policy dead-letters them.
        Returns the number of messages handled.
        """
        sqs, url, arn = self.stack.sqs, self.stack.queues[queue], self.stack.queue_arn(queue)
        batch = CLOUDTRAIL_BATCH_SIZE if queue == self.stack.names.cloudtrail_queue else SQS_BATCH_SIZE
        seen = handled = 0
        while True:
            response = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=batch,
                WaitTimeSeconds=int(wait) if seen < expected else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages") or []
            if not messages:
                return handled
            seen += sum(
                1 for m in messages if (m.get("Attributes") or {}).get("ApproximateReceiveCount") == "1"
            )
            handled += len(messages)
            event = {"Records": [_lambda_sqs_record(m, arn) for m in messages]}
            delivery = self.result.delivery(
                PATH_S3 if queue == self.stack.names.cloudtrail_queue else "eventbridge -> sqs -> sqs_handler"
            )
            delivery.invocations += 1
            try:
                answer = self.functions.invoke("sqs", event)
                failed = {
                    str(f.get("itemIdentifier"))
                    for f in (answer or {}).get("batchItemFailures", [])
                    if isinstance(f, dict)
                }
            except Exception as exc:  # a function error fails the whole batch
                self.reporter.note(f"sqs_handler raised {type(exc).__name__}: {str(exc)[:200]}")
                failed = {m["MessageId"] for m in messages}
            done = [m for m in messages if m["MessageId"] not in failed]
            for i in range(0, len(done), 10):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]}
                        for j, m in enumerate(done[i : i + 10])
                    ],
                )
            for m in messages:
                if m["MessageId"] not in failed:
                    continue
                count = int((m.get("Attributes") or {}).get("ApproximateReceiveCount") or 1)
                if count >= MAX_RECEIVE_COUNT:  # the next receive moves it to the dead-letter queue
                    keys = _s3_keys(m.get("Body", ""))
                    delivery.failed += sum(self.records_by_key.get(k, 1) for k in keys) if keys else 1
                    self.reporter.note(f"message {m['MessageId']} failed {count} times: dead-lettered")
                # visible again now instead of after the visibility timeout: Lambda retries it
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )

    # -- asynchronous invocations (EventBridge, CloudWatch Logs) -----------------------------------

    def _send_eks(self, events: list[Any]) -> None:
        log_events = []
        for event in events:
            at = None
            if isinstance(event, dict):
                at = _epoch_ms(event.get("stageTimestamp")) or _epoch_ms(
                    event.get("requestReceivedTimestamp")
                )
            at = at or int(time.time() * 1000)
            self._log_event += 1
            log_events.append(
                {
                    "id": f"{at * 10**6 + self._log_event:056d}",
                    "timestamp": at,
                    "message": orjson.dumps(event, default=str).decode(),
                }
            )
        message = {
            "messageType": "DATA_MESSAGE",
            "owner": ACCOUNT,
            "logGroup": f"/aws/eks/{CLUSTER}/cluster",
            "logStream": self._stream,
            "subscriptionFilters": [f"{self.stack.names.prefix}-audit"],
            "logEvents": log_events,
        }
        self._invoke_async("cwlogs", _cwlogs_payload(message), PATH_EKS, len(log_events))

    def _invoke_async(self, key: str, event: dict[str, Any], path: str, records: int) -> None:
        """An asynchronous invocation: retried twice, then sent to the failed-invocations queue."""
        delivery = self.result.delivery(path)
        delivery.records += records
        error: Exception | None = None
        for _ in range(1 + ASYNC_RETRIES):
            delivery.invocations += 1
            try:
                self.functions.invoke(key, event)
                return
            except Exception as exc:
                error = exc
        assert error is not None
        delivery.failed += records
        self.reporter.note(
            f"{_FUNCTIONS[key]} failed {1 + ASYNC_RETRIES} times ({type(error).__name__}): dead-lettered"
        )
        self.stack.sqs.send_message(
            QueueUrl=self.stack.queues[self.stack.names.failed_invocations],
            MessageBody=orjson.dumps(event, default=str).decode(),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str(error)[:256] or type(error).__name__,
                },
            },
        )


def _record_time(record: Any) -> int | None:
    """Epoch milliseconds of a record of any delivered shape (its first event), or None."""
    if not isinstance(record, dict):
        return None
    for name in ("eventTime", "time", "stageTimestamp", "requestReceivedTimestamp"):
        at = _epoch_ms(record.get(name))
        if at is not None:
            return at
    records = record.get("Records") or record.get("items")
    if isinstance(records, list) and records:
        return _record_time(records[0])
    if "awslogs" in record:
        from adscore.sources.aws import unwrap_cwlogs

        record = unwrap_cwlogs(record, "cwlogs")
    events = record.get("logEvents") if isinstance(record, dict) else None
    if isinstance(events, list) and events and isinstance(events[0], dict):
        at = events[0].get("timestamp")
        return at if isinstance(at, int) else None
    return None


def _in_time_order(paths: Sequence[str]) -> list[list[str]]:
    """The input files, each alone, ordered by their earliest record (stable; untimed files last).

    CloudTrail, EventBridge and CloudWatch Logs deliver in time order: a log file recorded on
    March 2nd never arrives after one recorded on March 14th. Records keep their order within a
    file. Standard input cannot be read twice: with ``-`` the order is the input's.
    """
    if "-" in paths:
        return [list(paths)]
    from adscore.events import RecordError
    from adscore.sources.files import read_inputs

    earliest: dict[str, float] = {}
    for item in read_inputs(list(paths)):
        ref = (item.location or item.family) if isinstance(item, RecordError) else item[0]
        source = _source_file(ref)
        at = None if isinstance(item, RecordError) else _record_time(item[1])
        previous = earliest.setdefault(source, float("inf"))
        if at is not None and at < previous:
            earliest[source] = at
    ordered = sorted(earliest, key=lambda f: earliest[f])  # dicts keep the input order for ties
    return [[f] for f in ordered]


def _source_file(ref: str) -> str:
    """The input file of a record ref (``file:LINE``, ``file[i]`` or ``file``)."""
    match = re.match(r"^(.*?)(?::\d+|\[\d+\])$", ref)
    return match.group(1) if match else ref


def _count_log_events(payload: dict[str, Any]) -> int:
    from adscore.sources.aws import unwrap_cwlogs

    message = unwrap_cwlogs(payload, "cwlogs")
    events = message.get("logEvents") if isinstance(message, dict) else None
    return len(events) if isinstance(events, list) else 1


# --------------------------------------------------------------------------------------- alerts, state


class _AlertTap:
    """Reads the queue subscribed to the alerts topic in a thread and reports each alert as it arrives."""

    def __init__(self, stack: _Stack, reporter: Reporter) -> None:
        self.sqs = stack.server.client("sqs")
        self.url = stack.queues[stack.names.tap_queue]
        self.reporter = reporter
        self._finish_after: float | None = None
        self._last = 0.0
        self._stop = threading.Event()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="adscore-emulate-alert-tap", daemon=True)

    def start(self) -> _AlertTap:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                # short polls, not long ones: stopping (Ctrl-C) never waits for a pending receive
                response = self.sqs.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                )
                messages = response.get("Messages") or []
                if messages:
                    self._last = time.monotonic()
                    for m in messages:
                        self._report(m.get("Body", ""))
                    self.sqs.delete_message_batch(
                        QueueUrl=self.url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
                elif self._finish_after is not None and (
                    time.monotonic() - max(self._finish_after, self._last) >= QUIET_SECONDS
                ):
                    return  # nothing new for QUIET_SECONDS after the last invocation
                else:
                    self._stop.wait(0.1)
        except Exception as exc:  # the emulator went away; say so instead of dying silently
            self.error = f"{type(exc).__name__}: {str(exc)[:200]}"

    def _report(self, body: str) -> None:
        try:
            alert = orjson.loads(body)
        except orjson.JSONDecodeError:
            alert = None
        if (
            isinstance(alert, dict)
            and alert.get("Type") == "Notification"
            and isinstance(alert.get("Message"), str)
        ):
            with contextlib.suppress(orjson.JSONDecodeError):  # raw delivery turned off by hand
                alert = orjson.loads(alert["Message"])
        if isinstance(alert, dict):
            self.reporter.alert(alert)
        else:
            self.reporter.note(f"a message on the alert queue is not an alert: {body[:120]!r}")

    def finish(self) -> None:
        """Return once no alert arrived for ``QUIET_SECONDS`` (called after the last invocation)."""
        self._finish_after = time.monotonic()
        self._thread.join(timeout=30)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _state_items(server: MotoServer, table: str) -> list[dict[str, Any]]:
    """The state table's items: key, kind, expiry, and the size of a set or a clipped value."""
    items = []
    for page in (
        server.client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    ):
        for raw in page.get("Items", []):
            item: dict[str, Any] = {"pk": raw.get("pk", {}).get("S"), "sk": raw.get("sk", {}).get("S")}
            expires = raw.get("expires_at", {}).get("N")
            if expires is not None:
                item["expires_at"] = (
                    datetime.fromtimestamp(int(expires), UTC).isoformat().replace("+00:00", "Z")
                )
            if "m" in raw:
                item["members"] = len(raw["m"].get("SS", []))
            if "v" in raw:
                value = str(raw["v"].get("S", ""))
                item["value"] = value if len(value) <= 80 else value[:79] + "…"
            items.append(item)
    items.sort(key=lambda i: (str(i["pk"]), str(i["sk"])))
    return items


# --------------------------------------------------------------------------------------- run


def _check_installed() -> None:
    """Raise :class:`EmulatorMissing` naming the install command, before anything starts."""
    if not moto_available():
        raise EmulatorMissing("moto[server]", "pip install 'adscore[emulate]'")
    for module, what in (("boto3", "boto3"), ("aws_lambda_powertools", "aws-lambda-powertools")):
        if not _installed(module):
            raise EmulatorMissing(what, "pip install 'adscore[aws]'")


class _Live:
    """With ``--keep``: the event source mappings stay on, so files put in the bucket are processed."""

    def __init__(self, deliverer: _Deliverer) -> None:
        self.deliverer = deliverer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adscore-emulate-esm", daemon=True)

    def start(self) -> _Live:
        self._thread.start()
        return self

    def _run(self) -> None:
        names = self.deliverer.stack.names
        while not self._stop.is_set():
            try:
                handled = 0
                for queue in (names.cloudtrail_queue, names.events_queue):
                    handled += self.deliverer.drain(queue, expected=0)
                if not handled:
                    self._stop.wait(0.5)
            except Exception as exc:
                if not self._stop.is_set():
                    self.deliverer.reporter.note(f"event source mapping stopped: {type(exc).__name__}")
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run(paths: Sequence[str], *, config: str | None, keep: bool, reporter: Reporter) -> EmulationResult:
    """Run the AWS functions against moto and send ``paths`` through the real delivery paths.

    Parameters
    ----------
    paths : Sequence[str]
        Log files or folders (CloudTrail records or files, EventBridge events, CloudWatch Logs
        payloads, Kubernetes audit events); records of other clouds are skipped with the reason.
    config : str, optional
        Settings YAML (``ADSCORE_CONFIG`` of the functions).
    keep : bool
        Keep moto (and the event source mappings) running after the summary until Ctrl-C or SIGTERM.
    reporter : Reporter
        Prints progress, alerts as they arrive, state items and the summary.

    Returns
    -------
    EmulationResult

    Raises
    ------
    EmulatorMissing
        moto's server mode, boto3 or Powertools is not installed (nothing was started).
    AdscoreError
        No source checkout with ``functions/aws``, or the settings file cannot be read.

    Example
    -------
    >>> run(["examples/aws"], config="examples/config.yaml", keep=False, reporter=reporter)  # doctest: +SKIP
    """
    _check_installed()
    handler_dir = function_file("aws/handler.py").parent
    if config is not None and not os.path.isfile(config):
        raise AdscoreError(f"settings file not found: {config}")

    started = time.monotonic()
    result = EmulationResult(cloud="aws")
    names = Names()
    server = MotoServer()
    log_dir = tempfile.mkdtemp(prefix="adscore-emulate-aws-")
    log_path = os.path.join(log_dir, "lambda.log")
    keep_logs = False
    try:
        with contextlib.ExitStack() as cleanup:  # undone in reverse order, on any error and on Ctrl-C
            log_file = cleanup.enter_context(open(log_path, "w", encoding="utf-8"))
            server.start()
            cleanup.callback(_quiet(server.stop))
            cleanup.callback(reporter.note, "stopping moto")
            reporter.note(f"starting moto on {server.endpoint.removeprefix('http://')}")
            server.reset()  # moto's backends belong to the process: start from nothing, leave nothing
            cleanup.callback(_quiet(server.reset))
            cleanup.enter_context(_environment(server.env()))
            stack = _create_resources(server, names)
            cleanup.enter_context(_environment(_function_env(stack, config)))
            reporter.note(
                f"created {names.table}, {names.alerts_topic}, {names.cloudtrail_queue}, "
                f"{names.events_queue}, "
                f"{names.dlq}, {names.failed_invocations}, {names.unreadable}; bucket {names.bucket} notifies "
                f"{names.cloudtrail_queue}; {names.tap_queue} subscribed to {names.alerts_topic}"
            )
            with contextlib.redirect_stdout(log_file):  # Powertools binds its log stream at import
                module = _load_handler(handler_dir)
            functions = _Functions(module, names, log_file)
            cleanup.callback(functions.close)
            deliverer = _Deliverer(stack, functions, result, reporter)
            tap = _AlertTap(stack, reporter).start()
            cleanup.callback(tap.stop)

            deliverer.drain(names.cloudtrail_queue, expected=1)  # S3's test event (and the cold start)
            result.deliveries.clear()
            reporter.note("delivering " + ", ".join(paths))
            deliverer.deliver(paths)
            tap.finish()
            _count_dead_letters(stack, result, reporter)
            if tap.error:
                reporter.note(f"alert queue unreadable: {tap.error}")

            result.state_items = _state_items(server, names.table)
            reporter.state_items(result.state_items)
            result.endpoints = _endpoints(stack, log_path)
            result.env = {k: v for k, v in server.env().items() if k != "AWS_EC2_METADATA_DISABLED"}
            result.alerts = reporter.alerts
            result.seconds = time.monotonic() - started
            reporter.summary(result)
            if result.failed:
                keep_logs = True
                reporter.note(f"function logs: {log_path}")
            if keep:
                live = _Live(deliverer).start()
                cleanup.callback(live.stop)
                tap_kept = _AlertTap(stack, reporter).start()
                cleanup.callback(tap_kept.stop)
                with StopSignals() as signals:  # armed before the endpoints are announced
                    reporter.keep(result.endpoints, result.env)
                    signals.wait()
            return result
    finally:
        if not keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)


def _quiet(fn: Callable[[], None]) -> Callable[[], None]:
    def call() -> None:
        try:
            fn()
        except Exception as exc:  # cleanup must not hide the real error
            log.debug("cleanup failed: %s", exc)

    return call


def _endpoints(stack: _Stack, log_path: str) -> dict[str, str]:
    names = stack.names
    return {
        "moto": stack.server.endpoint,
        "state table": names.table,
        "alerts topic": stack.topic_arn,
        "alerts tap queue": stack.queues[names.tap_queue],
        "cloudtrail bucket": f"s3://{names.bucket}/AWSLogs/",
        "cloudtrail files queue": stack.queues[names.cloudtrail_queue],
        "events queue": stack.queues[names.events_queue],
        "dead-letter queue": stack.queues[names.dlq],
        "failed invocations queue": stack.queues[names.failed_invocations],
        "unreadable records queue": stack.queues[names.unreadable],
        "function logs": log_path,
    }


def _count_dead_letters(stack: _Stack, result: EmulationResult, reporter: Reporter) -> None:
    """Count the letters the functions wrote to the unreadable-records queue as failed, per delivery path."""
    url = stack.queues[stack.names.unreadable]
    while True:
        messages = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        for m in messages:
            letter = orjson.loads(m["Body"])
            source, location = str(letter.get("source")), str(letter.get("location"))
            path = {
                "aws.eventbridge_handler": PATH_EVENTBRIDGE,
                "aws.cloudwatch_logs_handler": PATH_CWLOGS,
                "aws.ingest_handler": PATH_INGEST_DOCKER if location.startswith("docker-forward") else PATH_INGEST_K8S,
            }.get(source, PATH_S3 if "s3://" in location else "eventbridge -> sqs -> sqs_handler")
            result.delivery(path).failed += 1
            reporter.note(f"{source}: {location[:200]}: dead-lettered ({str(letter.get('reason'))[:200]})")
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
