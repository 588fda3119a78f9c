#!/usr/bin/env bash
# Packs what a GPU machine lacks for scripts/gpu-check.sh: that machine has no Node.js, no package
# registry and no Vulkan loader, and only the working tree plus at most 8 carried paths of
# 64 MiB in all travel there. Writes, in .device/ (or --out DIR):
#   runtime.tar.xz   this machine's node binary and the node_modules the checks load at run time
#                    (webgpu with the linux-x64 dawn.node only; uvu and its dependencies; pngjs,
#                    jpeg-js), xz-compressed: node alone is ~95 MiB raw, ~23 MiB packed
#   lib/libvulkan.so.1   the Vulkan loader (this machine's, else Debian's libvulkan1 .deb)
#   MANIFEST         what is in it, and the size of everything that travels
# Then one device call: carry [".device", "dist", "build"], command `bash scripts/gpu-check.sh`.
# Run after `npm run build`. Reruns reuse runtime.tar.xz while none of its inputs changed.
# Fails when the travelling total (tracked and untracked-not-ignored files, .device, dist, build)
# exceeds 64 MiB.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
out=.device
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    *) echo "device-pack: unknown argument $1 (usage: device-pack.sh [--out DIR])" >&2; exit 2 ;;
  esac
done
limit=$((64 * 1024 * 1024))
[ -f dist/src/cli/main.js ] && [ -f build/kernels-simd.wasm ] || { echo "device-pack: run npm run build first" >&2; exit 1; }
# Keep .device out of git status. A clone made without git's templates (CI's) has no .git/info.
if [ "$out" = .device ]; then
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qx '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >> "$exclude"
fi
mkdir -p "$out/lib"

# Node resolves packages through node_modules symlinks here; -L below copies what they point to.
nm=node_modules
modules="webgpu/package.json webgpu/index.js webgpu/dist/linux-x64/dawn.node uvu dequal diff kleur sade mri pngjs jpeg-js"
node_bin=$(readlink -f "$(command -v node)")
inputs=("$node_bin")
for m in $modules; do inputs+=("$nm/$m"); done
stale=1
if [ -f "$out/runtime.tar.xz" ]; then
  stale=0
  for f in "${inputs[@]}"; do
    if [ -n "$(find -L "$f" -newer "$out/runtime.tar.xz" -print -quit)" ]; then stale=1; break; fi
  done
fi
if [ $stale = 1 ]; then
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/bin" "$stage/node_modules"
  cp "$node_bin" "$stage/bin/node"
  for m in $modules; do
    mkdir -p "$stage/node_modules/$(dirname "$m")"
    cp -RL "$nm/$m" "$stage/node_modules/$m"
  done
  tar -C "$stage" -cf - bin node_modules | xz -T0 -6 > "$out/runtime.tar.xz.tmp"
  mv "$out/runtime.tar.xz.tmp" "$out/runtime.tar.xz"
fi

# Dawn dlopen()s libvulkan.so.1; the NVIDIA driver's own ICD comes with the machine.
if [ ! -f "$out/lib/libvulkan.so.1" ]; then
  sys=$(/sbin/ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 .*x86-64/ {print $NF; exit}')
  if [ -n "$sys" ]; then
    cp -L "$sys" "$out/lib/libvulkan.so.1"
  else
    debs=$(mktemp -d)
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64'
    (cd "$debs" && apt-get $o download libvulkan1 >/dev/null 2>&1) ||
      { echo "device-pack: no system libvulkan.so.1 and apt-get download libvulkan1 failed (no network?)" >&2; exit 1; }
    dpkg -x "$debs"/libvulkan1_*.deb "$debs/x"
    cp -L "$(find "$debs/x" -name 'libvulkan.so.1' | head -1)" "$out/lib/libvulkan.so.1"
    rm -rf "$debs"
  fi
fi

# Everything that travels: the tree git would send plus the carried paths.
# The pack and the carried paths are counted once each, even where git does not ignore them.
tree=$(git ls-files -z -co --exclude-standard | grep -zv -e "^${out#./}/" -e '^dist/' -e '^build/' |
  xargs -0 -r stat -L -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
sum() { find -L "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
device=$(sum "$out")
carried=$(sum dist build)
total=$((tree + device + carried))
{
  echo "packed $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)"
  echo "node $(node --version) ($node_bin)"
  echo "modules: $modules"
  echo "runtime.tar.xz $(stat -c %s "$out/runtime.tar.xz") bytes"
  echo "lib/libvulkan.so.1 $(stat -c %s "$out/lib/libvulkan.so.1") bytes"
  echo "travels: tree $tree + $out $device + dist and build $carried = $total bytes (limit $limit)"
} > "$out/MANIFEST"
cat "$out/MANIFEST"
if [ "$total" -gt "$limit" ]; then
  echo "device-pack: $total bytes would travel, over the 64 MiB limit" >&2
  exit 1
fi
