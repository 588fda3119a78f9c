#!/usr/bin/env bash
# The GPU readiness check, in one device call (docs/gpu-check.md): Dawn brought up on the machine's
# GPU through the carried Vulkan loader, `protodino doctor`, the WebGPU conformance suite,
# `protodino bench gpu`, and the PyTorch CUDA anchor (the same DINO step in PyTorch, if torch and
# CUDA are there). Everything goes to one file, $OUT/gpu-check.txt; each step has its own time
# limit (545 s in all on the device) so the whole run ends inside a device call's 10 minutes, and a
# failing or overrunning step is recorded with what it printed, not fatal.
#
#   bash scripts/gpu-check.sh            on the GPU machine (after scripts/device-pack.sh here;
#                                        carry .device, dist, build)
#   bash scripts/gpu-check.sh --local    here, on whatever adapter Dawn finds (the software one),
#                                        with reduced sizes and a smaller test selection
# Options: --out DIR (default $OUT, else ./gpu-check-out), --tests REGEX (test files to run).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=device
out=${OUT:-$root/gpu-check-out}
tests=''
while [ $# -gt 0 ]; do
  case $1 in
    --local) mode=local; shift ;;
    --out) out=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done
# The full conformance suite on a GPU; on llvmpipe it takes far longer, so locally three families.
[ -n "$tests" ] || if [ $mode = device ]; then tests='conformance/.*\.test\.js$'; else tests='conformance/(matmul|attention|softmax)\.test\.js$'; fi
mkdir -p "$out"
results=$out/gpu-check.txt
start=$(date +%s)
: > "$results"
say() { echo "$*" | tee -a "$results"; }
summary=()

# step NAME SECONDS COMMAND...: runs it under a time limit, appends its output, notes its status.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  say ""
  say "## $name"
  timeout --kill-after=10 "$limit" "$@" > "$out/step.log" 2>&1
  local rc=$?
  cat "$out/step.log" >> "$results"
  tail -n 3 "$out/step.log"
  local verdict=ok
  [ $rc -eq 0 ] || verdict="failed (exit $rc$([ $rc -eq 124 ] && echo ", over its ${limit} s"))"
  say "-- $name: $verdict in $(($(date +%s) - t0)) s"
  summary+=("$name: $verdict")
  rm -f "$out/step.log"
}

say "# protodino gpu-check ($mode) $(date -u +%FT%TZ)"
say "commit $(git rev-parse --short HEAD 2>/dev/null || cat .device/MANIFEST 2>/dev/null | head -1)"

# Node and node_modules from the pack, where there is one; on the GPU machine there is nothing else.
if [ -f .device/runtime.tar.xz ]; then
  rt=$(mktemp -d /tmp/protodino-runtime.XXXXXX)
  linked=''
  trap 'rm -rf "$rt"; [ -z "$linked" ] || rm -f node_modules' EXIT
  # xz is not in every image; Python's lzma reads the same stream.
  if command -v xz > /dev/null; then unxz='xz -dc'; else unxz="python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)'"; fi
  eval "$unxz .device/runtime.tar.xz" | tar -C "$rt" -xf - || { say "gpu-check: cannot unpack .device/runtime.tar.xz"; exit 1; }
  export PATH=$rt/bin:$PATH
  if [ ! -e node_modules ]; then
    rm -f node_modules # a link left dangling by an earlier run
    ln -s "$rt/node_modules" node_modules && linked=1
  fi
elif [ $mode = device ]; then
  say "gpu-check: .device/runtime.tar.xz is missing: run scripts/device-pack.sh and carry .device, dist, build"
  exit 1
fi
command -v node > /dev/null || { say "gpu-check: no node"; exit 1; }
[ -f dist/src/cli/main.js ] || { say "gpu-check: dist/ is missing (npm run build, and carry dist)"; exit 1; }
say "node $(node --version)"

if [ $mode = device ]; then
  # The loader travels; the driver's ICD manifest is the machine's own (device README).
  export LD_LIBRARY_PATH=$root/.device/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -n "${VK_DRIVER_FILES:-}" ] || [ ! -f $icd ] || export VK_DRIVER_FILES=$icd
  egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -n "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] || [ ! -f $egl ] || export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
  step nvidia-smi 15 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
export EGL_PLATFORM=${EGL_PLATFORM:-surfaceless} XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

step doctor 60 node dist/src/cli/main.js doctor
step conformance-webgpu $([ $mode = device ] && echo 200 || echo 400) \
  env PROTODINO_TEST_BACKENDS=webgpu node scripts/run-tests.mjs "$tests"
step bench-gpu 150 node dist/src/cli/main.js bench gpu $([ $mode = local ] && echo --quick)

# The anchor: the same DINO step in PyTorch on CUDA (bench/peers/dino_step.py, protodino's recipe on
# Fashion-MNIST-sized crops, as bench gpu times it), vit_cpu and vit_small at batch 64.
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null; then
  for arch in vit_cpu vit_small; do
    step torch-$arch 60 python3 bench/peers/dino_step.py --device cuda --arch $arch --batch 64 --max_steps 10
  done
else
  say ""
  say "## torch: no PyTorch with CUDA here, no anchor"
  summary+=("torch: not run (no PyTorch with CUDA)")
fi

say ""
say "# summary ($(($(date +%s) - start)) s)"
for s in "${summary[@]}"; do say "$s"; done
echo "results: $results"
