#!/usr/bin/env bash
# One of notebook 11's training scripts across two instances, over NCCL: run this on each of them.
#
# Both instances are set up the same way (ec2/setup.sh), in one subnet, with a security group that lets
# them reach each other (ec2/README.md, 'Two instances'). On each, this starts torchrun with a c10d
# rendezvous at the private IP of the instance given --node-rank 0:
#
#   python -m torch.distributed.run --nnodes=2 --node_rank=R --nproc_per_node=N --rdzv_backend=c10d \
#       --rdzv_endpoint=MASTER_ADDR:PORT --rdzv_id=course-TECHNIQUE course_lib/distributed/TECHNIQUE.py --steps S
#
# Usage:
#   on the first instance (MASTER_ADDR is its own private IP: hostname -I):
#     bash ec2/multinode.sh --node-rank 0 --master-addr 10.0.1.23
#   on the second, within 10 minutes (torchrun's rendezvous timeout), the same address:
#     bash ec2/multinode.sh --node-rank 1 --master-addr 10.0.1.23
#   options (the same on both instances):
#     --technique NAME      ddp (default), zero1, fsdp, tensor_parallel or pipeline_parallel
#     --nproc-per-node N    processes (GPUs) per instance (default: every GPU; 1 for tensor_parallel and
#                           pipeline_parallel, which are written for exactly 2 processes in all)
#     --port P              the rendezvous port on the first instance (default: 29500)
#     --steps S             training steps (default: 4)
#     --ifname IF           the network interface NCCL and gloo use (default: the one that reaches
#                           MASTER_ADDR, found with `ip`)
#   DRY_RUN=1 bash ec2/multinode.sh ...   check everything, print the torchrun command, run nothing
#
# torchrun's c10d rendezvous numbers the processes itself (it ignores --node_rank, and says so): the
# RESULT line of global rank 0 appears on whichever instance got it. --node-rank says which instance
# hosts the rendezvous, at its own address.
# Exit status: 0 done; 1 refused (the message says why); otherwise the exit status of torchrun.
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
NODE_RANK=""
MASTER_ADDR=""
PORT=29500
NPROC=""
TECHNIQUE=ddp
STEPS=4
IFNAME=""
USAGE="Usage: bash ec2/multinode.sh --node-rank 0|1 --master-addr PRIVATE_IP [--nproc-per-node N]
       [--technique NAME] [--port P] [--steps S] [--ifname IF]   (bash ec2/multinode.sh --help)"

trap remove_torchrun_logs EXIT

parse_args() {
    while (($# > 0)); do
        case $1 in
            --node-rank | --master-addr | --port | --nproc-per-node | --technique | --steps | --ifname)
                (($# >= 2)) || die "$1 needs a value." "$USAGE"
                case $1 in
                    --node-rank) NODE_RANK=$2 ;;
                    --master-addr) MASTER_ADDR=$2 ;;
                    --port) PORT=$2 ;;
                    --nproc-per-node) NPROC=$2 ;;
                    --technique) TECHNIQUE=$2 ;;
                    --steps) STEPS=$2 ;;
                    --ifname) IFNAME=$2 ;;
                esac
                shift ;;
            -h | --help)
                print_help "${BASH_SOURCE[0]}"
                exit 0 ;;
            *) die "Unknown argument '$1'." "$USAGE" ;;
        esac
        shift
    done
}

# A dotted IPv4 address, each number 0-255 without leading zeros (010 reads as octal to some tools).
valid_ipv4() {
    local octet='(0|[1-9][0-9]{0,2})'
    [[ $1 =~ ^$octet\.$octet\.$octet\.$octet$ ]] || return 1
    local part
    for part in "${BASH_REMATCH[@]:1}"; do
        ((part <= 255)) || return 1
    done
}

# 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16: the private ranges a VPC's addresses come from.
private_ipv4() {
    local a b
    IFS=. read -r a b _ <<<"$1"
    ((a == 10 || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168)))
}

validate_args() {
    [[ -n $NODE_RANK ]] ||
        die "--node-rank is missing: 0 on the instance whose private IP is --master-addr, 1 on the other." "$USAGE"
    [[ $NODE_RANK == 0 || $NODE_RANK == 1 ]] ||
        die "--node-rank must be 0 or 1 (two instances); got '$NODE_RANK'." \
            "0 on the instance whose private IP is --master-addr, 1 on the other."
    [[ -n $MASTER_ADDR ]] ||
        die "--master-addr is missing: the private IPv4 address of the instance started with --node-rank 0" \
            "(on that instance: hostname -I; or the EC2 console, 'Private IPv4 addresses')." "$USAGE"
    valid_ipv4 "$MASTER_ADDR" ||
        die "--master-addr must be an IPv4 address such as 10.0.1.23; got '$MASTER_ADDR'." \
            "Give the private IP of the instance started with --node-rank 0 (hostname -I there), not a name."
    if [[ $MASTER_ADDR == 127.* ]]; then
        die "--master-addr $MASTER_ADDR is a loopback address: two instances cannot meet there." \
            "Give the private IP of the instance started with --node-rank 0. (The course rehearses this same" \
            "command on one machine, with --rdzv_endpoint=127.0.0.1, in its tests.)"
    fi
    private_ipv4 "$MASTER_ADDR" ||
        die "--master-addr $MASTER_ADDR is not a private address (10.x, 172.16-31.x, 192.168.x)." \
            "Use the instance's private IP, not its public one: the rendezvous port must stay closed to the" \
            "internet, open only between the two instances (ec2/README.md, 'Two instances')."
    if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || ((PORT < 1024 || PORT > 65535)); then
        die "--port must be a number from 1024 to 65535; got '$PORT'."
    fi
    require_technique "$TECHNIQUE"
    require_positive_int --steps "$STEPS"
    if [[ -n $NPROC ]]; then require_positive_int --nproc-per-node "$NPROC"; fi
    if two_rank_technique "$TECHNIQUE"; then
        if [[ -n $NPROC && $NPROC != 1 ]]; then
            die "$TECHNIQUE is written for exactly 2 processes in all: across two instances that is" \
                "--nproc-per-node 1 (got $NPROC)."
        fi
        NPROC=1
    fi
    if [[ -n $IFNAME && ! $IFNAME =~ ^[A-Za-z0-9._-]{1,15}$ ]]; then
        die "--ifname must be a network interface name such as ens5; got '$IFNAME'."
    fi
}

check_gpus() {
    say "Checking the machine"
    local gpus
    gpus=$(count_gpus)
    ((gpus >= 1)) || die "nvidia-smi lists no GPU on this instance; both instances need NVIDIA GPUs (ec2/README.md)."
    NPROC=${NPROC:-$gpus}
    ((NPROC <= gpus)) || die "--nproc-per-node $NPROC: this instance has $gpus NVIDIA GPU(s), one per process."
    ok "$gpus NVIDIA GPU(s) (nvidia-smi -L); $NPROC process(es) on this instance"
    check_torch_gpus "$NPROC"
}

# "10.0.1.45, 172.17.0.1": this instance's IPv4 addresses, for messages.
own_addresses() {
    ip -o -4 addr show scope global 2>/dev/null |
        awk '{ split($4, a, "/"); printf "%s%s", sep, a[1]; sep = ", " }'
}

# The interface that holds IPv4 address $1 on this instance, or nothing.
interface_with_address() {
    ip -o -4 addr show 2>/dev/null | awk -v addr="$1" '{ split($4, a, "/"); if (a[1] == addr) { print $2; exit } }'
}

# NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME: the interface that reaches the other instance, named rather
# than left for NCCL and gloo to guess each in its own way.
choose_interface() {
    say "Network: rendezvous at $MASTER_ADDR:$PORT"
    if ! command -v ip >/dev/null 2>&1; then
        [[ -n $IFNAME ]] || die "The ip command (iproute2) is missing, so the interface that reaches $MASTER_ADDR" \
            "cannot be found. Install iproute2, or name the interface: --ifname ens5 (ls /sys/class/net lists them)."
        warn "ip is missing: --ifname $IFNAME and --master-addr $MASTER_ADDR are taken as they are."
    else
        local own
        own=$(interface_with_address "$MASTER_ADDR")
        if [[ $NODE_RANK == 0 && -z $own ]]; then
            die "--master-addr $MASTER_ADDR is not an address of this instance, but node rank 0 hosts the rendezvous." \
                "On node rank 0 give this instance's own private IP (its addresses: $(own_addresses)), and the" \
                "same address with --node-rank 1 on the other instance."
        fi
        if [[ $NODE_RANK == 1 && -n $own ]]; then
            die "--master-addr $MASTER_ADDR is this instance's own address, but this is node rank 1." \
                "Give node rank 1 the private IP of the instance started with --node-rank 0 (hostname -I there)."
        fi
        if [[ -n $IFNAME ]]; then
            [[ -n $(ip -o -4 addr show dev "$IFNAME" 2>/dev/null) ]] ||
                die "--ifname $IFNAME: this instance has no interface of that name with an IPv4 address." \
                    "Its IPv4 addresses: $(own_addresses); ip -o -4 addr show names their interfaces."
        elif [[ -n $own ]]; then
            IFNAME=$own   # node rank 0: the interface that holds the address ("ip route get" would say lo)
        else
            local route
            route=$(ip -o route get "$MASTER_ADDR" 2>&1) ||
                die "This instance has no route to $MASTER_ADDR: $route" \
                    "Both instances must be in the same VPC subnet (ec2/README.md, 'Two instances')."
            IFNAME=$(awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }' <<<"$route")
            [[ -n $IFNAME && $IFNAME != lo ]] ||
                die "Could not tell which interface reaches $MASTER_ADDR from 'ip route get': $route" \
                    "Name it: --ifname ens5 (ip -o -4 addr show lists the interfaces and their addresses)."
        fi
    fi
    export NCCL_SOCKET_IFNAME=$IFNAME GLOO_SOCKET_IFNAME=$IFNAME
    ok "NCCL_SOCKET_IFNAME=$IFNAME GLOO_SOCKET_IFNAME=$IFNAME (the interface that reaches $MASTER_ADDR)"
}

main() {
    parse_args "$@"
    validate_args
    cd "$REPO_ROOT"
    announce_dry_run
    check_gpus
    choose_interface
    local world=$((2 * NPROC))
    say "$TECHNIQUE on 2 instances x $NPROC process(es) = $world, on NCCL; this is node rank $NODE_RANK"
    info "On the other instance run the same command with --node-rank $((1 - NODE_RANK)); the first to start"
    info "waits for the other (up to 10 minutes, torchrun's default rendezvous timeout)."
    run_torchrun "$TECHNIQUE" "$world" --nnodes=2 "--node_rank=$NODE_RANK" "--nproc_per_node=$NPROC" \
        --rdzv_backend=c10d "--rdzv_endpoint=$MASTER_ADDR:$PORT" "--rdzv_id=course-$TECHNIQUE"
    if [[ $DRY_RUN == 1 ]]; then
        say "Dry run finished: the + line above is what a real run would start."
        return
    fi
    if [[ -n $RESULT_LINE ]]; then
        say "Done: global rank 0 ran here. Its report:"
        printf '%s\n' "$RESULT_LINE"
    else
        say "Done. Global rank 0 ran on the other instance: its RESULT line is in that instance's output."
    fi
}

main "$@"
