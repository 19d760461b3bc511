"""ec2/multigpu.sh and ec2/multinode.sh, tested like the other ec2/ scripts: no GPU, no network, no AWS.

The fake machine of test_ec2_scripts.py (stubs alone on PATH) gets N GPUs in `nvidia-smi -L`, a stub `ip`
that answers for an instance at 10.0.1.45 on ens5, and a venv python whose `-m torch.distributed.run`
records its arguments and NCCL's environment, prints a RESULT line as rank 0 does, or fails like torchrun.
The scripts' torch check (does torch see the GPUs, with NCCL?) runs in the real Python, against the fake
torch extended with a device count, or against the real CPU-only torch, where it must refuse.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_ec2_scripts import BASH, EC2, FakeMachine, commands

OWN_IP, OTHER_IP, IFNAME = "10.0.1.45", "10.0.1.23", "ens5"
TECHNIQUES = ["ddp", "zero1", "fsdp", "tensor_parallel", "pipeline_parallel"]


class GpuMachine(FakeMachine):
    """FakeMachine with `gpus` A10Gs, an `ip` for an instance at OWN_IP on ens5, and a torchrun stub."""

    def __init__(self, root: Path, gpus: int = 4, **kwargs) -> None:
        self.gpus = gpus
        super().__init__(root, **kwargs)
        listing = "\n".join(f"GPU {i}: NVIDIA A10G (UUID: GPU-0000000{i})" for i in range(gpus))
        self.stub("nvidia-smi", f"case \"$*\" in -L) cat <<'EOF'\n{listing}\nEOF\n;; *) echo '| NVIDIA-SMI |' ;; esac")
        self.stub("ip", self._ip_stub())
        # the fake torch also reports a device count and NCCL, as torch.distributed asks
        init = self.fake_torch / "torch" / "__init__.py"
        init.write_text(init.read_text() + "import os as _os\ncuda.device_count = staticmethod("
                        "lambda: int(_os.environ.get('FAKE_CUDA_DEVICES', '0')))\n")
        (self.fake_torch / "torch" / "distributed").mkdir()
        (self.fake_torch / "torch" / "distributed" / "__init__.py").write_text(
            "def is_available():\n    return True\ndef is_nccl_available():\n    return True\n")
        self.make_torchrun_venv()

    def _ip_stub(self) -> str:
        addresses = (f"1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
                     f"2: {IFNAME}    inet {OWN_IP}/24 metric 100 brd 10.0.1.255 scope global dynamic {IFNAME}\\"
                     "       valid_lft 3000sec preferred_lft 3000sec")
        return (f'printf "%s\\n" "ip $*" >> "{self.log}"\n'
                f"addresses() {{ cat <<'EOF'\n{addresses}\nEOF\n}}\n"
                'case "$*" in\n'
                '  "-o -4 addr show") addresses ;;\n'
                '  "-o -4 addr show scope global") addresses | grep "scope global" ;;\n'
                '  "-o -4 addr show dev "*) addresses | grep " ${*: -1} " ||\n'
                '    { echo "Device \\"${*: -1}\\" does not exist." >&2; exit 1; } ;;\n'
                f'  "-o route get {OWN_IP}")\n'
                f'    echo "local {OWN_IP} dev lo table local src {OWN_IP} uid 1000 \\\\    cache" ;;\n'
                f'  "-o route get 10.0.1."*) echo "${{*: -1}} dev {IFNAME} src {OWN_IP} uid 1000 \\\\    cache" ;;\n'
                '  "-o route get "*) echo "RTNETLINK answers: Network is unreachable" >&2; exit 2 ;;\n'
                '  *) echo "ip stub: unexpected: $*" >&2; exit 1 ;;\n'
                'esac')

    def make_torchrun_venv(self) -> None:
        """The course venv's python: a script on stdin runs in the real Python; `-m torch.distributed.run`
        records its arguments and the NCCL interface, then prints rank 0's report (RESULT line) unless told
        otherwise, or fails with status 7 for the technique in FAIL_TECHNIQUE."""
        (self.venv / "bin").mkdir(parents=True, exist_ok=True)
        python = self.venv / "bin" / "python"
        python.write_text(
            f"#!{BASH}\n"
            'if [ "$1" = - ]; then exec "' + sys.executable + '" "$@"; fi\n'
            f'printf "%s\\n" "torchrun $* NCCL_SOCKET_IFNAME=${{NCCL_SOCKET_IFNAME:-}}'
            f' GLOO_SOCKET_IFNAME=${{GLOO_SOCKET_IFNAME:-}}" >> "{self.log}"\n'
            'for arg; do case $arg in *.py) technique=$(basename "$arg" .py) ;; esac; done\n'
            'echo "step 0: loss 4.158883   single process 4.158883"\n'
            'if [ "$technique" = "${FAIL_TECHNIQUE:-}" ]; then\n'
            '  echo "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: $technique.py FAILED" >&2\n'
            '  exit 7\n'
            'fi\n'
            'if [ "${NO_RESULT:-}" != 1 ]; then\n'
            '  echo "RESULT {\\"technique\\": \\"$technique\\", \\"max_difference\\": 0.0}"\n'
            'fi\n')
        python.chmod(0o755)

    def run(self, script: str, *args: str, dry_run: bool = True, **env: str) -> subprocess.CompletedProcess:
        env.setdefault("FAKE_CUDA_DEVICES", str(self.gpus))
        return super().run(script, *args, dry_run=dry_run, **env)

    def torchruns(self) -> list[str]:
        return [c for c in self.calls() if c.startswith("torchrun ")]


@pytest.fixture
def gpu_machine(tmp_path: Path):
    made = []

    def make(**kwargs) -> GpuMachine:
        made.append(GpuMachine(tmp_path / f"machine{len(made)}", **kwargs))
        return made[-1]
    return make


def torchrun(m: GpuMachine, nproc_options: str, technique: str, extra: str = "", steps: int = 4) -> str:
    return (f"{m.venv}/bin/python -m torch.distributed.run {nproc_options} course_lib/distributed/{technique}.py"
            f" --steps {steps}{extra}")


@pytest.mark.parametrize("script", ["multigpu.sh", "multinode.sh"])
def test_new_scripts_stop_at_the_first_error(script: str):
    assert "set -euo pipefail" in (EC2 / script).read_text()


# ---- multigpu.sh ----------------------------------------------------------------

def test_multigpu_runs_every_technique_with_torchrun_on_every_gpu_and_tp_pp_on_two(gpu_machine):
    m = gpu_machine(gpus=4)
    result = m.run("multigpu.sh")
    assert result.returncode == 0, result.stderr
    assert commands(result) == [
        torchrun(m, "--nproc_per_node=4", "ddp"),
        torchrun(m, "--nproc_per_node=4", "zero1"),
        torchrun(m, "--nproc_per_node=4", "fsdp"),
        torchrun(m, "--nproc_per_node=2", "tensor_parallel"),
        torchrun(m, "--nproc_per_node=2", "pipeline_parallel"),
    ]
    assert "torch 2.13.0: 4 CUDA device(s), NCCL available: True" in result.stdout   # the check ran for real


def test_multigpu_dry_run_prints_and_changes_nothing(gpu_machine):
    m = gpu_machine()
    result = m.run("multigpu.sh")
    assert result.returncode == 0, result.stderr
    assert "DRY_RUN=1" in result.stdout and len(commands(result)) == 5
    assert m.torchruns() == [] and list(m.tmp.iterdir()) == []


def test_multigpu_real_run_prints_rank_0s_result_lines_and_leaves_no_files(gpu_machine):
    m = gpu_machine(gpus=8)
    result = m.run("multigpu.sh", dry_run=False)
    assert result.returncode == 0, result.stderr
    assert [c.split(" NCCL_")[0] for c in m.torchruns()] == [
        f"torchrun -m torch.distributed.run --nproc_per_node={n} course_lib/distributed/{t}.py --steps 4"
        for t, n in zip(TECHNIQUES, [8, 8, 8, 2, 2])]
    summary = result.stdout.split("Rank 0's reports:")[1].splitlines()[1:]
    assert summary == [f'RESULT {{"technique": "{t}", "max_difference": 0.0}}' for t in TECHNIQUES]
    assert list(m.tmp.iterdir()) == []             # torchrun's kept output is removed on exit


@pytest.mark.parametrize("gpus", [0, 1])
def test_multigpu_refuses_fewer_than_two_gpus_and_names_the_instances_to_pick(gpu_machine, gpus):
    result = gpu_machine(gpus=gpus).run("multigpu.sh")
    assert result.returncode == 1
    assert f"This instance has {gpus} NVIDIA GPU(s); multigpu.sh needs at least 2" in result.stderr
    assert "g5.12xlarge" in result.stderr and "p4d.24xlarge" in result.stderr
    assert "ec2/multinode.sh" in result.stderr
    assert commands(result) == []


def test_multigpu_asks_for_setup_without_a_working_driver(gpu_machine):
    m = gpu_machine()
    m.stub("nvidia-smi", "exit 9")
    result = m.run("multigpu.sh")
    assert result.returncode == 1 and "ec2/setup.sh" in result.stderr
    assert commands(result) == []


def test_multigpu_refuses_a_torch_that_cannot_see_the_gpus(gpu_machine):
    """The check runs in the real CPU-only torch here: 0 CUDA devices, so no NCCL run."""
    result = gpu_machine(torch="cpu").run("multigpu.sh")
    assert result.returncode == 1
    assert "0 CUDA device(s), NCCL available: False" in result.stdout
    assert "fall back to CPU processes on gloo" in result.stderr
    assert commands(result) == []


def test_multigpu_technique_option_runs_one(gpu_machine):
    m = gpu_machine()
    result = m.run("multigpu.sh", "--technique", "pipeline_parallel", "--steps", "10")
    assert result.returncode == 0, result.stderr
    assert commands(result) == [torchrun(m, "--nproc_per_node=2", "pipeline_parallel", steps=10)]


@pytest.mark.parametrize("args, message", [
    (["--technique", "zero3"], "Unknown technique 'zero3'. Choose one of: ddp zero1 fsdp tensor_parallel"),
    (["--steps", "0"], "--steps must be a whole number from 1 up; got '0'"),
    (["--steps"], "--steps needs a value"),
    (["--nproc-per-node", "8"], "--nproc-per-node 8: this instance has 4 GPUs"),
    (["--gpus", "2"], "Unknown argument '--gpus'"),
])
def test_multigpu_refuses_bad_arguments(gpu_machine, args, message):
    result = gpu_machine(gpus=4).run("multigpu.sh", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert commands(result) == []


def test_multigpu_gives_data_parallel_a_batch_that_splits_evenly(gpu_machine):
    """8 rows over 3 processes do not split: the data-parallel scripts get --batch 9."""
    m = gpu_machine(gpus=4)
    result = m.run("multigpu.sh", "--nproc-per-node", "3")
    assert result.returncode == 0, result.stderr
    assert commands(result)[0] == torchrun(m, "--nproc_per_node=3", "ddp", " --batch 9")
    assert commands(result)[3] == torchrun(m, "--nproc_per_node=2", "tensor_parallel")


def test_multigpu_a_failing_torchrun_stops_with_its_exit_status_and_names_the_technique(gpu_machine):
    m = gpu_machine()
    result = m.run("multigpu.sh", dry_run=False, FAIL_TECHNIQUE="fsdp")
    assert result.returncode == 7
    assert "fsdp failed: torchrun exited with status 7" in result.stderr
    assert [c.split()[4] for c in m.torchruns()] == [
        "course_lib/distributed/ddp.py", "course_lib/distributed/zero1.py", "course_lib/distributed/fsdp.py"]
    assert list(m.tmp.iterdir()) == []


def test_multigpu_a_run_without_a_result_line_is_an_error(gpu_machine):
    result = gpu_machine().run("multigpu.sh", "--technique", "ddp", dry_run=False, NO_RESULT="1")
    assert result.returncode == 1
    assert "ddp finished but printed no line starting with 'RESULT '" in result.stderr


# ---- multinode.sh ----------------------------------------------------------------

def rendezvous(m: GpuMachine, rank: int, nproc: int, technique: str = "ddp", addr: str = OTHER_IP,
               port: int = 29500, extra: str = "") -> str:
    options = (f"--nnodes=2 --node_rank={rank} --nproc_per_node={nproc} --rdzv_backend=c10d"
               f" --rdzv_endpoint={addr}:{port} --rdzv_id=course-{technique}")
    return torchrun(m, options, technique, extra)


def test_multinode_rank_1_runs_torchrun_with_a_c10d_rendezvous_at_the_master(gpu_machine):
    m = gpu_machine(gpus=1)
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP)
    assert result.returncode == 0, result.stderr
    assert commands(result) == [rendezvous(m, 1, 1)]
    assert f"NCCL_SOCKET_IFNAME={IFNAME} GLOO_SOCKET_IFNAME={IFNAME}" in result.stdout
    assert f"ip -o route get {OTHER_IP}" in m.calls()          # the interface that reaches the master
    assert m.torchruns() == []                                   # a dry run starts nothing


def test_multinode_rank_0_hosts_the_rendezvous_at_its_own_address_on_its_real_interface(gpu_machine):
    """`ip route get` of one's own address says `lo`: rank 0 takes the interface that holds the address."""
    m = gpu_machine(gpus=4)
    result = m.run("multinode.sh", "--node-rank", "0", "--master-addr", OWN_IP, "--port", "29600")
    assert result.returncode == 0, result.stderr
    assert commands(result) == [rendezvous(m, 0, 4, addr=OWN_IP, port=29600)]
    assert f"NCCL_SOCKET_IFNAME={IFNAME}" in result.stdout and "IFNAME=lo" not in result.stdout


def test_multinode_real_run_hands_nccl_and_gloo_the_interface_and_prints_rank_0s_report(gpu_machine):
    m = gpu_machine(gpus=1)
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, dry_run=False)
    assert result.returncode == 0, result.stderr
    [call] = m.torchruns()
    assert call.endswith(f"--steps 4 NCCL_SOCKET_IFNAME={IFNAME} GLOO_SOCKET_IFNAME={IFNAME}")
    assert "global rank 0 ran here" in result.stdout and 'RESULT {"technique": "ddp"' in result.stdout
    quiet = gpu_machine(gpus=1).run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP,
                                    dry_run=False, NO_RESULT="1")
    assert quiet.returncode == 0, quiet.stderr
    assert "Global rank 0 ran on the other instance" in quiet.stdout


@pytest.mark.parametrize("technique", ["tensor_parallel", "pipeline_parallel"])
def test_multinode_tp_and_pp_run_one_process_per_instance(gpu_machine, technique):
    m = gpu_machine(gpus=4)
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, "--technique", technique)
    assert result.returncode == 0, result.stderr
    assert commands(result) == [rendezvous(m, 1, 1, technique)]
    refused = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, "--technique", technique,
                    "--nproc-per-node", "2")
    assert refused.returncode == 1 and "--nproc-per-node 1 (got 2)" in refused.stderr


def test_multinode_eight_gpus_each_give_data_parallel_a_batch_of_sixteen(gpu_machine):
    m = gpu_machine(gpus=8)
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, "--technique", "fsdp")
    assert result.returncode == 0, result.stderr
    assert commands(result) == [rendezvous(m, 1, 8, "fsdp", extra=" --batch 16")]


@pytest.mark.parametrize("args, message", [
    (["--master-addr", OTHER_IP], "--node-rank is missing"),
    (["--node-rank", "2", "--master-addr", OTHER_IP], "--node-rank must be 0 or 1 (two instances); got '2'"),
    (["--node-rank", "-1", "--master-addr", OTHER_IP], "--node-rank must be 0 or 1"),
    (["--node-rank", "one", "--master-addr", OTHER_IP], "--node-rank must be 0 or 1"),
    (["--node-rank", "1"], "--master-addr is missing: the private IPv4 address"),
    (["--node-rank", "1", "--master-addr"], "--master-addr needs a value"),
    (["--node-rank", "1", "--master-addr", "10.0.1"],
     "--master-addr must be an IPv4 address such as 10.0.1.23; got '10.0.1'"),
    (["--node-rank", "1", "--master-addr", "10.0.1.256"], "--master-addr must be an IPv4 address"),
    (["--node-rank", "1", "--master-addr", "10.0.01.23"], "--master-addr must be an IPv4 address"),
    (["--node-rank", "1", "--master-addr", "ip-10-0-1-23"], "--master-addr must be an IPv4 address"),
    (["--node-rank", "1", "--master-addr", "10.0.1.23; reboot"], "--master-addr must be an IPv4 address"),
    (["--node-rank", "1", "--master-addr", "54.210.1.23"], "is not a private address"),
    (["--node-rank", "1", "--master-addr", "127.0.0.1"], "--rdzv_endpoint=127.0.0.1"),
    (["--node-rank", "1", "--master-addr", OTHER_IP, "--port", "80"],
     "--port must be a number from 1024 to 65535; got '80'"),
    (["--node-rank", "1", "--master-addr", OTHER_IP, "--port", "70000"], "--port must be a number from 1024"),
    (["--node-rank", "1", "--master-addr", OTHER_IP, "--port", "x"], "--port must be a number"),
    (["--node-rank", "1", "--master-addr", OTHER_IP, "--technique", "zero2"], "Unknown technique 'zero2'"),
    (["--node-rank", "1", "--master-addr", OTHER_IP, "--ifname", "ens5;ls"], "--ifname must be a network interface"),
    (["--node-rank", "1", "--master-addr", OTHER_IP, "--rank", "1"], "Unknown argument '--rank'"),
])
def test_multinode_refuses_bad_arguments_before_anything_else(gpu_machine, args, message):
    m = gpu_machine()
    result = m.run("multinode.sh", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert commands(result) == [] and m.calls() == []            # not even nvidia-smi or ip was asked


def test_multinode_refuses_a_master_address_that_does_not_match_the_node_rank(gpu_machine):
    m = gpu_machine()
    result = m.run("multinode.sh", "--node-rank", "0", "--master-addr", OTHER_IP)
    assert result.returncode == 1
    assert f"--master-addr {OTHER_IP} is not an address of this instance" in result.stderr
    assert f"(its addresses: {OWN_IP})" in result.stderr
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OWN_IP)
    assert result.returncode == 1
    assert f"--master-addr {OWN_IP} is this instance's own address, but this is node rank 1" in result.stderr
    assert commands(result) == []


def test_multinode_says_when_there_is_no_route_to_the_master(gpu_machine):
    result = gpu_machine().run("multinode.sh", "--node-rank", "1", "--master-addr", "192.168.7.7")
    assert result.returncode == 1
    assert "no route to 192.168.7.7: RTNETLINK answers: Network is unreachable" in result.stderr
    assert "same VPC subnet" in result.stderr


def test_multinode_ifname_option_is_checked_and_used(gpu_machine):
    m = gpu_machine()
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, "--ifname", IFNAME)
    assert result.returncode == 0, result.stderr
    assert f"NCCL_SOCKET_IFNAME={IFNAME}" in result.stdout
    assert not any(c.startswith("ip -o route get") for c in m.calls())
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, "--ifname", "eth9")
    assert result.returncode == 1
    assert "--ifname eth9: this instance has no interface of that name" in result.stderr


def test_multinode_without_ip_asks_for_the_interface(gpu_machine):
    m = gpu_machine()
    (m.bin / "ip").unlink()
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP)
    assert result.returncode == 1
    assert "The ip command (iproute2) is missing" in result.stderr and "--ifname ens5" in result.stderr
    named = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, "--ifname", "ens5")
    assert named.returncode == 0, named.stderr
    assert "NCCL_SOCKET_IFNAME=ens5" in named.stdout


def test_multinode_refuses_more_processes_than_gpus_and_a_torch_without_them(gpu_machine):
    result = gpu_machine(gpus=1).run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP,
                                     "--nproc-per-node", "2")
    assert result.returncode == 1 and "this instance has 1 NVIDIA GPU(s), one per process" in result.stderr
    result = gpu_machine(torch="cpu").run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP)
    assert result.returncode == 1 and "fall back to CPU processes on gloo" in result.stderr
    assert commands(result) == []


def test_multinode_a_failing_torchrun_stops_with_its_exit_status_and_names_the_technique(gpu_machine):
    m = gpu_machine()
    result = m.run("multinode.sh", "--node-rank", "1", "--master-addr", OTHER_IP, "--technique", "zero1",
                   dry_run=False, FAIL_TECHNIQUE="zero1")
    assert result.returncode == 7
    assert "zero1 failed: torchrun exited with status 7" in result.stderr and "NCCL_DEBUG=INFO" in result.stderr
    assert list(m.tmp.iterdir()) == []
