"""Job-side multi-node supervisor: starts every node's part of one server and ends them together.

Copied into the job directory with ``nodeports.py`` and ``nodeprocs.py`` (next to
``launcher.py``) and run with the standard library alone (Python 3.8+). Two roles::

    nodes.py head --mode ray|native --head-node NODE [--gpus-per-node G] [--container-words K]
                  -- LAUNCHER ARGV -- ENGINE ARGV with {port}
    nodes.py node --job-id J --rank R --nnodes N [--attempt A] [--ray-worker] -- COMMAND

``head`` runs on the first node (the batch script ``exec``s it). In Ray mode it starts the Ray
head here and one ``srun`` step per other node that joins it, waits until every node has joined,
then runs the launcher (``vllm serve --distributed-executor-backend ray``). In native mode it
runs the launcher with vLLM's own ``--nnodes/--node-rank/--master-addr/--master-port`` and one
``vllm serve --headless`` step per other node. Then it watches them all: when any one ends, the
others are stopped, and a part that ended on its own is reported as a ``vec-inf:`` line on
stderr, which the status classifier reads as the failure reason.

``node`` runs inside each ``srun`` step: it picks that node's Ray ports (checked free there),
runs the command and, when it ends or the step is signalled, ends every process it left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

if __package__:  # imported from the package (tests, type checks)
    from vec_inf_flows.scripts import nodeports, nodeprocs
else:  # run from a job directory, next to the copies made with this file
    import nodeports  # type: ignore[no-redef]
    import nodeprocs  # type: ignore[no-redef]

POLL_SECONDS = 0.5
HEAD_ATTEMPTS = 3
NODE_ATTEMPTS = 3
RAY_TIMEOUT_VARIABLE = "VEC_INF_RAY_TIMEOUT"  # seconds for every node to join; default 600
RAY_POLL_VARIABLE = "VEC_INF_RAY_POLL_INTERVAL"  # seconds between `ray status`; default 2
HEAD_IP_VARIABLE = "VEC_INF_HEAD_IP"  # the address other nodes reach the head at
PORT_TOKEN = "{port}"
STOPPED_FILE = "stopped.json"  # jobwatch.py's record of a stop on purpose (lease, idle)


# ------------------------------------------------------------------------------------- node
def node_name() -> str:
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def here(name: str) -> str:
    """A file of the job directory this file was copied into (shared by every node)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def note_path(rank: int) -> str:
    """Where a node's keeper says why its command ended."""
    return here(f"node-{rank}.exit")


def write_note(path: str, text: str) -> None:
    with contextlib.suppress(OSError):
        with open(path + ".tmp", "w") as handle:
            handle.write(text + "\n")
        os.replace(path + ".tmp", path)


def read_note(rank: int) -> str | None:
    try:
        with open(note_path(rank)) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def clear_shm() -> None:
    """Before a node's part starts and after it ended: no segment of a killed engine is left
    to collide with this one's (``nodeprocs.clear_stale_cpu_shm``)."""
    removed = nodeprocs.clear_stale_cpu_shm()
    if removed:
        nodeprocs.log(f"{node_name()}: removed {len(removed)} stale vLLM CPU segments (/dev/shm)")


def run_node(args: argparse.Namespace) -> int:
    """One node's part (a Ray worker, or a headless vLLM) as an srun step."""
    nodeprocs.become_subreaper()
    family = nodeprocs.Family()
    family.install()
    command, env, temp_dir = list(args.command), dict(os.environ), None
    name = f"{os.path.basename(command[0])} on {node_name()} (rank {args.rank})"
    clear_shm()
    try:
        if args.ray_worker:
            start = nodeports.choose_block(args.job_id, args.rank, args.nnodes, args.attempt)
            flags, extra = nodeports.ray_port_args(start, head=False)
            temp_dir = nodeports.ray_temp_dir(args.job_id, args.rank)
            command += [*flags, f"--temp-dir={temp_dir}"]
            env.update(extra)
            nodeprocs.log(f"{node_name()}: Ray ports {start}-{start + nodeports.BLOCK_SIZE - 1}")
        family.spawn("command", command, env)
    except (OSError, RuntimeError) as error:
        nodeprocs.log(f"cannot start {name}: {error}")
        write_note(note_path(args.rank), f"cannot start {os.path.basename(command[0])}: {error}")
        return 127
    while family.alive and family.stop_signal is None:
        time.sleep(POLL_SECONDS)
        family.reap()
    if family.stop_signal is None:
        time.sleep(POLL_SECONDS)  # a job being cancelled signals us too: give that signal a moment
        family.reap()
    code = family.ended.get("command")
    if code is not None and family.stop_signal is None:
        # Ended on its own: tell the head at once (it watches this file), then clean up.
        note = f"{os.path.basename(command[0])} {nodeprocs.describe(code)}"
        nodeprocs.log(f"{node_name()} (rank {args.rank}): {note}")
        write_note(note_path(args.rank), note)
    # Ray's `ray start --block` drains for 30 s on SIGTERM and a worker node has nothing to save:
    # end it at once, so its files are gone before Slurm's KillWait runs out.
    family.teardown(grace=0.0 if args.ray_worker else nodeprocs.GRACE_SECONDS)
    if temp_dir is not None:
        nodeports.remove_ray_temp_dir(temp_dir)
    clear_shm()
    code = family.ended.get("command", 1)
    return code if family.stop_signal is None else -family.stop_signal


# ------------------------------------------------------------------------------------- head
class Head:
    """The first node: starts the others, runs the launcher, and ends everything together."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.job_id = os.environ.get("SLURM_JOB_ID", "0")
        self.nodes = job_nodes(args.head_node)
        self.head_ip = node_ip(args.head_node, self.nodes[1:])
        self.family = nodeprocs.Family()
        split = args.command.index("--") + 1 if "--" in args.command else 0
        self.launcher_words, self.engine = args.command[:split], args.command[split:]
        self.ray = [*self.engine[: args.container_words], "ray"]
        self.attempts: dict[int, int] = {}
        self.node_commands: dict[int, list[str]] = {}
        self.temp_dir = nodeports.ray_temp_dir(self.job_id, 0) if args.mode == "ray" else ""

    # ---- helpers
    def stopped(self) -> bool:
        return self.family.stop_signal is not None

    def ray_resources(self) -> list[str]:
        cpus = os.environ.get("SLURM_CPUS_PER_TASK", "1")
        gpus = self.args.gpus_per_node
        return [f"--num-cpus={cpus}"] + ([f"--num-gpus={gpus}"] if gpus > 0 else [])

    def start_node(self, rank: int) -> None:
        with contextlib.suppress(OSError):
            os.unlink(note_path(rank))
        attempt = self.attempts.get(rank, 0) + 1
        self.attempts[rank] = attempt
        argv = ["srun", "--nodes=1", "--ntasks=1", "--overlap", f"--nodelist={self.nodes[rank]}"]
        argv += [sys.executable, os.path.abspath(__file__), "node", "--job-id", self.job_id]
        argv += ["--rank", str(rank), "--nnodes", str(len(self.nodes)), "--attempt", str(attempt)]
        argv += ["--ray-worker"] if self.args.mode == "ray" else []
        self.family.spawn(f"node-{rank}", [*argv, "--", *self.node_commands[rank]])

    def launcher(self, extra: list[str], env: dict[str, str] | None = None) -> None:
        """The job's launcher (as the script gave it) with this node's engine flags appended."""
        self.family.spawn("launcher", [*self.launcher_words, *self.engine, *extra], env)

    def ray_nodes_alive(self, address: str) -> int:
        try:
            report = subprocess.run(
                [*self.ray, "status", f"--address={address}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            ).stdout.decode("utf-8", "replace")
        except (OSError, subprocess.TimeoutExpired):
            return 0
        return count_active_nodes(report)

    # ---- Ray mode
    def start_ray_head(self) -> str | None:
        for attempt in range(1, HEAD_ATTEMPTS + 1):
            start = nodeports.choose_block(self.job_id, 0, len(self.nodes), attempt)
            flags, extra = nodeports.ray_port_args(start, head=True)
            address = f"{self.head_ip}:{start}"
            argv = [*self.ray, "start", "--head", f"--node-ip-address={self.head_ip}"]
            argv += [*self.ray_resources(), *flags, f"--temp-dir={self.temp_dir}", "--block"]
            last = start + nodeports.BLOCK_SIZE - 1
            nodeprocs.log(f"Ray head at {address} (ports {start}-{last}, try {attempt})")
            self.family.spawn("ray-head", argv, {**os.environ, **extra})
            if self.wait_for_ray(address, 1):
                return address
            if self.stopped():
                return None
            self.family.teardown()
            self.family.ended.pop("ray-head", None)
        nodeprocs.fatal(f"the Ray head did not start after {HEAD_ATTEMPTS} attempts")
        return None

    def wait_for_ray(self, address: str, wanted: int) -> bool:
        """Poll `ray status` until ``wanted`` nodes are active; restart a node that quits."""
        timeout = float(os.environ.get(RAY_TIMEOUT_VARIABLE) or 600)
        deadline = time.monotonic() + timeout
        interval = float(os.environ.get(RAY_POLL_VARIABLE) or 2)
        while time.monotonic() < deadline and not self.stopped():
            self.family.reap()
            if "ray-head" in self.family.ended:
                return False
            for rank in range(1, len(self.nodes)):
                code = self.family.ended.pop(f"node-{rank}", None)
                if code is None or self.stopped():
                    continue
                if self.attempts[rank] >= NODE_ATTEMPTS:
                    last = read_note(rank) or f"its step {nodeprocs.describe(code)}"
                    nodeprocs.fatal(
                        f"node {self.nodes[rank]} could not join the Ray cluster after "
                        f"{NODE_ATTEMPTS} attempts (last: {last})"
                    )
                    return False
                nodeprocs.log(f"node {self.nodes[rank]} left before joining; starting it again")
                self.start_node(rank)
            if self.ray_nodes_alive(address) >= wanted:
                return True
            time.sleep(interval)
        if not self.stopped():
            alive = self.ray_nodes_alive(address)
            nodeprocs.fatal(f"only {alive} of {wanted} Ray nodes joined within {timeout:g}s")
        return False

    def start_ray(self) -> bool:
        address = self.start_ray_head()
        if address is None:
            return False
        join = [*self.ray, "start", f"--address={address}", *self.ray_resources(), "--block"]
        for rank in range(1, len(self.nodes)):
            self.node_commands[rank] = join
            self.start_node(rank)
        if not self.wait_for_ray(address, len(self.nodes)):
            return False
        nodeprocs.log(f"all {len(self.nodes)} Ray nodes joined; starting the engine")
        self.launcher([], {**os.environ, "RAY_ADDRESS": address})
        return True

    # ---- native mode
    def start_native(self) -> bool:
        master_port = nodeports.choose_block(self.job_id, 0, len(self.nodes), 1)
        common = ["--nnodes", str(len(self.nodes)), "--master-addr", self.head_ip]
        common += ["--master-port", str(master_port)]
        nodeprocs.log(
            f"vLLM multi-node: {len(self.nodes)} nodes, master {self.head_ip}:{master_port}"
        )
        self.launcher([*common, "--node-rank", "0"])
        headless = without_port(self.engine)
        for rank in range(1, len(self.nodes)):
            self.node_commands[rank] = [*headless, *common, "--node-rank", str(rank), "--headless"]
            self.start_node(rank)
        return True

    # ---- supervision
    def run(self) -> int:
        nodeprocs.become_subreaper()
        self.family.install()
        for signum in (signal.SIGUSR1, signal.SIGUSR2):  # for the launcher alone
            signal.signal(signum, self._to_launcher)
        clear_shm()
        try:
            started = self.start_ray() if self.args.mode == "ray" else self.start_native()
            code = self.supervise() if started else 1
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            nodeprocs.fatal(f"multi-node start-up failed on {self.nodes[0]}: {error}")
            code = 1
        self.stop_ray_head()
        self.family.teardown()
        if self.temp_dir:
            nodeports.remove_ray_temp_dir(self.temp_dir)
        clear_shm()
        return -self.family.stop_signal if self.family.stop_signal is not None else code

    def stop_ray_head(self) -> None:
        """SIGKILL the Ray head's processes: on SIGTERM it drains for 30 s, and nothing of it
        needs saving; its files go before Slurm's KillWait runs out."""
        for pid, name in list(self.family.alive.items()):
            if name == "ray-head":
                nodeprocs.signal_all([pid, *nodeprocs.descendants(pid)], signal.SIGKILL)

    def _to_launcher(self, signum: int, _frame: object) -> None:
        pids = [pid for pid, name in self.family.alive.items() if name == "launcher"]
        nodeprocs.signal_all(pids, signum)

    def supervise(self) -> int:
        """Wait until any part ends (or says it did); report a node that ended on its own."""
        ranks = range(1, len(self.nodes))
        while not self.stopped():
            time.sleep(POLL_SECONDS)
            self.family.reap()
            noted = [rank for rank in ranks if read_note(rank) is not None]
            if not self.family.ended and not noted:
                continue
            time.sleep(2 * POLL_SECONDS)  # a cancel reaches us too; and let every exit land
            self.family.reap()
            if self.stopped():
                break
            if "launcher" in self.family.ended and os.path.exists(here(STOPPED_FILE)):
                return self.family.ended["launcher"]  # the watch stopped it: the rest follows
            failed = [name for name in sorted(self.family.ended) if name != "launcher"]
            failed += [f"node-{rank}" for rank in noted if f"node-{rank}" not in failed]
            for name in failed:
                nodeprocs.fatal(f"{self.describe_part(name)}; stopping the server on every node")
            if failed:
                return 1
            return self.family.ended["launcher"]
        return 1

    def describe_part(self, name: str) -> str:
        """What ended, in the words of the node's keeper when it left a note."""
        code = self.family.ended.get(name)
        if name == "ray-head":
            ended = nodeprocs.describe(code) if code is not None else "ended"
            return f"the Ray head on {self.nodes[0]} {ended}"
        rank = int(name.split("-")[1])
        what = read_note(rank)
        if what is None:
            what = "its step " + (nodeprocs.describe(code) if code is not None else "ended")
        return f"node {self.nodes[rank]} (rank {rank}): {what}"


def count_active_nodes(report: str) -> int:
    """Nodes listed under ``Active:`` in ``ray status`` output."""
    count, active = 0, False
    for line in report.splitlines():
        if line.startswith("Active:"):
            active = True
        elif line.startswith(("Pending:", "Recent failures:", "Resources")):
            active = False
        elif active and "node_" in line:
            count += 1
    return count


def without_port(argv: list[str]) -> list[str]:
    """The engine command minus ``--port {port}``: a headless node serves no API."""
    out: list[str] = []
    skip = False
    for index, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word == "--port" and index + 1 < len(argv) and argv[index + 1] == PORT_TOKEN:
            skip = True
            continue
        out.append(word)
    return out


def job_nodes(head: str) -> list[str]:
    """The job's nodes, head first (``scontrol show hostnames`` expands Slurm's ranges)."""
    listing = os.environ.get("SLURM_JOB_NODELIST", head)
    try:
        found = subprocess.run(
            ["scontrol", "show", "hostnames", listing], stdout=subprocess.PIPE, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as error:
        nodeprocs.fatal(f"cannot list the job's nodes ({listing}): {error}")
        sys.exit(1)
    return [head] + [node for node in found.split() if node != head]


def node_ip(head: str, peers: list[str]) -> str:
    """The head's address as the other nodes reach it: ``VEC_INF_HEAD_IP`` when set, else the
    local address of the route to the first peer (a name that resolves to a loopback address in
    /etc/hosts, as Debian's own hostname does, would strand them), else the head's name."""
    chosen = os.environ.get(HEAD_IP_VARIABLE)
    if chosen:
        return chosen
    for peer in peers:
        # Nested, not one parenthesised `with`: job-side code must run on Python 3.8.
        with contextlib.suppress(OSError):  # noqa: SIM117
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((socket.gethostbyname(peer), 9))  # UDP: nothing is sent
                return str(probe.getsockname()[0])
    for name in (head, socket.gethostname()):
        with contextlib.suppress(OSError):
            return socket.gethostbyname(name)
    return "127.0.0.1"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nodes.py", description=__doc__.split("\n")[0])
    roles = parser.add_subparsers(dest="role", required=True)
    head = roles.add_parser("head")
    head.add_argument("--mode", choices=["ray", "native"], required=True)
    head.add_argument("--head-node", required=True)
    head.add_argument("--gpus-per-node", type=int, default=0)
    head.add_argument("--container-words", type=int, default=0)
    node = roles.add_parser("node")
    node.add_argument("--job-id", required=True)
    node.add_argument("--rank", type=int, required=True)
    node.add_argument("--nnodes", type=int, required=True)
    node.add_argument("--attempt", type=int, default=1)
    node.add_argument("--ray-worker", action="store_true")
    for role in (head, node):
        role.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("a command after '--' is required")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    nodeprocs.exit_like(run_node(args) if args.role == "node" else Head(args).run())


if __name__ == "__main__":
    main()
