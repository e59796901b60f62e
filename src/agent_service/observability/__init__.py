"""Metrics, traces and logs. The only package that configures structlog and OpenTelemetry."""
