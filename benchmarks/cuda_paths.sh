#!/usr/bin/env bash
# The CUDA paths the CPU suite cannot check, in one short script for a GPU machine: the CUDA
# tests (layer, fp16/bf16 autocast, torch.compile, channels_last), train.py with bf16 + compile +
# channels_last and with fp16 under torchrun (NCCL, SyncBatchNorm), classify.py at 224 px with
# pdresnet50 under torchrun (NCCL, bf16, channels_last) then -e on its best checkpoint, and the
# padding speed benchmark on the GPU. Each step prints its exit code and seconds.
# Usage, from the repository root: bash benchmarks/cuda_paths.sh [LOG_DIR]
# (Prepared for a lent GPU; its CPU twins run in the suite: gloo DDP, bf16 autocast.)
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
LOG_DIR=${1:-/tmp/cuda_paths}
WORK=$(mktemp -d)
mkdir -p "$LOG_DIR"
PY=${PYTHON:-python3}

step() {  # step NAME command...: run, print its exit code and wall time
    local name=$1; shift
    echo "=== $name"
    local start=$SECONDS
    "$@" > "$LOG_DIR/$name.log" 2>&1
    local rc=$?
    tail -n 15 "$LOG_DIR/$name.log"
    echo "=== $name: rc=$rc, $((SECONDS - start)) s"
}

nvidia-smi -L
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', \
torchvision.__version__, torch.cuda.get_device_name())"

step cuda_tests $PY -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py \
    tests/test_metrics.py::test_cuda_matches_cpu

sets() { for kv in "$@"; do printf -- '--set\n%s\n' "$kv"; done; }
mapfile -t common < <(sets train.device=cuda data.num_workers=4 log.progress=false \
    train.max_steps=400 train.val_every=400 train.ckpt_every=400 train.finetune_step=300 \
    train.log_every=100 data.batch_size=32)
step train_bf16_compile $PY train.py --config configs/demo.yaml "${common[@]}" \
    $(sets train.precision=bf16 train.compile=true train.channels_last=true \
    "train.run_dir=$WORK/bf16")
step train_fp16_torchrun_nccl $PY -m torch.distributed.run --standalone --nproc_per_node=1 \
    train.py --config configs/demo.yaml "${common[@]}" \
    $(sets train.precision=fp16 train.sync_bn=true "train.run_dir=$WORK/fp16")

# A small ImageFolder of 224+ px JPEGs whose classes differ in colour, so accuracy can rise.
$PY - "$WORK/cls" <<'PYEOF'
import sys, pathlib
import numpy as np
from PIL import Image
root = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(0)
for split, count in (("train", 48), ("val", 16)):
    for c in range(4):
        folder = root / split / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 96, (288, 320, 3)).astype(np.uint8)
            image[..., c % 3] += 120 + 30 * (c // 3)
            Image.fromarray(image).save(folder / f"{i}.jpg", quality=90)
PYEOF
cls=(--data_train "$WORK/cls/train" --data_val "$WORK/cls/val" -j 8 --print-freq 2)
step classify_pdresnet50_nccl_bf16 $PY -m torch.distributed.run --standalone --nproc_per_node=1 \
    classify.py -a pdresnet50 "${cls[@]}" -b 64 --epochs 3 --lr 0.02 --precision bf16 \
    --channels-last --device cuda --prefix gpu --ckptdirprefix "$WORK/"
step classify_evaluate $PY classify.py -a pdresnet50 -e --device cuda "${cls[@]}" -b 32 \
    --resume "$WORK/checkpoint_pdresnet50_gpu/model_best.pth.tar"
step classify_pdvgg16_bn_fp16 $PY classify.py -a pdvgg16_bn "${cls[@]}" -b 32 --epochs 1 \
    --precision fp16 --device cuda --prefix gpu --ckptdirprefix "$WORK/"

if [ -f benchmarks/padding_speed.py ]; then
    step padding_speed_fp32 $PY benchmarks/padding_speed.py --device cuda --batch-size 64
    step padding_speed_bf16_cl $PY benchmarks/padding_speed.py --device cuda --batch-size 64 \
        --amp bf16 --channels-last
fi
rm -rf "$WORK"
