"""The AgentConfig controller: CRD generation, validation, rendering into the pods' ConfigMap.

``crd`` and ``reconcile`` are pure (testable without a cluster); ``kube`` is the only module
that talks to the Kubernetes API; ``handlers`` registers the reconcile with kopf; ``main`` runs
the operator (``agent-service controller``).
"""
