#!/bin/bash
# The restructuring check (docs/ARCHITECTURE.md, "Determinism"): three fixed-seed runs (wasm, 1 thread)
# whose checkpoints must be bit-identical between a build of the commit you start from and yours.
#   scripts/bitcheck.sh <package root with a built dist/> <out dir>
#   then: for r in vit ibot resnet; do node scripts/compare-checkpoints.mjs BASE/$r MINE/$r; done
# vit: vit_cpu + BatchNorm head + KoLeo-proto, 60 steps saved every 10; ibot: vit_cpu + iBOT's mask
# token and patch loss; resnet: resnet_cpu (convolutions, BatchNorm). Fashion-MNIST's first 2000 images.
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 <package root> <out dir>" >&2; exit 2; fi
R=$1
O=$2
mkdir -p "$O"
M="node $R/dist/src/cli/main.js train --backend wasm --threads 1 --quiet --seed 3 --save_every 10 --dataset fashion-mnist --subset 2000 --eval_every_epoch false"
$M --output_dir "$O/vit" --arch vit_cpu --max_steps 60 --batch_size 32 --use_bn_in_head true --koleo_proto 0.1 --out_dim 256 --local_crops_number 2 > "$O/vit.log" 2>&1
$M --output_dir "$O/ibot" --arch vit_cpu --max_steps 20 --batch_size 16 --ibot true --out_dim 128 --local_crops_number 2 > "$O/ibot.log" 2>&1
$M --output_dir "$O/resnet" --arch resnet_cpu --max_steps 20 --batch_size 16 --use_bn_in_head true --out_dim 128 --local_crops_number 2 > "$O/resnet.log" 2>&1
echo "wrote $O/{vit,ibot,resnet}"
