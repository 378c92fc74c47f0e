#!/usr/bin/env bash
# The dev overlay in a local cluster: builds both images, loads them into the cluster, applies
# deploy/k8s/overlays/dev, waits until every Deployment is Available, then port-forwards the auth service
# to http://localhost:9000 and the MCP servers to http://localhost:9101/mcp and :9102/mcp (Ctrl-C stops
# the forwards; the cluster keeps running). Run from anywhere, after `kind create cluster` (or k3d, minikube).
#
# Usage: deploy/scripts/dev-cluster.sh [kind|k3d|minikube]     (default: kind)
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster="${1:-kind}"
namespace=mcp-auth-dev
images=(mcp-auth-server:dev mcp-tools-server:dev)

docker build -f services/auth/Dockerfile -t mcp-auth-server:dev .
docker build -f services/mcp/Dockerfile -t mcp-tools-server:dev .
case "$cluster" in
  kind) kind load docker-image "${images[@]}" ;;
  k3d) k3d image import "${images[@]}" ;;
  minikube) for image in "${images[@]}"; do minikube image load "$image"; done ;;
  *) echo "dev-cluster.sh: unknown cluster kind '$cluster' (kind, k3d or minikube)" >&2; exit 2 ;;
esac

kubectl apply -k deploy/k8s/overlays/dev
kubectl -n "$namespace" rollout status statefulset/postgres --timeout=180s
kubectl -n "$namespace" wait --for=condition=Available deployment --all --timeout=300s

trap 'kill $(jobs -p) 2>/dev/null' EXIT
kubectl -n "$namespace" port-forward service/mcp-auth-server 9000:9000 &
kubectl -n "$namespace" port-forward service/mcp-server-one 9101:8000 &
kubectl -n "$namespace" port-forward service/mcp-server-two 9102:8000 &
echo "auth service: http://localhost:9000   MCP servers: http://localhost:9101/mcp  http://localhost:9102/mcp"
echo "e.g. claude mcp add --transport http tools http://localhost:9101/mcp   (Ctrl-C stops the port-forwards)"
wait
