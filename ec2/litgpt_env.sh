# shellcheck shell=bash
# The LitGPT virtual environment and the conversion, shared by llama7b.sh (on the GPU instance) and
# check_litgpt.sh (CI's check on a CPU). Sourced after common.sh, never run on its own.

# These variables are read by the scripts that source this file.
# shellcheck disable=SC2034
{
    LITGPT_LOCK=$EC2_DIR/litgpt-lock.txt             # every package but torch's CUDA libraries
    LITGPT_LOCK_CUDA=$EC2_DIR/litgpt-lock-cuda.txt   # torch's CUDA libraries (Linux x86_64)
}

# True when the venv $1 holds what the lock files hold now: the copies an install leaves there
# (written last, once `pip check` passed) are the same files.
litgpt_installed() {
    local venv=$1
    [[ -x $venv/bin/python && -f $venv/.installed-litgpt-lock.txt ]] &&
        cmp -s "$LITGPT_LOCK" "$venv/.installed-litgpt-lock.txt" &&
        { [[ ! -f $venv/.installed-litgpt-lock-cuda.txt ]] ||
            cmp -s "$LITGPT_LOCK_CUDA" "$venv/.installed-litgpt-lock-cuda.txt"; }
}

# True when the torch installed in the venv $1 requires CUDA libraries (PyPI's Linux x86_64 build).
torch_requires_cuda() {
    "$1/bin/python" - <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, requires

try:
    needs = [r for r in requires("torch") or [] if r.split()[0].startswith(("nvidia-", "cuda-", "triton"))]
except PackageNotFoundError:
    sys.exit("torch is not installed in this venv: the lock file did not install it")
print(f"    torch requires {len(needs)} CUDA packages" + (f" ({needs[0].split(';')[0].strip()}, ...)" if needs else ""))
sys.exit(0 if needs else 1)
EOF
}

# Install the lock files into the venv $1 (made if missing). $2: "cuda" installs torch's CUDA libraries
# too (the GPU instance); "auto" installs them only when the torch that pip chose requires them.
# --no-deps: pip installs exactly the pinned versions and nothing else, and `pip check` then proves
# that nothing is missing or incompatible; only then is the install recorded.
install_litgpt() {
    local venv=$1 cuda=$2
    case $cuda in
        cuda | auto) ;;
        *) die "install_litgpt: expected 'cuda' or 'auto' as the second argument, got '$cuda'." ;;
    esac
    if [[ ! -x $venv/bin/python ]]; then
        run mkdir -p "$(dirname "$venv")"
        run python3 -m venv "$venv"
    fi
    # Not installed until proven otherwise (an install interrupted below must not look finished).
    if [[ -e $venv/.installed-litgpt-lock.txt || -e $venv/.installed-litgpt-lock-cuda.txt ]]; then
        run rm -f "$venv/.installed-litgpt-lock.txt" "$venv/.installed-litgpt-lock-cuda.txt"
    fi
    run "$venv/bin/python" -m pip install --no-deps -r "$LITGPT_LOCK"
    local with_cuda=0
    if [[ $cuda == cuda ]]; then
        with_cuda=1
    elif [[ $DRY_RUN == 1 ]]; then
        info "(dry run: torch's CUDA libraries are installed next only if the torch installed requires them)"
    elif torch_requires_cuda "$venv"; then
        with_cuda=1
    fi
    if ((with_cuda)); then
        run "$venv/bin/python" -m pip install --no-deps -r "$LITGPT_LOCK_CUDA"
    fi
    if ! run "$venv/bin/python" -m pip check; then
        die "pip check failed in $venv: the lock files do not hold a consistent set of packages here." \
            "The lines above name what is missing or incompatible. The locks were resolved for Linux" \
            "x86_64 and Python 3.11/3.12 (ec2/README.md, 'The LitGPT lock')."
    fi
    run cp "$LITGPT_LOCK" "$venv/.installed-litgpt-lock.txt"
    if ((with_cuda)); then
        run cp "$LITGPT_LOCK_CUDA" "$venv/.installed-litgpt-lock-cuda.txt"
    fi
}

# Convert the Hugging Face checkpoint in the directory $1 to LitGPT's lit_model.pth, atomically.
# $2: the LitGPT config name (the converter picks the architecture by name), $3: the dtype; the rest:
# the litgpt command. The converter writes lit_model.pth piece by piece into the directory it reads,
# so it runs in a directory beside the checkpoint holding links to the downloaded files, and
# lit_model.pth is moved in (a rename, on the same disk) only once the converter has finished:
# an interrupted conversion never leaves a lit_model.pth behind, and the next run converts again.
convert_checkpoint() {
    local checkpoint=$1 model_name=$2 dtype=$3
    shift 3
    local work=$checkpoint.converting file files=()
    if [[ -e $work ]]; then
        info "removing what an interrupted conversion left: $work"
        run rm -rf "$work"
    fi
    for file in "$checkpoint"/*; do
        case ${file##*/} in
            lit_model.pth | model_config.yaml) ;;
            *) [[ -e $file ]] && files+=("$file") ;;
        esac
    done
    if ((${#files[@]} == 0)); then
        [[ $DRY_RUN == 1 ]] || die "Nothing to convert in $checkpoint: the download left no files there."
        files=("$checkpoint/<each downloaded file>")
    fi
    run mkdir -p "$work"
    run ln -s "${files[@]}" "$work/"
    run "$@" convert_to_litgpt "$work" --model_name "$model_name" --dtype "$dtype"
    run mv "$work/model_config.yaml" "$checkpoint/model_config.yaml"
    run mv "$work/lit_model.pth" "$checkpoint/lit_model.pth"     # last: its presence means "converted"
    run rm -rf "$work"
}
