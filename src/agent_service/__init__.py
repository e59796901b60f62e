"""agent-service: a Kubernetes-native service for running LLM agents."""

__version__ = "0.1.0"
