#!/usr/bin/env bash
# Download the schemas the chart and repository tests validate against, from pinned upstream
# commits, each checked by its sha256 (a changed upstream file fails): the CRDs of
# prometheus-operator, KEDA, the OpenTelemetry Operator and the External Secrets Operator's
# ExternalSecret (for AGENT_TEST_CRD_SCHEMAS),
# skaffold's JSON schemas (for AGENT_TEST_K8S_JSON_SCHEMAS) and OpenAI's OpenAPI description (for
# AGENT_TEST_OPENAI_SPEC: DEST_DIR/openai/openapi.yaml; the OpenAI-compatibility tests also fetch
# that one file themselves when the variable is unset). The CI workflows (ci.yml, chart.yml)
# call it; so can a developer, to run those validations locally:
#
#   scripts/fetch-test-schemas.sh /tmp/k8s-schemas
#   AGENT_TEST_CRD_SCHEMAS=/tmp/k8s-schemas/crds AGENT_TEST_K8S_JSON_SCHEMAS=/tmp/k8s-schemas/json \
#     uv run pytest tests/chart tests/unit/test_repo_lint.py
#
# Needs curl and sha256sum (or shasum).
set -euo pipefail
dest=${1:?usage: scripts/fetch-test-schemas.sh DEST_DIR}
mkdir -p "$dest/json" "$dest/crds" "$dest/openai"

if command -v sha256sum >/dev/null; then sha256=(sha256sum); else sha256=(shasum -a 256); fi

# One line per file: sha256, destination under DEST_DIR, path under raw.githubusercontent.com.
gh_raw=https://raw.githubusercontent.com
po=prometheus-operator/prometheus-operator/6adcebc5076c34f4f55f8f5f7b1e528929373ac7/example/prometheus-operator-crd
keda=kedacore/keda/8b4f083ca8c8c2baf8477e322bd4d16ac4dfa09a/config/crd/bases
otel=open-telemetry/opentelemetry-operator/be8944414a876f17fcdeb5a59b86b8866fb5c88e/config/crd/bases
eso=external-secrets/external-secrets/cc5bfbc2234ace9cb0caff4ea89c435cf517b27b/config/crds/bases
skaffold=GoogleContainerTools/skaffold/359a940c1b26e9aecfad508c1e87a679ec86e49b/docs-v2/content/en/schemas
openai=openai/openai-openapi/f85dbe223d40e1a31cba812ab2d755c7e98a92a3
while read -r sha file url; do
  curl -fsSL --retry 3 -o "$dest/$file" "$gh_raw/$url"
  if ! echo "$sha  $dest/$file" | "${sha256[@]}" -c --status -; then
    echo "fetch-test-schemas: $url does not have the pinned sha256 $sha" >&2
    exit 1
  fi
done <<SCHEMAS
60aa19bdc634299263af120abee0ca47162315511dd10788f19f4741147857b9 json/skaffold-v4beta13.json $skaffold/v4beta13.json
7c29a621995d2c6143d3c423c8e3d3dfb25703a49fd1cf77644b54168414b39e json/skaffold-v4beta14.json $skaffold/v4beta14.json
a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32 crds/monitoring.coreos.com_servicemonitors.yaml $po/monitoring.coreos.com_servicemonitors.yaml
45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d crds/monitoring.coreos.com_podmonitors.yaml $po/monitoring.coreos.com_podmonitors.yaml
78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d crds/monitoring.coreos.com_prometheusrules.yaml $po/monitoring.coreos.com_prometheusrules.yaml
fed47c462483a47a4d1912bf8a7a3767618644cfdee86dc73d7624c55d6a8b9d crds/monitoring.coreos.com_alertmanagerconfigs.yaml $po/monitoring.coreos.com_alertmanagerconfigs.yaml
207afc4ca44fd9e3f4bbfb1c8fae08f3a365e098a52714fe8eb672bbd239cbcd crds/keda.sh_scaledobjects.yaml $keda/keda.sh_scaledobjects.yaml
990851d71901905bc9bebb50cd964bfc909ca24a03dd401a626a1894bb912ecd crds/keda.sh_triggerauthentications.yaml $keda/keda.sh_triggerauthentications.yaml
dbe2e63885729be77cc9012b6e1a3d19e1c18e561ad72edf213791863fa4389a crds/keda.sh_clustertriggerauthentications.yaml $keda/keda.sh_clustertriggerauthentications.yaml
8163dfbd369f5d1fc8128dcf9d85d9592a3ac34cfacd324b88742a5baa96dabf crds/opentelemetry.io_opentelemetrycollectors.yaml $otel/opentelemetry.io_opentelemetrycollectors.yaml
5044be5a610ca90a075f34f03ed20b462695c43387ba9410db7f4250e47b1e2f crds/external-secrets.io_externalsecrets.yaml $eso/external-secrets.io_externalsecrets.yaml
db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8 openai/openapi.yaml $openai/openapi.yaml
SCHEMAS
echo "fetch-test-schemas: schemas in $dest/crds, $dest/json and $dest/openai" >&2
