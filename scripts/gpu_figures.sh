#!/bin/bash
# The GPU figures the README quotes, in one run on a CUDA machine (prepared for the project's device
# machine; about 10 minutes on one H200). Each line prints its own table; nothing is written to the repo.
#   bash scripts/gpu_figures.sh 2>&1 | tee gpu_figures.txt
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'needs a CUDA device'; print(torch.cuda.get_device_name(0))"
# 1. train_clip ViT-B/16, bf16, batch 256: ours vs open_clip_train on the same data (samples/s, peak memory)
python scripts/benchmark_train_clip.py --model vit-b-16 --batch 256 --precision bf16 --steps 60 --log-every 20 \
    --workers 8 --image-size 256
# 2. adapter training: standard loop vs the feature cache (time per epoch, end to end, test SRCC)
python scripts/benchmark_training.py --work /tmp/gpu_bench_training --epochs 20 --synthetic-images 400 --json /tmp/gpu_training.json
# 2b. the cached step alone, eager and with train.compile (torch.compile reduce-overhead: CUDA graphs), ViT-B/16
#     dimensions: ms per step and epoch speed-up over the standard loop, after a warm-up epoch
python scripts/benchmark_cached_step.py --backbone random --epochs 20 --precision bf16
# 3. scoring: the one-CSV command vs folder mode (1 and 2 processes), then batches 32/64/128 in bf16 and fp16
#    against the release-equivalent loop
python scripts/benchmark_scoring.py --images 256 --precision bf16
