"""What a process tells operators: metrics, traces, logs and debug endpoints (one frozen dataclass).

``ServerSettings.observability`` carries it to the gRPC server and the bridge in the same process;
``a2a-grpc serve`` and ``a2a-grpc bridge`` fill it from the configuration (``a2a_grpc.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LOG_FORMATS", "ObservabilitySettings"]

LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """Metrics, trace context, logs and debug endpoints. Defaults: metrics collected, spans off."""

    metrics: bool = True
    """Collect Prometheus metrics (``a2a_*``), served at ``/metrics`` on the bridge's HTTP port and
    on ``metrics_port``. Off: the call seam has no metrics link at all."""
    metrics_host: str = "127.0.0.1"
    """The address ``metrics_port`` listens on."""
    metrics_port: int | None = None
    """Serve ``/metrics`` and the debug endpoints on this port of their own (0 picks one), for a
    process without an HTTP port (a gRPC-only server, ``bridge grpc-to-http``); None: not served."""
    spans: bool = False
    """Record OpenTelemetry spans (needs ``a2a-grpc[otel]``) and export them over OTLP. W3C trace
    context (``traceparent``, ``tracestate``) is propagated on every hop whether or not this is on."""
    trace_context: bool = True
    """Read and send W3C trace context (``traceparent``, ``tracestate``) on every hop: keep it on.
    Off only to measure what propagation costs (the benchmark's "no instrumentation" case): calls
    then neither join nor continue a trace, and log lines carry no trace id (spans too need it
    on)."""
    otlp_endpoint: str | None = None
    """Where spans are exported (OTLP over gRPC, e.g. ``http://127.0.0.1:4317``); None: the
    OpenTelemetry SDK's own default (``OTEL_EXPORTER_OTLP_ENDPOINT``, else localhost:4317)."""
    service_name: str | None = None
    """The ``service.name`` of this process's spans; None: the agent card's name."""
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per log line, with the agent, session, task, call and trace ids
    of the call it was written for."""
    debug: bool = False
    """Log every session handshake in full and every request's payload, credentials redacted
    (``A2A_DEBUG=1``). For finding a problem, not for production: payloads can be large."""
    debug_endpoints: bool = True
    """Serve ``/debug/a2a/sessions`` (authenticated like every call) beside ``/metrics``."""
    debug_payload_chars: int = 4096
    """With ``debug``: a logged payload's JSON is cut after this many characters (its length said)."""

    def __post_init__(self) -> None:
        if self.metrics_port is not None and (
            isinstance(self.metrics_port, bool)
            or not isinstance(self.metrics_port, int)
            or not 0 <= self.metrics_port <= 65535
        ):
            raise ValueError(f"metrics_port must be 0..65535 or None, not {self.metrics_port!r}")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {self.log_format!r}")
        if (
            isinstance(self.debug_payload_chars, bool)
            or not isinstance(self.debug_payload_chars, int)
            or self.debug_payload_chars < 1
        ):
            raise ValueError(f"debug_payload_chars must be a positive int, not {self.debug_payload_chars!r}")
        for name in ("metrics", "spans", "trace_context", "debug", "debug_endpoints"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.spans and not self.trace_context:
            raise ValueError("spans need trace_context on")
