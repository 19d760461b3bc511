#!/usr/bin/env bash
# The course's "install a Llama model and test it", brought up to date.
#
# The course used Lit-LLaMA, which is no longer maintained; its successor LitGPT supports
# the same weights (openlm-research/open_llama_7b). This script:
#   1. checks the GPU (memory, native bf16) and the free disk,
#   2. installs a pinned LitGPT in its own virtual environment ($LITGPT_HOME/venv),
#   3. downloads the weights and converts them to LitGPT's format in bfloat16
#      (~14 GB; without --dtype the converter keeps the checkpoint's own dtype),
#   4. generates from "Hello, my name is"; LitGPT prints tokens/s and the GPU memory used.
#
# Usage (on the GPU instance, after ec2/setup.sh has made nvidia-smi work):
#   bash ec2/llama7b.sh               16-bit weights, ~14 GB of GPU memory
#   bash ec2/llama7b.sh --quantize    4-bit NF4 weights (bitsandbytes), ~6 GB of GPU memory
#   DRY_RUN=1 bash ec2/llama7b.sh     print the commands that would change the machine
#
# Settings (environment variables):
#   MODEL        a LitGPT-supported Hugging Face id (default: openlm-research/open_llama_7b);
#                smaller ones for a quicker start: openlm-research/open_llama_3b,
#                TinyLlama/TinyLlama-1.1B-Chat-v1.0
#   PROMPT       the prompt (default: "Hello, my name is")
#   LITGPT_HOME  where the venv and the checkpoints go (default: ~/litgpt)
#   MIN_FREE_GB  free disk needed for download + conversion (default: depends on MODEL)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Pinned: checked with `pip index versions` and resolved together on 2026-11-28.
LITGPT_PINS=(torch==2.13.0 litgpt==0.5.13 sentencepiece==0.2.3 bitsandbytes==0.49.2)

MODEL=${MODEL:-openlm-research/open_llama_7b}
PROMPT=${PROMPT:-Hello, my name is}
LITGPT_HOME=${LITGPT_HOME:-$HOME/litgpt}
[[ $LITGPT_HOME == /* ]] || LITGPT_HOME=$PWD/$LITGPT_HOME
LITGPT_VENV=$LITGPT_HOME/venv
CHECKPOINTS=$LITGPT_HOME/checkpoints
CHECKPOINT=$CHECKPOINTS/$MODEL
QUANTIZE=""

# Download (Hugging Face files) + converted lit_model.pth + margin, in GB.
case $MODEL in
    openlm-research/open_llama_7b) MODEL_GB=14 DEFAULT_FREE_GB=35 ;;
    openlm-research/open_llama_3b) MODEL_GB=7 DEFAULT_FREE_GB=18 ;;
    TinyLlama/TinyLlama-1.1B-Chat-v1.0) MODEL_GB=2.2 DEFAULT_FREE_GB=8 ;;
    *) MODEL_GB="?" DEFAULT_FREE_GB=35 ;;
esac
MIN_FREE_GB=${MIN_FREE_GB:-$DEFAULT_FREE_GB}

smaller_models() {
    cat <<'EOF'
Smaller models for a quicker start (same script; LitGPT supports them):
  MODEL=openlm-research/open_llama_3b bash ec2/llama7b.sh        ~7 GB of weights, ~18 GB of disk
  MODEL=TinyLlama/TinyLlama-1.1B-Chat-v1.0 bash ec2/llama7b.sh   ~2.2 GB of weights, ~8 GB of disk
EOF
}

parse_args() {
    while (($# > 0)); do
        case $1 in
            --quantize) QUANTIZE=bnb.nf4 ;;
            -h | --help)
                sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
                exit 0 ;;
            *) die "Unknown argument '$1'. Usage: bash ec2/llama7b.sh [--quantize]" ;;
        esac
        shift
    done
}

check_gpu() {
    say "Checking the machine"
    require_x86_64
    driver_works || die "nvidia-smi does not work: run bash ec2/setup.sh first (it installs the NVIDIA driver)."
    read_gpu
    ok "GPU: $GPU_NAME, $GPU_MEM_MIB MiB, compute capability $GPU_CC"
    # Ampere (8.0) and newer compute natively in bfloat16; the T4 and V100 do not: float16 there.
    if (($(version_number "$GPU_CC") >= $(version_number 8.0))); then
        PRECISION=bf16-true
    else
        PRECISION=16-true
        info "$GPU_NAME has no native bfloat16: generating in float16 (--precision 16-true)."
    fi
    local need_mib=15000 what="16-bit weights"
    if [[ -n $QUANTIZE ]]; then need_mib=6000 what="4-bit weights"; fi
    if [[ $MODEL == openlm-research/open_llama_7b ]] && ((GPU_MEM_MIB < need_mib)); then
        local hint="Add --quantize (4-bit weights, ~6 GB of GPU memory), or:"
        if [[ -n $QUANTIZE ]]; then hint="Try:"; fi
        die "$GPU_NAME has $GPU_MEM_MIB MiB; open_llama_7b with $what needs about $need_mib MiB." \
            "$hint" "$(smaller_models)"
    fi
    ok "precision: $PRECISION${QUANTIZE:+, weights quantized with $QUANTIZE}"
}

# True when the LitGPT venv has exactly the pinned versions.
litgpt_installed() {
    [[ -x $LITGPT_VENV/bin/python ]] || return 1
    "$LITGPT_VENV/bin/python" - "${LITGPT_PINS[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import PackageNotFoundError, version

def has(pin):
    name, wanted = pin.split("==")
    try:
        found = version(name)
    except PackageNotFoundError:
        return False
    return found == wanted or found.startswith(wanted + "+")

sys.exit(0 if all(has(pin) for pin in sys.argv[1:]) else 1)
EOF
}

step_litgpt_env() {
    say "LitGPT in its own virtual environment: $LITGPT_VENV"
    if litgpt_installed; then
        ok "installed: ${LITGPT_PINS[*]}"
        return
    fi
    if [[ ! -x $LITGPT_VENV/bin/python ]]; then
        run mkdir -p "$LITGPT_HOME"
        run python3 -m venv "$LITGPT_VENV"
    fi
    run "$LITGPT_VENV/bin/python" -m pip install "${LITGPT_PINS[@]}"
}

# One disk check for everything still to do, before doing any of it.
check_disk() {
    local need=0 what=()
    if ! litgpt_installed; then need=$((need + 10)) what+=("LitGPT and the CUDA build of torch"); fi
    if [[ ! -f $CHECKPOINT/lit_model.pth ]]; then
        need=$((need + MIN_FREE_GB)) what+=("downloading $MODEL and converting it")
    fi
    if ((need == 0)); then return; fi
    local joined
    joined=$(printf '%s + ' "${what[@]}")
    require_free_gb "$need" "$(nearest_dir "$LITGPT_HOME")" "${joined% + }" \
        "$(smaller_models)"
}

step_weights() {
    say "Weights: $MODEL (~$MODEL_GB GB in 16 bits)"
    if [[ -f $CHECKPOINT/lit_model.pth ]]; then
        ok "downloaded and converted: $CHECKPOINT/lit_model.pth"
        return
    fi
    info "Downloading from the Hugging Face Hub, then converting to bfloat16 (takes a few minutes)."
    run "$LITGPT_VENV/bin/litgpt" download "$MODEL" --dtype bfloat16 --checkpoint_dir "$CHECKPOINTS"
    info "To save disk afterwards: the original Hugging Face weight files (*.bin) in $CHECKPOINT"
    info "are only needed to convert again; lit_model.pth is what generation reads."
}

step_generate() {
    say "Generating from \"$PROMPT\""
    info "LitGPT prints the text, then 'Time for inference 1: ... tokens/sec' and 'Memory used: ... GB'."
    local args=(generate "$CHECKPOINT" --prompt "$PROMPT" --max_new_tokens 50 --precision "$PRECISION")
    if [[ -n $QUANTIZE ]]; then args+=(--quantize "$QUANTIZE"); fi
    run "$LITGPT_VENV/bin/litgpt" "${args[@]}"
}

main() {
    parse_args "$@"
    announce_dry_run
    check_gpu
    check_disk
    step_litgpt_env
    step_weights
    step_generate
    if [[ -z $QUANTIZE ]]; then
        say "Try the 4-bit version: bash ec2/llama7b.sh --quantize (less than half the GPU memory)."
    fi
}

main "$@"
