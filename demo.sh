#!/usr/bin/env bash
# Run all seven steps on a synthesized demo corpus, in data/demo/ and models/demo/ so your own
# data/ and models/ stay untouched. About a minute on 2 CPU cores.
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
  songs=6; seconds=40; ae=(); score=(--epochs 30); conv=(); lstm=()
fi

timings=()
run_step() {  # run_step "what it does" command...: runs it and remembers how long it took
  local what=$1 started=$SECONDS
  shift
  echo "== $what"
  "$@"
  timings+=("$(printf '%5d s  %s' $((SECONDS - started)) "$what")")
}

run_step "0/7 making the demo corpus in $DATA/input" \
  $PYTHON demo/make_demo_corpus.py --out "$DATA/input" --songs "$songs" --seconds "$seconds"
run_step "1/7 cutting songs into 1/4-second steps" $PYTHON combine_encoded_test_data.py "${dirs[@]}"
run_step "2/7 training the autoencoder" $PYTHON autoencode.py "${dirs[@]}" ${ae[@]+"${ae[@]}"}
run_step "3/7 round trip of a validation song" $PYTHON autoencode_test.py "${dirs[@]}"
run_step "4/7 encoding every song into its score" $PYTHON create_encoded_data.py "${dirs[@]}"
run_step "5/7 training the conv1d score model" \
  $PYTHON conv1d_creater.py "${dirs[@]}" "${score[@]}" ${conv[@]+"${conv[@]}"}
run_step "6/7 training the lstm score model" \
  $PYTHON lstm_creater.py "${dirs[@]}" "${score[@]}" ${lstm[@]+"${lstm[@]}"}
run_step "7/7 continuing a validation song for 20 seconds" \
  $PYTHON music_generator.py "${dirs[@]}" --seconds 20 --model lstm
echo
echo "time per step:"
printf '%s\n' "${timings[@]}"
echo
echo "done: listen to $DATA/output/*_continued.wav (and look at the PNGs beside it)"
