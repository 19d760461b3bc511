#!/usr/bin/env bash
# The course's "install a Llama model and test it", brought up to date.
#
# The course used Lit-LLaMA, which is no longer maintained; its successor LitGPT supports
# the same weights (openlm-research/open_llama_7b). This script:
#   1. checks the GPU (memory, native bf16) and the free disk,
#   2. installs LitGPT in its own virtual environment ($LITGPT_HOME/venv) from a lock file that
#      pins every package (ec2/litgpt-lock.txt, and torch's CUDA libraries: litgpt-lock-cuda.txt),
#   3. downloads the weights at a pinned revision and converts them to LitGPT's format in bfloat16
#      (~14 GB; without --dtype the converter keeps the checkpoint's own dtype); an interrupted
#      download resumes, an interrupted conversion is done again,
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
#   REVISION     the Hugging Face commit (or branch) to download (default: the pinned commit of
#                open_llama_7b; for other models "main", which is not pinned)
#   PROMPT       the prompt (default: "Hello, my name is")
#   LITGPT_HOME  where the venv and the checkpoints go (default: ~/litgpt)
#   MIN_FREE_GB  free disk needed for download + conversion (default: depends on MODEL)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=litgpt_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/litgpt_env.sh"

MODEL=${MODEL:-openlm-research/open_llama_7b}
[[ $MODEL =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
    die "MODEL must be a Hugging Face id, ORG/NAME (e.g. openlm-research/open_llama_3b); got '$MODEL'."
PROMPT=${PROMPT:-Hello, my name is}
LITGPT_HOME=${LITGPT_HOME:-$HOME/litgpt}
[[ $LITGPT_HOME == /* ]] || LITGPT_HOME=$PWD/$LITGPT_HOME
LITGPT_VENV=$LITGPT_HOME/venv
CHECKPOINTS=$LITGPT_HOME/checkpoints
CHECKPOINT=$CHECKPOINTS/$MODEL
QUANTIZE=""

# Download (Hugging Face files) + converted lit_model.pth + margin, in GB; the pinned revision.
# open_llama_7b's commit: the sha that the Hub's API reported for the model (last modified
# 2023-06-16), and the snapshot name of its Hugging Face cache in several public projects (found by
# searching them; the Hub itself was not reachable from where this was written). The smaller
# models' revisions are not pinned: no commit of theirs was checked.
case $MODEL in
    openlm-research/open_llama_7b)
        MODEL_GB=14 DEFAULT_FREE_GB=35 DEFAULT_REVISION=6fb184ff23774c25bf84b3628e49c8b78372c7be ;;
    openlm-research/open_llama_3b) MODEL_GB=7 DEFAULT_FREE_GB=18 DEFAULT_REVISION=main ;;
    TinyLlama/TinyLlama-1.1B-Chat-v1.0) MODEL_GB=2.2 DEFAULT_FREE_GB=8 DEFAULT_REVISION=main ;;
    *) MODEL_GB="?" DEFAULT_FREE_GB=35 DEFAULT_REVISION=main ;;
esac
MIN_FREE_GB=${MIN_FREE_GB:-$DEFAULT_FREE_GB}
REVISION=${REVISION:-$DEFAULT_REVISION}
[[ $REVISION =~ ^[A-Za-z0-9][A-Za-z0-9._/-]*$ && $REVISION != *..* ]] ||
    die "REVISION must be a commit hash (40 hex digits) or a branch name; got '$REVISION'."

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
                print_help "${BASH_SOURCE[0]}"
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

step_litgpt_env() {
    say "LitGPT in its own virtual environment: $LITGPT_VENV"
    if litgpt_installed "$LITGPT_VENV"; then
        ok "installed from ec2/$(basename "$LITGPT_LOCK") and ec2/$(basename "$LITGPT_LOCK_CUDA")"
        return
    fi
    info "from ec2/$(basename "$LITGPT_LOCK") (every package pinned) and torch's CUDA libraries from"
    info "ec2/$(basename "$LITGPT_LOCK_CUDA"); then pip check"
    install_litgpt "$LITGPT_VENV" cuda
}

# LitGPT's own torch must see the GPU before ~14 GB are downloaded for it.
check_litgpt_cuda() {
    say "Does LitGPT's torch see the GPU?"
    if [[ $DRY_RUN == 1 && ! -x $LITGPT_VENV/bin/python ]]; then
        info "(dry run: checked once the venv is installed)"
        return
    fi
    if ! "$LITGPT_VENV/bin/python" - <<'EOF'; then
import torch

available = torch.cuda.is_available()
print(f"    torch {torch.__version__} (CUDA {torch.version.cuda}); torch.cuda.is_available(): {available}")
if available:
    print(f"    {torch.cuda.get_device_name(0)}")
raise SystemExit(0 if available else 1)
EOF
        die "LitGPT's torch, in $LITGPT_VENV, cannot use the GPU." \
            "nvidia-smi must work (bash ec2/setup.sh), and torch 2.13 (CUDA 13) needs driver R580 or newer." \
            "If it is a CPU build of torch, delete $LITGPT_VENV and run this again."
    fi
}

# One disk check for everything still to do, before doing any of it.
check_disk() {
    local need=0 what=()
    if ! litgpt_installed "$LITGPT_VENV"; then need=$((need + 10)) what+=("LitGPT and the CUDA build of torch"); fi
    if [[ ! -f $CHECKPOINT/lit_model.pth ]]; then
        need=$((need + MIN_FREE_GB)) what+=("downloading $MODEL and converting it")
    fi
    if ((need == 0)); then return; fi
    local joined
    joined=$(printf '%s + ' "${what[@]}")
    require_free_gb "$need" "$(nearest_dir "$LITGPT_HOME")" "${joined% + }" \
        "$(smaller_models)"
}

# A checkpoint converted from another revision than REVISION is not used silently.
check_revision() {
    [[ -f $CHECKPOINT/.revision ]] || return 0
    local asked resolved
    read -r asked resolved <"$CHECKPOINT/.revision" || true
    if [[ $REVISION != "$asked" && $REVISION != "$resolved" ]]; then
        die "$CHECKPOINT was downloaded at revision $asked (commit $resolved); REVISION is $REVISION." \
            "To use $REVISION, delete $CHECKPOINT and run this again; to keep it, run with REVISION=$asked."
    fi
}

step_weights() {
    say "Weights: $MODEL at revision $REVISION (~$MODEL_GB GB in 16 bits)"
    check_revision
    if [[ -f $CHECKPOINT/lit_model.pth ]]; then
        ok "downloaded and converted: $CHECKPOINT/lit_model.pth"
        return
    fi
    if [[ $REVISION != "$DEFAULT_REVISION" || ! $REVISION =~ ^[0-9a-f]{40}$ ]]; then
        info "REVISION=$REVISION: not the commit this script pins; the files may differ from those it was checked with."
    fi
    info "Downloading from the Hugging Face Hub (resumes an interrupted download), then converting to"
    info "bfloat16 (takes a few minutes)."
    run "$LITGPT_VENV/bin/python" "$EC2_DIR/hf_download.py" "$MODEL" "$REVISION" "$CHECKPOINT"
    convert_checkpoint "$CHECKPOINT" "$MODEL" bfloat16 "$LITGPT_VENV/bin/litgpt"
    info "To save disk afterwards: the original Hugging Face weight files (*.bin) in $CHECKPOINT"
    info "are only needed to convert again; lit_model.pth is what generation reads."
}

step_generate() {
    say "Generating from \"$PROMPT\""
    info "LitGPT prints the text, then 'Time for inference 1: ... tokens/sec' and 'Memory used: ... GB'."
    local args=(generate "$CHECKPOINT" --prompt "$PROMPT" --max_new_tokens 50 --precision "$PRECISION")
    if [[ -n $QUANTIZE ]]; then args+=(--quantize "$QUANTIZE"); fi
    # LitGPT's output is also kept in the checkpoint folder: notebook 09 shows its tokens/s and memory
    # beside our own Llama's on the same prompt (written whole or not at all)
    local log=$CHECKPOINT/litgpt-generate${QUANTIZE:+-$QUANTIZE}.log
    printf '+ %s\n' "$(quote_cmd "$LITGPT_VENV/bin/litgpt" "${args[@]}")"
    if [[ $DRY_RUN == 1 ]]; then return 0; fi
    "$LITGPT_VENV/bin/litgpt" "${args[@]}" 2>&1 | tee "$log.partial"
    mv "$log.partial" "$log"
    info "LitGPT's output is saved in $log (notebook 09 reads it)."
}

main() {
    parse_args "$@"
    announce_dry_run
    check_gpu
    check_disk
    step_litgpt_env
    check_litgpt_cuda
    step_weights
    step_generate
    if [[ -z $QUANTIZE ]]; then
        say "Try the 4-bit version: bash ec2/llama7b.sh --quantize (less than half the GPU memory)."
    fi
}

main "$@"
