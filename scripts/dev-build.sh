#!/usr/bin/env bash
# Builds into private folders so several developers (or agents) can build one checkout at once:
#   scripts/dev-build.sh NAME  → dist-NAME/ and build-NAME/; then run tests with
#   PROTODINO_DIST=dist-NAME PROTODINO_BUILD_DIR=$PWD/build-NAME node scripts/run-tests.mjs [pattern]
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/dev-build.sh NAME}
npx asc --config asconfig.json --target simd --outFile "build-$name/kernels-simd.wasm"
npx asc --config asconfig.json --target relaxed --outFile "build-$name/kernels-relaxed.wasm"
npx tsc -p tsconfig.json --outDir "dist-$name" --tsBuildInfoFile "dist-$name/.tsbuildinfo"
