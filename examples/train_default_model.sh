#!/usr/bin/env bash
# The recipe of the model bundled with gencrop (src/gencrop/weights/default).
#
#   FCDB=path/to/fcdb  (images/, cropping_training_set.json, cropping_testing_set.json)
#   bash examples/train_default_model.sh
#
# Trains on the official FCDB *training* split only; the official test split is
# the development benchmark and is never trained on.
set -euo pipefail
FCDB=${FCDB:?set FCDB to the FCDB folder}
DATA=${DATA:-data}
RUN=${RUN:-runs/default}

# 1. Real-context training layout: canvas = the photo, frame = the expert crop,
#    subject = the most prominent detection or the salient region.
gencrop data from-crops "$FCDB/cropping_training_set.json" "$FCDB/images" -o "$DATA/fcdb_train"

# 2. Train (ImageNet EfficientNet-Lite0 weights ship in a package: offline).
#    The heuristic filter is for outpainting artefacts, so it is off for real photos;
#    half of the views are whole photos, the situation the model faces at test time.
gencrop train "$DATA/fcdb_train/outpaint" -o "$RUN" \
    --arch tf_efficientnet_lite0 --pretrained auto --use-subject \
    --no-heuristic-filter --whole-view-prob 0.5 \
    --dim 256 --batch-size 16 --epochs 14 --lr 2e-4 --warmup 100 --workers 2 --seed 0

# 3. Ship: fp16 safetensors of the best epoch.
python -c "import sys, torch; from gencrop.modeling import GenCrop; GenCrop.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2], dtype=torch.float16)" "$RUN" src/gencrop/weights/default
