"""What the doc-replay tests share: the tools they need, grpcurl (tools/grpcurl-shim) on PATH, a
live turnpike-control on free ports with a bootstrap admin token, node tokens, and running a doc
line through bash exactly as a reader's shell would (pipes, redirections, substitutions).

The docs' lines name the control plane as localhost:50052 and carry
`-H "authorization: Bearer $TURNPIKE_ADMIN_TOKEN"` (or $TURNPIKE_NODE_TOKEN); `run_line` points
the address at the live process, and `refused_without_header` checks that the same line without
its header fails with UNAUTHENTICATED.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

CONTROL_ADDR = "localhost:50052"
_HEADER = re.compile(r'-H "authorization: Bearer \$TURNPIKE_(ADMIN|NODE)_TOKEN" ')


def missing_tools(buf, also=("jq",)):
    """None when buf and the commands in `also` exist; else the exit code to return (SKIP: 0,
    or 1 under CI=true, where a missing tool is a failure), after saying what is missing."""
    missing = [] if os.access(buf, os.X_OK) else ["buf"]
    missing += [tool for tool in also if shutil.which(tool) is None]
    if not missing:
        return None
    msg = f"{' and '.join(missing)} not found (tools/dev installs them)"
    if os.environ.get("CI") == "true":
        print(msg)
        return 1
    print(f"SKIP: {msg}")
    return 0


def shim_env(tmp, shim, buf):
    """The environment with tools/grpcurl-shim on PATH as `grpcurl`."""
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.symlink(os.path.realpath(shim), os.path.join(bindir, "grpcurl"))
    return dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}",
                TURNPIKE_BUF=os.path.realpath(buf))


def wait_for_file(path, proc, timeout=20):
    """The integer a process writes to `path` (a port file), or None if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port = read_port(path)
        if port is not None:
            return port
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


class ControlProcess:
    """turnpike-control on free ports in `tmp`, with a bootstrap admin token and the development
    master key; `flags` are added to its command line."""

    def __init__(self, control, tmp, flags=()):
        self.tmp = tmp
        self._log = open(os.path.join(tmp, "control.log"), "w+")
        self.proc = subprocess.Popen([
            control, "--listen=127.0.0.1:0", f"--db={tmp}/var/turnpike.db",
            f"--port_file={tmp}/control.port", "--metrics_listen=127.0.0.1:0",
            f"--metrics_port_file={tmp}/metrics.port",
            f"--bootstrap_admin_token_file={tmp}/admin.token", "--auth_failure_max_delay=0",
            "--dev_insecure_master_key", *flags], stdout=self._log, stderr=subprocess.STDOUT)
        self.address = self.metrics_port = self.admin_token = None

    def started(self):
        """True once the process serves; else False, after printing its log."""
        port = wait_for_file(f"{self.tmp}/control.port", self.proc)
        self.metrics_port = wait_for_file(f"{self.tmp}/metrics.port", self.proc)
        if port is None or self.metrics_port is None:
            print(f"turnpike-control did not start:\n{self.log()}")
            return False
        self.address = f"127.0.0.1:{port}"
        self.admin_token = open(f"{self.tmp}/admin.token").read().strip()
        return True

    def log(self):
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def metrics(self):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                      timeout=10).read().decode()

    def node_token(self, env, node):
        """A node token for `node` minted through the admin API, or None after printing why."""
        r = subprocess.run(["grpcurl", "-plaintext", "-H",
                            f"authorization: Bearer {self.admin_token}", "-d",
                            json.dumps({"name": node, "nodeId": node}), self.address,
                            "turnpike.admin.v1.AdminService/CreateNodeToken"],
                           env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            print(f"CreateNodeToken failed:\n{r.stdout}{r.stderr}")
            return None
        return json.loads(r.stdout)["token"]

    def stop(self):
        """SIGTERM; True if the process exited cleanly, else False after printing its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "timeout"
        if code != 0:
            print(f"turnpike-control exited with {code} after SIGTERM:\n{self.log()}")
            return False
        return True


def run_line(line, address, cwd, env, timeout=60):
    """Runs a doc line through bash (pipefail) with localhost:50052 pointed at `address`."""
    return subprocess.run(["bash", "-o", "pipefail", "-c", line.replace(CONTROL_ADDR, address)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def refused_without_header(n, line, address, cwd, env):
    """None when line `n` carries its authorization header and, without it, fails with
    UNAUTHENTICATED before doing anything; otherwise what is wrong."""
    header = _HEADER.search(line)
    if header is None:
        return f"line {n} has no authorization header:\n  {line}"
    bare = line.replace(header.group(0), "")
    r = run_line(bare, address, cwd, env)
    if r.returncode == 0 or "unauthenticated" not in (r.stdout + r.stderr).lower():
        return (f"line {n} without its header did not fail with UNAUTHENTICATED:\n"
                f"  {bare}\n{r.stdout}{r.stderr}")
    return None


def wait_until(condition, timeout, poll=0.02):
    """True once condition() is true, False if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)


def read_port(path):
    """The port a process wrote to `path`, or None while it has not."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text else None
    except FileNotFoundError:
        return None


class ProcessStack:
    """The processes of a live stack, each logging to a file in `tmp`; stopped in reverse order."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []  # (name, Popen, log file)

    def start(self, name, argv, port_flags=("port",)):
        """Starts `argv` (in `tmp`) with --FLAG_file=... for each of `port_flags` and returns the
        ports it wrote, once all are written; RuntimeError (with its log) if it exits or takes
        20 s."""
        log = open(os.path.join(self.tmp, f"{name}.log"), "w+")
        files = [f"{self.tmp}/{name}-{flag}" for flag in port_flags]
        program = os.path.realpath(argv[0]) if "/" in argv[0] else argv[0]  # runs in tmp
        argv = [program] + argv[1:] + [f"--{flag}_file={f}" for flag, f in zip(port_flags, files)]
        proc = subprocess.Popen(argv, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc, log))
        ok = wait_until(lambda: proc.poll() is not None or
                        all(read_port(f) is not None for f in files), 20)
        if not ok or proc.poll() is not None:
            raise RuntimeError(f"{name} did not start: {argv}\n{self.log(name)}")
        return [read_port(f) for f in files]

    def address(self, name, argv):
        """start() for a process with one port: its 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.start(name, argv)[0]}"

    def log(self, name):
        """What process `name` has written so far (also after stop())."""
        for n, _, log in self.procs:
            if n == name:
                if not log.closed:
                    log.flush()
                with open(log.name, errors="replace") as f:
                    return f.read()
        return ""

    def stop(self):
        """SIGTERM in reverse start order; returns a list of problems (an unclean exit, or a
        sanitizer report in a log even with a clean exit code: docs/sanitizers.md)."""
        problems = []
        for name, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = "timeout"
            if code != 0:
                problems.append(f"{name} exited with {code} after SIGTERM:\n{self.log(name)}")
            elif re.search(r"SUMMARY: \w+Sanitizer", self.log(name)):
                problems.append(f"{name} wrote a sanitizer report:\n{self.log(name)}")
        for _, _, log in self.procs:
            log.close()
        return problems
