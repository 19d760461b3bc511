#!/usr/bin/env bash
# Notebook 11's training scripts on the GPUs of one instance, over NCCL (PyTorch's GPU backend).
#
# Each technique of course_lib/distributed (ddp, zero1, fsdp, tensor_parallel, pipeline_parallel) runs with
# torchrun, one process per GPU; rank 0 prints its losses beside one process training alone, then its
# report on a line "RESULT {json}", which this script repeats at the end.
#
# Usage (on an instance with 2 or more NVIDIA GPUs, such as a g5.12xlarge, after ec2/setup.sh):
#   bash ec2/multigpu.sh                       every technique
#   bash ec2/multigpu.sh --technique fsdp      one of: ddp zero1 fsdp tensor_parallel pipeline_parallel
#   bash ec2/multigpu.sh --steps 20            more training steps (default: 4)
#   bash ec2/multigpu.sh --nproc-per-node 2    ddp, zero1 and fsdp on 2 GPUs (default: all of them)
#   DRY_RUN=1 bash ec2/multigpu.sh             print the torchrun commands, run none
#
# ddp, zero1 and fsdp use every GPU; tensor_parallel and pipeline_parallel are written for exactly
# 2 processes (2 blocks, 4 heads), so they run on 2 GPUs whatever the instance has.
# Exit status: 0 every technique ran and reported; 1 refused (the message says why); otherwise the
# exit status of the torchrun that failed.
#
# Settings (environment variables):
#   VENV   the course's virtual environment (default: .venv at the repository root)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=torchrun_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/torchrun_env.sh"

VENV=${VENV:-$REPO_ROOT/.venv}
[[ $VENV == /* ]] || VENV=$PWD/$VENV
STEPS=4
NPROC=""
SELECTED=("${TECHNIQUES[@]}")
USAGE="Usage: bash ec2/multigpu.sh [--technique NAME] [--steps N] [--nproc-per-node N]"

trap remove_torchrun_logs EXIT

parse_args() {
    while (($# > 0)); do
        case $1 in
            --technique | --steps | --nproc-per-node)
                (($# >= 2)) || die "$1 needs a value. $USAGE"
                case $1 in
                    --technique) require_technique "$2" && SELECTED=("$2") ;;
                    --steps) require_positive_int --steps "$2" && STEPS=$2 ;;
                    --nproc-per-node) require_positive_int --nproc-per-node "$2" && NPROC=$2 ;;
                esac
                shift ;;
            -h | --help)
                print_help "${BASH_SOURCE[0]}"
                exit 0 ;;
            *) die "Unknown argument '$1'. $USAGE" ;;
        esac
        shift
    done
}

check_gpus() {
    say "Checking the machine"
    local gpus
    gpus=$(count_gpus)
    if ((gpus < 2)); then
        die "This instance has $gpus NVIDIA GPU(s); multigpu.sh needs at least 2." \
            "Launch an instance with several GPUs (ec2/README.md, 'Several GPUs on one instance'):" \
            "  g5.12xlarge (4 x A10G 24 GB), g5.48xlarge (8 x A10G), p4d.24xlarge (8 x A100 40 GB)," \
            "or spread the processes over two instances with bash ec2/multinode.sh (README: 'Two instances')."
    fi
    ok "$gpus NVIDIA GPUs (nvidia-smi -L)"
    NPROC=${NPROC:-$gpus}
    if ((NPROC < 2 || NPROC > gpus)); then
        die "--nproc-per-node $NPROC: this instance has $gpus GPUs, and a run on several GPUs needs 2 to $gpus."
    fi
    check_torch_gpus "$NPROC"
}

main() {
    parse_args "$@"
    cd "$REPO_ROOT"
    announce_dry_run
    check_gpus
    local technique world results=()
    for technique in "${SELECTED[@]}"; do
        world=$NPROC
        if two_rank_technique "$technique"; then world=2; fi
        say "$technique: $world processes, one per GPU, on NCCL"
        run_torchrun "$technique" "$world" "--nproc_per_node=$world"
        if [[ $DRY_RUN == 1 ]]; then continue; fi
        [[ -n $RESULT_LINE ]] ||
            die "$technique finished but printed no line starting with 'RESULT ' (rank 0's report)."
        ok "$technique: rank 0 reported"
        results+=("$RESULT_LINE")
    done
    if [[ $DRY_RUN == 1 ]]; then
        say "Dry run finished: the + lines above are what a real run would start."
        return
    fi
    say "Done: ${#results[@]} technique(s) trained over NCCL. Rank 0's reports:"
    printf '%s\n' "${results[@]}"
}

main "$@"
