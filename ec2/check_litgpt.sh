#!/usr/bin/env bash
# Check the 7B recipe's LitGPT (ec2/llama7b.sh) on any Linux x86_64 machine, no GPU needed:
#   install  the LitGPT venv from ec2/litgpt-lock.txt exactly as llama7b.sh does (the same
#            install_litgpt, ec2/litgpt_env.sh), then `pip check`; needs the network
#   check    offline: `litgpt --help`, then a tiny Llama made on the spot (2 layers, random weights,
#            a SentencePiece tokenizer; ec2/tiny_llama.py) converted with llama7b.sh's atomic
#            conversion and `litgpt convert_to_litgpt`, and `litgpt generate` greedily on the CPU:
#            the text must be what transformers generates from the same weights
#
# Usage:  bash ec2/check_litgpt.sh [install] [check]     (no argument: both)
# CI (.ci/run) runs `install`, then `check` without the network.
#
# Settings (environment variables):
#   LITGPT_VENV       the venv (default: ~/litgpt/venv, llama7b.sh's; CI uses a temporary one)
#   REFERENCE_PYTHON  a Python with transformers, the reference (default: the course's .venv)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=litgpt_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/litgpt_env.sh"

LITGPT_VENV=${LITGPT_VENV:-$HOME/litgpt/venv}
[[ $LITGPT_VENV == /* ]] || LITGPT_VENV=$PWD/$LITGPT_VENV
REFERENCE_PYTHON=${REFERENCE_PYTHON:-$REPO_ROOT/.venv/bin/python}
WORK=""

cleanup() { if [[ -n $WORK ]]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

do_install() {
    say "LitGPT venv from the lock: $LITGPT_VENV"
    if litgpt_installed "$LITGPT_VENV"; then
        ok "installed (the same lock files as last time)"
        return
    fi
    install_litgpt "$LITGPT_VENV" auto
}

do_check() {
    litgpt_installed "$LITGPT_VENV" ||
        die "No LitGPT venv installed from the current lock at $LITGPT_VENV." \
            "Run: LITGPT_VENV=$LITGPT_VENV bash ec2/check_litgpt.sh install"
    [[ -x $REFERENCE_PYTHON ]] ||
        die "No reference Python at $REFERENCE_PYTHON: it needs transformers (the course's .venv has it)." \
            "Set REFERENCE_PYTHON, or run bash ec2/setup.sh (or the README's install) first."
    # Offline and on the CPU, whatever the machine has.
    export HF_HUB_OFFLINE=1 CUDA_VISIBLE_DEVICES=""
    local python=$LITGPT_VENV/bin/python
    local tiny=("$python" "$EC2_DIR/tiny_llama.py")

    say "litgpt --help"
    "$LITGPT_VENV/bin/litgpt" --help >/dev/null
    local versions
    versions=$("$python" -c 'from importlib.metadata import version as v
print(", ".join(f"{p} {v(p)}" for p in ("litgpt", "huggingface_hub", "torch")))')
    ok "litgpt starts; $versions"

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/tiny-llama.XXXXXX")
    local checkpoint=$WORK/checkpoint
    say "A tiny Llama in $WORK"
    "${tiny[@]}" tokenizer "$WORK"
    "$REFERENCE_PYTHON" "$EC2_DIR/tiny_llama.py" model "$WORK" 2> >(grep -v -e torchao -e _pytree >&2)

    say "Converting it as llama7b.sh converts (atomically, with litgpt convert_to_litgpt)"
    convert_checkpoint "$checkpoint" tiny-llama float32 "${tiny[@]}" litgpt >"$WORK/convert.log" 2>&1 ||
        { cat "$WORK/convert.log" >&2; die "litgpt convert_to_litgpt failed on the tiny Llama (its output is above)."; }
    grep '^+ ' "$WORK/convert.log"
    [[ -f $checkpoint/lit_model.pth && ! -e $checkpoint.converting ]] ||
        die "After the conversion, expected $checkpoint/lit_model.pth and no $checkpoint.converting."
    ok "$(du -h "$checkpoint/lit_model.pth" | cut -f1) lit_model.pth and model_config.yaml in $checkpoint"

    say "litgpt generate, greedy, on the CPU"
    local prompt
    prompt=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["prompt"])' "$WORK/prompt.json")
    "$LITGPT_VENV/bin/litgpt" generate "$checkpoint" --prompt "$prompt" --max_new_tokens 8 \
        --temperature 0 --precision 32-true >"$WORK/generated.txt" 2>"$WORK/generate.log" ||
        { cat "$WORK/generate.log" >&2; die "litgpt generate failed on the tiny Llama (its output is above)."; }
    grep -h 'tokens/sec' "$WORK/generate.log" | sed 's/^/    /' || true
    "${tiny[@]}" compare "$WORK" "$WORK/generated.txt"

    say "The course's own Llama (course_lib.llama) reads the same lit_model.pth (notebook 09's 7B path)"
    "$REFERENCE_PYTHON" "$EC2_DIR/tiny_llama.py" ours "$WORK" 2> >(grep -v -e torchao -e _pytree >&2)
}

main() {
    local steps=("$@")
    if ((${#steps[@]} == 0)); then steps=(install check); fi
    local step
    for step in "${steps[@]}"; do
        case $step in
            install | check) ;;
            *) die "Unknown step '$step'. Usage: bash ec2/check_litgpt.sh [install] [check]" ;;
        esac
    done
    [[ $DRY_RUN != 1 ]] || die "check_litgpt.sh has no dry run: it only installs into LITGPT_VENV ($LITGPT_VENV)."
    for step in "${steps[@]}"; do "do_$step"; done
    say "LitGPT check passed: ${steps[*]}"
}

main "$@"
