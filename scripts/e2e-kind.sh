#!/usr/bin/env bash
# End to end on a real cluster: kind + the Pulumi CLI + the Automation API (docs/automation.md).
# NOT run by CI: it needs Docker, kind, kubectl and the Pulumi CLI, which CI machines lack.
#
#   bash scripts/e2e-kind.sh                  # create cluster, roll out alice+bob, verify, tear down
#   PROTOCOL=NOTLS bash scripts/e2e-kind.sh   # the same over plain HTTP
#   PROTOCOL=MTLS bash scripts/e2e-kind.sh    # KusciaAPI with a client certificate (port-forward)
#   KEEP=1 bash scripts/e2e-kind.sh           # leave cluster and stacks up to look around
#
# Steps: check tools -> kind cluster -> `network up` (alice + bob, in-cluster MySQL each) ->
# `verify` both stacks -> both routes Ready inside the Kuscia pods -> `network destroy` ->
# no autonomy-* namespace and no stack left -> delete the cluster. Exit 0 only if all held.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CLUSTER=${CLUSTER:-kuscia-e2e}
PROTOCOL=${PROTOCOL:-TLS}
TIMEOUT=${TIMEOUT:-900}                 # seconds for the links to become Ready
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-e2e-only-passphrase}

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'e2e-kind: FAIL: %s\n' "$*" >&2; exit 1; }

# -- 1. tools, checked before anything is created ---------------------------------------------------
missing=()
command -v docker >/dev/null 2>&1 || missing+=("docker (https://docs.docker.com/engine/install/)")
command -v kind >/dev/null 2>&1 || missing+=("kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")
command -v kubectl >/dev/null 2>&1 || missing+=("kubectl (https://kubernetes.io/docs/tasks/tools/)")
command -v pulumi >/dev/null 2>&1 || missing+=("pulumi (curl -fsSL https://get.pulumi.com | sh, then add ~/.pulumi/bin to PATH)")
command -v python3 >/dev/null 2>&1 || missing+=("python3 (3.10 or newer)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e-kind: this script needs tools that are not installed:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 2
fi
docker info >/dev/null 2>&1 || { echo "e2e-kind: docker is installed but the daemon is not reachable (is it running? may you use it?)" >&2; exit 2; }

PY=${PYTHON:-python3}
if ! "$PY" -c 'import kuscia_components, pulumi' >/dev/null 2>&1; then
  say "installing the package into .venv-e2e"
  python3 -m venv .venv-e2e
  .venv-e2e/bin/pip install -q -r requirements.txt
  PY=$REPO/.venv-e2e/bin/python
fi

WORK=$(mktemp -d -t kuscia-e2e.XXXXXX)
SPEC=$WORK/network.yaml
cleanup() {
  status=$?
  if [ "${KEEP:-0}" = "1" ]; then
    echo "KEEP=1: cluster kind-$CLUSTER and the stacks in $WORK are left as they are."
    echo "  tear down: $PY -m kuscia_components network destroy --spec $SPEC && kind delete cluster --name $CLUSTER"
    exit $status
  fi
  if [ $status -ne 0 ]; then
    say "cleaning up after a failure"
    "$PY" -m kuscia_components network destroy --spec "$SPEC" --quiet >/dev/null 2>&1 || true
  fi
  kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT

# -- 2. the cluster ------------------------------------------------------------------------------------
say "kind cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 180s
CONTEXT=kind-$CLUSTER
kubectl --context "$CONTEXT" get nodes

# -- 3. the rollout ------------------------------------------------------------------------------------
cat >"$SPEC" <<EOF
name: e2e
topology: mesh
defaults:
  protocol: $PROTOCOL
  runtime: runk
  kubeContext: $CONTEXT
  capacity: {cpu: "2", memory: 4Gi, storage: 20Gi}
  resources: {requests: {cpu: 250m, memory: 1Gi}, limits: {cpu: "2", memory: 4Gi}}
  database: {mode: in-cluster, storageSize: 2Gi}
  requirePeerReady: true
parties:
  - domainId: alice
  - domainId: bob
EOF
say "network up (alice + bob, $PROTOCOL, in-cluster MySQL)"
"$PY" -m kuscia_components network up --spec "$SPEC" --timeout "$TIMEOUT" --pulumi-output \
  || fail "network up did not bring every party and link up (report above)"

# -- 4. verify both stacks (their settings live in the Automation API work dir) ---------------------
PROJECT=$WORK/.kuscia-network
for party in alice bob; do
  say "verify $party"
  kubectl --context "$CONTEXT" -n "autonomy-$party" port-forward svc/kuscia-mysql 13306:3306 >/dev/null 2>&1 &
  forward=$!
  sleep 3
  if ! "$PY" -m kuscia_components verify --stack "$party" --project-dir "$PROJECT" --db-address 127.0.0.1:13306; then
    kill "$forward" 2>/dev/null || true
    fail "verify $party"
  fi
  kill "$forward" 2>/dev/null || true
  wait "$forward" 2>/dev/null || true
done

# -- 5. both routes Ready, asked of Kuscia itself -------------------------------------------------------
for pair in alice:bob bob:alice; do
  src=${pair%%:*} dst=${pair##*:}
  pod=$(kubectl --context "$CONTEXT" -n "autonomy-$src" get pods -l "app=kuscia-autonomy-$src" \
        -o jsonpath='{.items[0].metadata.name}')
  ready=$(kubectl --context "$CONTEXT" -n "autonomy-$src" exec "$pod" -- \
          kubectl get cdr "$src-$dst" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  [ "$ready" = "True" ] || fail "route $src-$dst is not Ready on $src's node (Ready=$ready)"
  echo "route $src-$dst: Ready"
done
"$PY" -m kuscia_components network status --spec "$SPEC" || fail "network status is not OK"

if [ "${KEEP:-0}" = "1" ]; then
  exit 0
fi

# -- 6. tear down and check nothing is left ------------------------------------------------------------
say "network destroy"
"$PY" -m kuscia_components network destroy --spec "$SPEC" || fail "network destroy"
for _ in $(seq 1 60); do
  left=$(kubectl --context "$CONTEXT" get ns -o name | grep -c '^namespace/autonomy-' || true)
  [ "$left" = "0" ] && break
  sleep 5
done
[ "$left" = "0" ] || fail "namespaces left behind: $(kubectl --context "$CONTEXT" get ns -o name | grep autonomy-)"
stacks=$(cd "$PROJECT" && pulumi stack ls --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$stacks" = "0" ] || fail "$stacks stack(s) left in $PROJECT"

say "e2e-kind: alice and bob deployed, verified, peered (Ready both ways) and removed without a trace"
