"""Operations: Prometheus metrics, W3C trace context (OpenTelemetry spans optional), structured
logs and debug endpoints. See docs/operations.md."""

from a2a_grpc.observability.settings import LOG_FORMATS, ObservabilitySettings

__all__ = ["LOG_FORMATS", "ObservabilitySettings"]
