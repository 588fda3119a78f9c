#!/usr/bin/env bash
# One-time machine setup (Debian, as root): the Mesa/EGL packages the software WebGPU adapter needs,
# the default dataset, and the npm packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node=20
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt "$need_node" ]; then
  echo "setup: Node.js >= $need_node is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# chromium: the report test renders the HTML report headlessly. libopenblas0-pthread: the PyTorch
# peer of the dino-step benchmark (Debian's python3-torch falls back to reference BLAS without it).
# python3-torch: the PyTorch fixtures' cross-checks and test/train/ddp.test.ts, which runs
# scripts/torch-twin/train_ddp.py under torchrun and fails without it (for /usr/bin/python3 only;
# the npm package itself never needs torch).
pkgs=(libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri dataset-fashion-mnist chromium libopenblas0-pthread python3-torch)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# onnxruntime-node (a devDependency of the ONNX export tests) bundles its CPU binaries; its postinstall
# would also fetch the CUDA ones from nuget.org, which the tests never use and offline machines cannot reach.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
