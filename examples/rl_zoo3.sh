#!/usr/bin/env bash
# rl-zoo3 trains PPO with the plugin's hyperparameters (hyperparams/ppo.yml: the MiniGrid features
# extractor, the sample-efficiency and visitation-heatmap callbacks); `sb3-llmae report` then reads
# rl-zoo3's run folders as they are (<log folder>/ppo/<env>_<n>/eval_logs/*.npz).
#
#   bash examples/rl_zoo3.sh                                   # DoorKey-5x5, seeds 0 and 1, 100k steps each
#   STEPS=4096 EVAL_FREQ=2048 bash examples/rl_zoo3.sh         # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ENV_ID=${ENV_ID:-MiniGrid-DoorKey-5x5-v0}
STEPS=${STEPS:-100000}
EVAL_FREQ=${EVAL_FREQ:-10000}
EVAL_EPISODES=${EVAL_EPISODES:-20}
SEEDS=${SEEDS:-"0 1"}
OUT=${OUT:-zoo_logs}
REPS=${REPS:-50000}

# The YAML's callbacks, with this script's evaluation settings (rl-zoo3 evaluates each value with eval()).
CALLBACKS="[{'sb3_llmae.SampleEfficiencyCallback': {'eval_freq': ${EVAL_FREQ}, 'n_eval_episodes': ${EVAL_EPISODES}}},"
CALLBACKS+=" {'sb3_llmae.VisitationHeatmapCallback': {'save_freq': ${EVAL_FREQ}}}]"
for seed in $SEEDS; do
    # --eval-freq -1: rl-zoo3's own EvalCallback is off, SampleEfficiencyCallback evaluates instead
    "$PYTHON" -m rl_zoo3.train --algo ppo --env "$ENV_ID" --gym-packages sb3_llmae \
        --conf-file hyperparams/ppo.yml -n "$STEPS" --seed "$seed" -f "$OUT" --eval-freq -1 \
        --hyperparams "callback:$CALLBACKS"
done
"$PYTHON" -m sb3_llmae.cli report "$OUT" --reps "$REPS"
