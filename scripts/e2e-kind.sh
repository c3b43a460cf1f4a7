#!/usr/bin/env bash
# End-to-end on a real cluster: kind + the Pulumi CLI. NOT run by CI (it needs Docker, kind,
# kubectl and the Pulumi CLI, none of which the CI machines have).
#
#   bash scripts/e2e-kind.sh            # create cluster, deploy alice+bob, verify, destroy
#   KEEP=1 bash scripts/e2e-kind.sh     # leave the cluster and stacks up for inspection
#
# Steps: create a kind cluster -> `network up` for alice and bob (in-cluster MySQL, TLS) ->
# `verify` both (pod, KusciaAPI, gateway 401, routes Ready both ways) -> `network destroy` ->
# check no autonomy-* namespace is left -> delete the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-kuscia-e2e}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-e2e-only-passphrase}
export PULUMI_BACKEND_URL="file://$PWD/.pulumi-e2e"

missing=()
for tool in docker kind kubectl pulumi python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e-kind: missing ${missing[*]}." >&2
  echo "Install Docker, kind (https://kind.sigs.k8s.io), kubectl and the Pulumi CLI (curl -fsSL https://get.pulumi.com | sh)." >&2
  exit 2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
PY=.venv/bin/python

cleanup() {
  if [ "${KEEP:-0}" != "1" ]; then
    $PY -m kuscia_components network destroy --spec "$spec" --backend "$PULUMI_BACKEND_URL" || true
    kind delete cluster --name "$CLUSTER" || true
  fi
}

kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kubectl config use-context "kind-$CLUSTER"
mkdir -p .pulumi-e2e

spec=$(mktemp --suffix=.yaml)
cat > "$spec" <<EOF
topology: mesh
defaults:
  protocol: TLS
  runtime: runk
  kubeContext: kind-$CLUSTER
  capacity: {cpu: "2", memory: 4Gi, storage: 20Gi}
  resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: "2", memory: 4Gi}}
  peeringTimeoutSeconds: 600
  requirePeerReady: true
parties:
  - domainId: alice
  - domainId: bob
EOF
trap cleanup EXIT

$PY -m kuscia_components network up --spec "$spec" --backend "$PULUMI_BACKEND_URL" --timeout 600

for party in alice bob; do
  cat > "Pulumi.e2e-$party.yaml" <<EOF
config:
  kuscia:domainId: $party
  kuscia:kubeContext: kind-$CLUSTER
  kuscia:capacity: {cpu: "2", memory: 4Gi, storage: 20Gi}
  kuscia:peers:
    - domainId: $([ $party = alice ] && echo bob || echo alice)
      stack: $([ $party = alice ] && echo bob || echo alice)
EOF
  kubectl -n "autonomy-$party" port-forward svc/kuscia-mysql 13306:3306 >/dev/null 2>&1 &
  pf=$!
  sleep 3
  $PY -m kuscia_components verify --config "Pulumi.e2e-$party.yaml" --db-address 127.0.0.1:13306
  kill "$pf"
  rm -f "Pulumi.e2e-$party.yaml"
done

for route in alice-bob bob-alice; do
  pod=$(kubectl -n autonomy-alice get pods -l app=kuscia-autonomy-alice -o jsonpath='{.items[0].metadata.name}')
  ready=$(kubectl -n autonomy-alice exec "$pod" -- kubectl get cdr "$route" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  [ "$ready" = "True" ] || { echo "route $route is not Ready ($ready)" >&2; exit 1; }
done

if [ "${KEEP:-0}" != "1" ]; then
  $PY -m kuscia_components network destroy --spec "$spec" --backend "$PULUMI_BACKEND_URL"
  left=$(kubectl get ns -o name | grep -c 'namespace/autonomy-' || true)
  [ "$left" = "0" ] || { echo "namespaces left behind: $left" >&2; exit 1; }
fi
echo "e2e-kind: alice and bob deployed, verified, peered (Ready both ways) and removed."
