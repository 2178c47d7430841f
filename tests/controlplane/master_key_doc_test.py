#!/usr/bin/env python3
"""Replays the master key rotation of docs/security.md against a live control plane.

In a temp dir: makes master.key with openssl, starts turnpike-control on var/turnpike.db with it,
seeds a credential with two versions through the admin API, then runs EVERY line of the ```sh
blocks of the guide's "Rotating the master key" section in order, through bash:
  * a `turnpike-control ... &` line replaces the running control plane (SIGTERM, clean exit),
    started with the guide's flags plus the test's own: the same port, a port file, the
    bootstrap admin token file;
  * grpcurl lines run through tools/grpcurl-shim (buf curl), localhost:50052 pointed at it;
  * openssl, chmod, shred and mv lines run as written.
Then checks what the guide says: RotateMasterKey re-sealed both versions under the new key's id,
the restart with the new key alone served ListCredentials, master.key now holds the new key and a
start with it succeeds, and no secret reached a log.

usage: master_key_doc_test.py --control=PATH --buf=PATH --shim=PATH --doc=docs/security.md
Without buf or openssl it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SECTION = "## Rotating the master key"
CONTROL = "localhost:50052"
SECRETS = ("sk-doc-secret-one", "sk-doc-secret-two")


def section_lines(doc):
    text = open(doc, encoding="utf-8").read()
    start = text.index(SECTION)
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else len(text)]
    lines, in_sh = [], False
    for line in body.splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if in_sh and line.strip():
            lines.append(line)
    return lines


def wait_until(condition, timeout, poll=0.05):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


class Control:
    """One turnpike-control process at a time, logging to control.log (appended)."""

    def __init__(self, binary, tmp):
        self.binary, self.tmp, self.proc, self.port = binary, tmp, None, 0
        self.log_path = os.path.join(tmp, "control.log")

    def start(self, flags):
        port_file = os.path.join(self.tmp, "control.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        argv = [self.binary] + flags + [
            f"--listen=127.0.0.1:{self.port}", f"--port_file={port_file}",
            "--metrics_listen=127.0.0.1:0", "--bootstrap_admin_token_file=admin.token"]
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(argv, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        ok = wait_until(lambda: self.proc.poll() is not None or (
            os.path.exists(port_file) and open(port_file).read().strip() != ""), 20)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError(f"turnpike-control did not start: {argv}\n{self.log()}")
        self.port = int(open(port_file).read().strip())

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "timeout"

    def log(self):
        return open(self.log_path).read() if os.path.exists(self.log_path) else ""


def main():
    p = argparse.ArgumentParser()
    for flag in ("control", "buf", "shim", "doc"):
        p.add_argument(f"--{flag}", required=True)
    opts = p.parse_args()
    missing = [w for w, ok in (("buf", os.access(opts.buf, os.X_OK)),
                               ("openssl", shutil.which("openssl") is not None)) if not ok]
    if missing:
        msg = f"{' and '.join(missing)} not found (tools/dev installs them)"
        if os.environ.get("CI") == "true":
            print(msg)
            return 1
        print(f"SKIP: {msg}")
        return 0
    lines = section_lines(opts.doc)
    assert any("RotateMasterKey" in l for l in lines), "no RotateMasterKey line in the section"

    with tempfile.TemporaryDirectory(prefix="tp-master-key-doc-") as tmp:
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        os.symlink(os.path.realpath(opts.shim), os.path.join(bindir, "grpcurl"))
        env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}",
                   TURNPIKE_BUF=os.path.realpath(opts.buf))

        def sh(cmd):
            return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=60)

        control = Control(os.path.realpath(opts.control), tmp)
        try:
            # The state the guide starts from: a database sealed under master.key.
            r = sh("openssl rand -hex 32 > master.key && chmod 0400 master.key")
            assert r.returncode == 0, r.stderr
            old_key = open(os.path.join(tmp, "master.key")).read().strip()
            control.start(["--db=var/turnpike.db", "--master_key_file=master.key"])
            env["TURNPIKE_ADMIN_TOKEN"] = open(os.path.join(tmp, "admin.token")).read().strip()
            for method, body in (
                    ("CreateCredential", {"credential": {"name": "openai-prod"},
                                          "secret": SECRETS[0]}),
                    ("RotateCredential", {"name": "openai-prod", "secret": SECRETS[1]})):
                r = sh(f"grpcurl -plaintext -H \"authorization: Bearer $TURNPIKE_ADMIN_TOKEN\" "
                       f"-d {shlex.quote(json.dumps(body))} localhost:{control.port} "
                       f"turnpike.admin.v1.AdminService/{method}")
                if r.returncode != 0:
                    print(f"seeding {method} failed:\n{r.stdout}{r.stderr}")
                    return 1
            rotated = None
            listed = None
            for n, line in enumerate(lines, 1):
                args = shlex.split(line)
                if args[0] == "turnpike-control":
                    assert args[-1] == "&", f"line {n}: a server line ends with &: {line}"
                    code = control.stop()
                    if code != 0:
                        print(f"before line {n}: turnpike-control exited with {code}:\n"
                              f"{control.log()}")
                        return 1
                    control.start(args[1:-1])
                    continue
                r = sh(line.replace(CONTROL, f"localhost:{control.port}"))
                if r.returncode != 0:
                    print(f"line {n} failed (exit {r.returncode}):\n  {line}\n{r.stdout}{r.stderr}"
                          f"\n{control.log()}")
                    return 1
                if "RotateMasterKey" in line:
                    rotated = json.loads(r.stdout)
                if "ListCredentials" in line:
                    listed = json.loads(r.stdout)
            new_key = open(os.path.join(tmp, "master.key")).read().strip()
            problems = []
            if new_key == old_key:
                problems.append("master.key still holds the old key")
            if rotated is None or rotated.get("resealed") != "2" or not rotated.get("keyId") \
                    or rotated.get("previousKeyIds") == [rotated.get("keyId")]:
                problems.append(f"RotateMasterKey answered {rotated}, want 2 versions re-sealed")
            versions = (listed or {}).get("credentials", [{}])[0].get("versions", [])
            if len(versions) != 2:
                problems.append(f"ListCredentials after the rotation: {listed}")
            # The final key opens everything: a start with it alone succeeds.
            code = control.stop()
            if code != 0:
                problems.append(f"turnpike-control exited with {code}")
            control.start(["--db=var/turnpike.db", "--master_key_file=master.key"])
            for secret in SECRETS + (old_key, new_key, env["TURNPIKE_ADMIN_TOKEN"]):
                if secret in control.log():
                    problems.append(f"secret {secret[:6]}... in the control plane log")
            if problems:
                print("\n".join(problems) + "\n" + control.log())
                return 1
            print(f"ran all {len(lines)} lines of {SECTION!r} in {opts.doc}")
        except RuntimeError as e:
            print(e)
            return 1
        finally:
            code = control.stop()
        if code != 0:
            print(f"turnpike-control exited with {code} after SIGTERM:\n{control.log()}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
