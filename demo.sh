#!/usr/bin/env bash
# Run all seven steps on a synthesized demo corpus, in data/demo/ and models/demo/ so your own
# data/ and models/ stay untouched. About 5-10 minutes on a 2-core laptop CPU.
#   ./demo.sh            # the whole pipeline
#   QUICK=1 ./demo.sh    # a one-minute smoke run with tiny sizes
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python}
DATA=data/demo
MODELS=models/demo
dirs=(--data-dir "$DATA" --models-dir "$MODELS")
if [[ -n "${QUICK:-}" ]]; then
  songs=3; seconds=20; ae=(--latent-dim 64 --epochs 2); score=(--epochs 2); conv=(--filters 32); lstm=(--units 32)
else
  songs=6; seconds=40; ae=(--epochs 8); score=(--epochs 30); conv=(); lstm=()
fi

echo "== 0/7 making the demo corpus in $DATA/input"
$PYTHON demo/make_demo_corpus.py --out "$DATA/input" --songs "$songs" --seconds "$seconds"
echo "== 1/7 cutting songs into 1/4-second steps"
$PYTHON combine_encoded_test_data.py "${dirs[@]}"
echo "== 2/7 training the autoencoder"
$PYTHON autoencode.py "${dirs[@]}" "${ae[@]}"
echo "== 3/7 round trip of a validation song"
$PYTHON autoencode_test.py "${dirs[@]}"
echo "== 4/7 encoding every song into its score"
$PYTHON create_encoded_data.py "${dirs[@]}"
echo "== 5/7 training the conv1d score model"
$PYTHON conv1d_creater.py "${dirs[@]}" "${score[@]}" "${conv[@]}"
echo "== 6/7 training the lstm score model"
$PYTHON lstm_creater.py "${dirs[@]}" "${score[@]}" "${lstm[@]}"
echo "== 7/7 continuing a validation song for 20 seconds"
$PYTHON music_generator.py "${dirs[@]}" --seconds 20 --model lstm
echo
echo "done: listen to $DATA/output/*_continued.wav (and look at the PNGs beside it)"
