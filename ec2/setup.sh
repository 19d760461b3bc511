#!/usr/bin/env bash
# Set up a fresh x86_64 NVIDIA GPU instance running Ubuntu 24.04 (the course uses a g5.2xlarge):
#   NVIDIA driver (only if missing) -> system packages -> virtual environment
#   -> requirements.txt (CUDA build of torch) -> torch.cuda check -> Jupyter kernel.
#
# Usage:  bash ec2/setup.sh             (from anywhere inside the repository)
#         DRY_RUN=1 bash ec2/setup.sh   (print the commands that would change the machine)
#
# Re-runnable: every step checks whether it is done and skips it if so.
# Exit status: 0 ready; 1 refused or failed (the message says why);
#              3 the NVIDIA driver was just installed (or is not loaded): reboot, run again.
#
# Settings (environment variables):
#   VENV          the virtual environment (default: .venv at the repository root)
#   REQUIREMENTS  the requirements file (default: requirements.txt at the repository root)
#   MIN_FREE_GB   free disk needed before installing anything (default: 20)
#   DRIVER_PACKAGE  NVIDIA's driver meta-package (default: cuda-drivers; nvidia-open is
#                 NVIDIA's open-module alternative for Turing and newer GPUs)
#   APT_LOCK_TIMEOUT  seconds to wait for another apt (unattended-upgrades after the first boot)
#                 to release its locks (default: 600)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VENV=${VENV:-$REPO_ROOT/.venv}
[[ $VENV == /* ]] || VENV=$PWD/$VENV
REQUIREMENTS=${REQUIREMENTS:-$REPO_ROOT/requirements.txt}
MIN_FREE_GB=${MIN_FREE_GB:-20}
DRIVER_PACKAGE=${DRIVER_PACKAGE:-cuda-drivers}
KERNEL_NAME=llms-from-dummies
KERNEL_JSON=${JUPYTER_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter}/kernels/$KERNEL_NAME/kernel.json
STAMP=$VENV/.installed-requirements.txt    # copy of the requirements file last installed
MIN_CC=7.5                                 # torch 2.13's PyPI CUDA 13 build: Turing and newer
KEYRING_DIR=""                             # a fresh temporary directory for NVIDIA's keyring package

cleanup() { if [[ -n $KEYRING_DIR ]]; then rm -rf "$KEYRING_DIR"; fi; }
trap cleanup EXIT

check_machine() {
    say "Checking the machine"
    require_x86_64
    if driver_works; then
        read_gpu
        ok "GPU: $GPU_NAME, $GPU_MEM_MIB MiB, driver $GPU_DRIVER, compute capability $GPU_CC"
        if (($(version_number "$GPU_CC") < $(version_number "$MIN_CC"))); then
            die "$GPU_NAME has compute capability $GPU_CC; the CUDA build of torch in requirements.txt" \
                "(CUDA 13) has kernels only for $MIN_CC (Turing) and newer, so the V100 of a p3 instance" \
                "cannot run it. Use a g5.2xlarge (A10G), g6.xlarge (L4), g6e.xlarge (L40S) or g4dn.2xlarge (T4)."
        fi
        if ((${GPU_DRIVER%%.*} < 580)); then
            warn "driver $GPU_DRIVER is older than the R580 branch that CUDA 13 (torch 2.13) needs;" \
                "the torch.cuda check below will tell. A newer Deep Learning AMI has a newer driver."
        fi
    elif nvidia_on_pci; then
        ok "an NVIDIA GPU is on the PCI bus (its driver is not working yet)"
    else
        die "No NVIDIA GPU on this machine: nvidia-smi does not work and lspci lists no NVIDIA device." \
            "Is this a GPU instance type? The course uses a g5.2xlarge (ec2/README.md)."
    fi
    check_python
    [[ -f $REQUIREMENTS ]] || die "No requirements file at $REQUIREMENTS: run this from a clone of the course repository."
}

# The pinned packages (numpy 2.4, for one) have no wheels for Python 3.10 (Ubuntu 22.04).
check_python() {
    command -v python3 >/dev/null 2>&1 || die "python3 is missing: install it (sudo apt-get install python3)."
    local version
    version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if (($(version_number "$version") < $(version_number 3.11))); then
        die "python3 is $version; the course's pinned packages need Python 3.11 or newer." \
            "Ubuntu 24.04 (Python 3.12) has it, Ubuntu 22.04 does not: launch an Ubuntu 24.04 AMI" \
            "(ec2/README.md, 'Launch')."
    fi
    ok "Python: python3 is $version"
}

# Installed but not running: a package or kernel module is there, nvidia-smi fails.
driver_installed_not_loaded() {
    pkg_installed "$DRIVER_PACKAGE" || pkg_installed cuda-drivers || pkg_installed nvidia-open ||
        modinfo nvidia >/dev/null 2>&1
}

step_driver() {
    say "NVIDIA driver"
    if driver_works; then
        ok "nvidia-smi works: driver $GPU_DRIVER is installed and loaded; nothing to install"
        return
    fi
    if driver_installed_not_loaded; then
        printf '    The NVIDIA driver is installed but not loaded (nvidia-smi fails).\n'
        printf '    Reboot, then run this script again:\n\n        sudo reboot\n        bash ec2/setup.sh\n\n'
        printf '    If it is still not loaded after a reboot, its kernel module was not built for the\n'
        printf "    running kernel: look at 'dkms status' and 'sudo dmesg | grep -i nvidia', or start\n"
        printf '    again from a Deep Learning AMI, which ships a working driver.\n'
        exit "$EXIT_REBOOT"
    fi

    local id version repo
    read -r id version <<<"$(distro)"
    case "$id $version" in
        "ubuntu 24.04") repo=ubuntu2404 ;;
        *) die "No NVIDIA driver, and automatic installation supports only Ubuntu 24.04 (this is $id $version)." \
            "Launch a Deep Learning AMI, which has the driver already (ec2/README.md, 'Launch')." ;;
    esac
    require_free_gb "$MIN_FREE_GB" / "the NVIDIA driver and the course's packages"
    info "Installing the driver from NVIDIA's CUDA repository for $repo ($DRIVER_PACKAGE)."
    apt_get update
    apt_get install -y "linux-headers-$(uname -r)" ca-certificates curl
    if ! pkg_installed cuda-keyring; then
        # Into a fresh directory of its own (removed on exit), not a fixed name in /tmp.
        KEYRING_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cuda-keyring.XXXXXX")
        local deb=$KEYRING_DIR/cuda-keyring_1.1-1_all.deb
        run curl -fsSL -o "$deb" \
            "https://developer.download.nvidia.com/compute/cuda/repos/$repo/x86_64/cuda-keyring_1.1-1_all.deb"
        wait_for_apt
        run "${SUDO[@]}" dpkg -i "$deb"
        apt_get update
    fi
    apt_get install -y "$DRIVER_PACKAGE"
    printf '\n    The driver is installed; it is loaded at the next boot. Reboot, then run this again:\n\n'
    printf '        sudo reboot\n        bash ec2/setup.sh\n'
    exit "$EXIT_REBOOT"
}

step_system_packages() {
    say "System packages (python3-venv, a C/C++ compiler for llama-cpp-python)"
    if ! command -v dpkg-query >/dev/null 2>&1; then
        warn "not a Debian/Ubuntu system: make sure python3-venv and a C/C++ compiler are installed"
        return
    fi
    local pkg missing=()
    for pkg in python3-venv build-essential; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        ok "python3-venv and build-essential are installed"
        return
    fi
    require_free_gb "$MIN_FREE_GB" / "the course's packages"
    apt_get update
    apt_get install -y "${missing[@]}"
}

step_venv() {
    say "Virtual environment $VENV"
    info "(current Ubuntu refuses system-wide pip installs, PEP 668: the course lives in a venv)"
    if [[ -x $VENV/bin/python ]]; then
        ok "exists"
        return
    fi
    require_free_gb "$MIN_FREE_GB" "$(nearest_dir "$VENV")" "the virtual environment and the CUDA build of torch"
    run python3 -m venv "$VENV"
}

step_requirements() {
    say "Python packages from $REQUIREMENTS"
    if [[ -f $STAMP ]] && cmp -s "$REQUIREMENTS" "$STAMP"; then
        ok "installed (the same requirements file as last time)"
        return
    fi
    if [[ -f $STAMP ]]; then
        info "the requirements file changed since the last install: installing again"
    fi
    require_free_gb "$MIN_FREE_GB" "$(nearest_dir "$VENV")" "the course's Python packages"
    # Relative entries such as `-e .` are relative to the repository root.
    run "$VENV/bin/python" -m pip install -r "$REQUIREMENTS"
    run cp "$REQUIREMENTS" "$STAMP"
}

check_cuda() {
    say "Does torch see the GPU?"
    if [[ $DRY_RUN == 1 && $CHANGED == 1 ]]; then
        info "(dry run: the check runs once the commands above have been run)"
        return
    fi
    if ! "$VENV/bin/python" - <<'EOF'; then
import torch

available = torch.cuda.is_available()
print(f"    torch {torch.__version__}, built for CUDA {torch.version.cuda}; "
      f"torch.cuda.is_available(): {available}")
if available:
    p = torch.cuda.get_device_properties(0)
    x = torch.ones(64, 64, device="cuda")
    assert (x @ x)[0, 0].item() == 64.0  # runs a real kernel on the GPU
    print(f"    {p.name}: {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}, "
          f"native bf16: {torch.cuda.is_bf16_supported(including_emulation=False)}")
    try:
        from course_lib.runtime import profile
        print(f"    course_lib.runtime.profile(): {profile()!r}")
    except ImportError as err:
        print(f"    (course_lib.runtime not importable: {err})")
raise SystemExit(0 if available else 1)
EOF
        die "torch cannot use the GPU." \
            "nvidia-smi must work, and torch 2.13 from PyPI (CUDA 13) needs driver R580 or newer." \
            "If requirements.txt installed a CPU build of torch, it was not pinned as the lead expects."
    fi
}

step_kernel() {
    say "Jupyter kernel '$KERNEL_NAME'"
    if [[ -f $KERNEL_JSON ]] && grep -qF "$VENV/bin/python" "$KERNEL_JSON"; then
        ok "registered ($KERNEL_JSON)"
        return
    fi
    run "$VENV/bin/python" -m ipykernel install --user --name "$KERNEL_NAME" \
        --display-name "Python (llms-from-dummies)"
}

main() {
    cd "$REPO_ROOT"
    announce_dry_run
    check_machine
    step_driver
    step_system_packages
    step_venv
    step_requirements
    check_cuda
    step_kernel
    if [[ $CHANGED == 0 ]]; then
        say "Nothing to do: everything was already set up."
    elif [[ $DRY_RUN == 1 ]]; then
        say "Dry run finished: the + lines above are what a real run would do."
        return
    fi
    say "Ready. Next: bash ec2/jupyter.sh   (JupyterLab through an SSH tunnel)"
    info "or: bash ec2/llama7b.sh           (the 7B model with LitGPT)"
}

main "$@"
