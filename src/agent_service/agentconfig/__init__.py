"""The agent config's whole life: the one room for it.

``model`` is the pydantic model (the single source of the YAML file, the built-in default and
the generated CRDs); ``load`` reads and validates files and documents; ``secrets`` resolves
secret references at the moment of use; ``reload`` watches the file and hands each valid new
version to the runtime; ``crd`` generates the CustomResourceDefinitions, ``status`` the
resources' status conditions, and ``render`` the document the controller writes for the pods.
"""
