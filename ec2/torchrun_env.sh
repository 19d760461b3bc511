# shellcheck shell=bash
# Helpers shared by multigpu.sh and multinode.sh: notebook 11's training scripts (course_lib/distributed)
# started with torchrun on NCCL. Sourced after common.sh, never run on its own.

# These variables are read by the scripts that source this file.
# shellcheck disable=SC2034
{
    TECHNIQUES=(ddp zero1 fsdp tensor_parallel pipeline_parallel)
    DEFAULT_BATCH=8      # the scripts' global batch (course_lib.distributed.common.RunConfig.batch)
    RESULT_LINE=""       # set by run_torchrun: rank 0's report ("RESULT {json}"), or "" if not in this output
    TORCHRUN_LOGS=()     # the temporary copies of torchrun's output, removed on exit
}

# tensor_parallel and pipeline_parallel are written for exactly 2 processes: the tiny GPT has 2 blocks
# (one per pipeline stage) and 4 heads (two per tensor-parallel rank).
two_rank_technique() { [[ $1 == tensor_parallel || $1 == pipeline_parallel ]]; }

require_technique() {
    local technique
    for technique in "${TECHNIQUES[@]}"; do
        if [[ $1 == "$technique" ]]; then return 0; fi
    done
    die "Unknown technique '$1'. Choose one of: ${TECHNIQUES[*]}."
}

# Refuse unless $2 is a whole number from 1 up; $1 names it in the message.
require_positive_int() {
    [[ $2 =~ ^[1-9][0-9]{0,5}$ ]] || die "$1 must be a whole number from 1 up; got '$2'."
}

# The number of NVIDIA GPUs that nvidia-smi lists ("GPU 0: NVIDIA A10G (UUID: ...)" lines).
count_gpus() {
    driver_works || die "nvidia-smi does not work: run bash ec2/setup.sh first (it installs the NVIDIA driver)."
    local listing
    listing=$(nvidia-smi -L 2>/dev/null) || true
    grep -c '^GPU [0-9]' <<<"$listing" || true
}

# The course's torch must see $1 GPUs and have NCCL: without them course_lib.distributed.common.setup()
# quietly falls back to CPU processes on gloo, and the run would not be the GPU run it claims to be.
check_torch_gpus() {
    local need=$1
    say "Does the course's torch see $need GPU(s), with NCCL?"
    [[ -x $VENV/bin/python ]] || die "No Python in $VENV: run bash ec2/setup.sh first."
    if ! "$VENV/bin/python" - "$need" <<'EOF'; then
import sys

import torch
import torch.distributed as dist

need = int(sys.argv[1])
count = torch.cuda.device_count() if torch.cuda.is_available() else 0
nccl = dist.is_available() and dist.is_nccl_available()
print(f"    torch {torch.__version__}: {count} CUDA device(s), NCCL available: {nccl}")
raise SystemExit(0 if count >= need and nccl else 1)
EOF
        die "The course's torch, in $VENV, cannot run $need process(es) on NCCL: it must see $need CUDA device(s)" \
            "and have NCCL, or the training scripts would fall back to CPU processes on gloo." \
            "nvidia-smi must work, and requirements.txt must have installed torch's CUDA build (bash ec2/setup.sh)."
    fi
}

# The data-parallel scripts split the global batch evenly over all processes: the smallest multiple of
# the world size $1 from DEFAULT_BATCH up, or nothing when the default already divides evenly.
batch_for_world() {
    local world=$1
    if ((DEFAULT_BATCH % world != 0)); then
        printf '%d' "$(((DEFAULT_BATCH + world - 1) / world * world))"
    fi
}

# Run one technique's training script with torchrun: $1 the technique, $2 the world size (all processes),
# then torchrun's own options. Its output is shown and kept; rank 0's report goes to RESULT_LINE. A failing
# torchrun stops the calling script with torchrun's exit status, naming the technique.
run_torchrun() {
    local technique=$1 world=$2
    shift 2
    local cmd=("$VENV/bin/python" -m torch.distributed.run "$@" "course_lib/distributed/$technique.py" --steps "$STEPS")
    local batch=""
    if ! two_rank_technique "$technique"; then batch=$(batch_for_world "$world"); fi
    if [[ -n $batch ]]; then cmd+=(--batch "$batch"); fi
    RESULT_LINE=""
    printf '+ %s\n' "$(quote_cmd "${cmd[@]}")"
    if [[ $DRY_RUN == 1 ]]; then return 0; fi
    local log status=0
    log=$(mktemp "${TMPDIR:-/tmp}/torchrun-$technique.XXXXXX")
    TORCHRUN_LOGS+=("$log")
    "${cmd[@]}" 2>&1 | tee "$log" || status=$?
    if ((status != 0)); then
        die_with_status "$status" "$technique failed: torchrun exited with status $status (its output is above)." \
            "For NCCL's own account of what went wrong, run again with NCCL_DEBUG=INFO in the environment."
    fi
    RESULT_LINE=$(grep -m 1 '^RESULT ' "$log" || true)
}

# die, with another exit status than 1: $1 the status, then die's arguments.
die_with_status() {
    local status=$1
    shift
    (die "$@") || true
    exit "$status"
}

remove_torchrun_logs() {
    if ((${#TORCHRUN_LOGS[@]} > 0)); then rm -f "${TORCHRUN_LOGS[@]}"; fi
}
