# shellcheck shell=bash
# Helpers shared by the ec2/ scripts. Sourced by them, never run on its own.
#
# Every command that changes the machine goes through `run`: with DRY_RUN=1 it
# is printed and not executed. Reads (uname, nvidia-smi, lspci, df, dpkg-query)
# always run, so a dry run takes the same decisions as a real one.

# These variables are read by the scripts that source this file.
# shellcheck disable=SC2034
{
    EC2_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    REPO_ROOT=$(cd "$EC2_DIR/.." && pwd)
    DRY_RUN=${DRY_RUN:-0}
    CHANGED=0            # set to 1 by `run`: something was (or would be) changed
    EXIT_REBOOT=3        # exit status meaning "reboot, then run me again"
}

say() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
# Refuse: print the reason (first argument) and advice (the others, each may span lines).
# Print the comment block at the top of the script $1 (its usage text), without the "# " prefixes.
print_help() {
    sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'
}

die() {
    printf '\nERROR: %s\n' "$1" >&2
    shift
    local arg line
    for arg in "$@"; do
        while IFS= read -r line; do printf '       %s\n' "$line" >&2; done <<<"$arg"
    done
    exit 1
}

# Print a command the way you would type it (quotes only where needed).
quote_cmd() {
    local out="" arg
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_@%+=:,./~-]+$ ]]; then
            out+=" $arg"
        else
            out+=" '${arg//\'/\'\\\'\'}'"
        fi
    done
    printf '%s' "${out# }"
}

# Run a command that changes the machine; with DRY_RUN=1 only print it.
run() {
    # shellcheck disable=SC2034
    CHANGED=1
    printf '+ %s\n' "$(quote_cmd "$@")"
    if [[ $DRY_RUN == 1 ]]; then
        return 0
    fi
    "$@"
}

announce_dry_run() {
    if [[ $DRY_RUN == 1 ]]; then
        printf 'DRY_RUN=1: commands that would change this machine are printed (+ ...), not run.\n'
    fi
}

# sudo only when we are not root already.
if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi

# ---- apt ---------------------------------------------------------------------

APT_LOCK_TIMEOUT=${APT_LOCK_TIMEOUT:-600}
[[ $APT_LOCK_TIMEOUT =~ ^[0-9]+$ ]] ||
    die "APT_LOCK_TIMEOUT must be a whole number of seconds; got '$APT_LOCK_TIMEOUT'."
APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)

# The processes holding an apt or dpkg lock, "1234 5678", or nothing. apt's locks are fcntl locks,
# which flock(1) cannot see; fuser lists the processes that have the lock files open.
apt_lock_holders() {
    { "${SUDO[@]}" fuser "${APT_LOCKS[@]}" 2>/dev/null || true; } | grep -oE '[0-9]+' | sort -un | tr '\n' ' ' |
        sed 's/ $//'
}

# A fresh Ubuntu runs unattended-upgrades after its first boot, and an apt-get started meanwhile fails
# with "Could not get lock". Wait until no process holds apt's locks, at most APT_LOCK_TIMEOUT seconds.
wait_for_apt() {
    if ! command -v fuser >/dev/null 2>&1; then
        info "(fuser not found: apt-get waits for the dpkg lock itself, up to $APT_LOCK_TIMEOUT s)"
        return
    fi
    local waited=0 step=5 holders
    while holders=$(apt_lock_holders) && [[ -n $holders ]]; do
        if ((waited >= APT_LOCK_TIMEOUT)); then
            die "apt is still busy after $APT_LOCK_TIMEOUT s: process(es) $holders hold its locks (${APT_LOCKS[*]})." \
                "On a fresh instance this is unattended-upgrades installing security updates, which can take" \
                "a while. See what they are: ps -o pid,etime,cmd -p ${holders// /,}" \
                "Then run this again once they are gone, or wait longer: APT_LOCK_TIMEOUT=1800 bash ec2/setup.sh"
        fi
        if ((waited == 0)); then
            info "Waiting for apt: process(es) $holders hold its locks (unattended-upgrades after the first"
            info "boot?); giving up after $APT_LOCK_TIMEOUT s (APT_LOCK_TIMEOUT)."
        fi
        sleep "$step"
        waited=$((waited + step))
    done
    if ((waited > 0)); then ok "apt is free after ~$waited s"; fi
}

# apt-get, once apt is free. -o DPkg::Lock::Timeout makes apt-get itself wait for the dpkg lock too,
# should another apt start between the check and this one (it does not cover apt-get update's lock).
apt_get() {
    wait_for_apt
    run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" "$@"
}

# ---- the machine -----------------------------------------------------------

require_x86_64() {
    local arch
    arch=$(uname -m)
    case $arch in
        x86_64) ok "CPU architecture: x86_64" ;;
        aarch64 | arm64)
            die "This is an ARM machine ($arch), e.g. a Graviton g5g instance." \
                "PyPI's torch wheels for ARM Linux cannot use its T4G GPU (they are CPU-only," \
                "or, for recent releases, built only for Grace-class GPUs), so the course's" \
                "requirements.txt would run on the CPU. Launch an x86_64 GPU instance instead:" \
                "g5.2xlarge (the course's choice), g6.xlarge, g6e.xlarge or g4dn.2xlarge." ;;
        *) die "Unsupported CPU architecture '$arch': these scripts need an x86_64 instance." ;;
    esac
}

# True when nvidia-smi exists and can talk to a loaded driver.
driver_works() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1
}

# True when the PCI bus shows an NVIDIA device, whatever the driver state.
nvidia_on_pci() {
    if command -v lspci >/dev/null 2>&1; then
        grep -qi 'nvidia' <<<"$(lspci 2>/dev/null)"
    else
        grep -qsx '0x10de' /sys/bus/pci/devices/*/vendor
    fi
}

# Read the first GPU's name, memory (MiB), driver version and compute capability
# into GPU_NAME, GPU_MEM_MIB, GPU_DRIVER, GPU_CC (e.g. "8.6").
read_gpu() {
    local line
    line=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap \
        --format=csv,noheader,nounits 2>/dev/null | head -n 1) || true
    if [[ $line != *,*,*,* ]]; then
        die "nvidia-smi works but cannot report the GPU's compute capability: its driver is too old." \
            "torch 2.13 (CUDA 13) needs a driver from the R580 branch or newer; a current Deep Learning AMI has one."
    fi
    IFS=, read -r GPU_NAME GPU_MEM_MIB GPU_DRIVER GPU_CC <<<"$line"
    GPU_NAME=$(trim "$GPU_NAME")
    GPU_MEM_MIB=$(trim "$GPU_MEM_MIB")
    GPU_DRIVER=$(trim "$GPU_DRIVER")
    GPU_CC=$(trim "$GPU_CC")
}

trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    s=${s%"${s##*[![:space:]]}"}
    printf '%s' "$s"
}

# A "major.minor" version, "8.6" or "3.12", as one comparable integer: 806, 312.
# (Compute capabilities and Python versions have minor numbers below 100.)
version_number() {
    local major=${1%%.*} minor=${1#*.}
    printf '%d' "$((100 * major + minor))"
}

# Free space in whole GB (2^30 bytes) on the filesystem holding $1.
free_gb() {
    df -Pk "$1" | awk 'NR == 2 { print int($4 / 1048576) }'
}

# $1, or its nearest parent directory that exists (df needs an existing path).
nearest_dir() {
    local dir=$1
    while [[ ! -d $dir ]]; do dir=$(dirname "$dir"); done
    printf '%s' "$dir"
}

# Refuse (exit 1) unless the filesystem holding $2 has $1 GB free.
# $3 says what the space is for; more lines of advice may follow.
require_free_gb() {
    local need=$1 path=$2 what=$3 have
    shift 3
    have=$(free_gb "$path")
    if ((have < need)); then
        die "Only $have GB free on the disk holding $path; $what needs about $need GB." \
            "Give the instance a bigger root volume (ec2/README.md, 'Disk'), then run this again." "$@"
    fi
    ok "disk: $have GB free on the disk holding $path (need $need GB for $what)"
}

# True when the Debian package $1 is installed.
pkg_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == "install ok installed" ]]
}

# "ubuntu 24.04" style id and version of the running distribution.
distro() {
    if command -v lsb_release >/dev/null 2>&1; then
        printf '%s %s' "$(lsb_release -is | tr '[:upper:]' '[:lower:]')" "$(lsb_release -rs)"
    elif [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        (. /etc/os-release && printf '%s %s' "${ID:-unknown}" "${VERSION_ID:-unknown}")
    else
        printf 'unknown unknown'
    fi
}
