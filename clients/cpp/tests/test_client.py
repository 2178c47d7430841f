#!/usr/bin/env python3
"""The C++ client (through its example, turnpike_demo) against a live turnpike-gateway and the
fake provider: a stream, Complete, Embed, a key-protected route, and an error with its decoded
details. With --build_dir and --source, also installs the build (`cmake --install`) into a temp
prefix, builds the example on its own with find_package(Turnpike), and runs that binary too.

usage: test_client.py --gateway=PATH --fake=PATH --demo=PATH [--build_dir=DIR --source=DIR]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from test_stack import CALLER_KEY, REPLY, ClientStack  # noqa: E402


def run(demo, gateway, *args, key=None):
    env = dict(os.environ)
    env.pop("TURNPIKE_CALLER_KEY", None)
    if key:
        env["TURNPIKE_CALLER_KEY"] = key
    return subprocess.run([demo, f"--gateway={gateway}", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def fields(line):
    """{"key": "value"} of a `word key=value ...` line."""
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def check(demo, gateway):
    """The problems found running `demo` against `gateway` (empty: none)."""
    problems = []
    r = run(demo, gateway, "stream", "demo", "hello")
    lines = r.stdout.splitlines()
    if r.returncode != 0 or not lines or not lines[0].startswith("start provider=fake "):
        problems.append(f"stream: exit {r.returncode}\n{r.stdout}{r.stderr}")
    elif f"text {REPLY}" not in lines or int(fields(lines[-1]).get("cost_usd_micros", 0)) <= 0:
        problems.append(f"stream: no whole text or no cost\n{r.stdout}")
    r = run(demo, gateway, "complete", "demo", "hello")
    if r.returncode != 0 or f"text {REPLY}" not in r.stdout:
        problems.append(f"complete: exit {r.returncode}\n{r.stdout}{r.stderr}")
    r = run(demo, gateway, "embed", "vectors", "first", "second")
    vectors = [fields(l) for l in r.stdout.splitlines() if l.startswith("vector ")]
    if r.returncode != 0 or [v["index"] for v in vectors] != ["0", "1"] or \
            any(int(v["dimensions"]) <= 0 for v in vectors):
        problems.append(f"embed: exit {r.returncode}\n{r.stdout}{r.stderr}")
    r = run(demo, gateway, "complete", "closed", "hello")
    if r.returncode != 1 or "code=16 " not in r.stdout:  # UNAUTHENTICATED without the key
        problems.append(f"closed without a key: exit {r.returncode}\n{r.stdout}{r.stderr}")
    r = run(demo, gateway, "complete", "closed", "hello", key=CALLER_KEY)
    if r.returncode != 0 or f"text {REPLY}" not in r.stdout:
        problems.append(f"closed with the key: exit {r.returncode}\n{r.stdout}{r.stderr}")
    # A mid-stream failure: the text so far, then the error with its partial usage.
    r = run(demo, gateway, "stream", "demo", "hi [[fake stream_error_after=2]]")
    error = [fields(l) for l in r.stdout.splitlines() if l.startswith("error ")]
    if r.returncode != 1 or "partial_text Hello from" not in r.stdout or not error or \
            int(error[0]["attempts"]) < 1:
        problems.append(f"mid-stream failure: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return problems


def check_provider_error(demo, gateway):
    # A retry-after of 40 s is past what the gateway waits for (10 s, docs/resilience.md): it
    # answers at once, with the provider's 429 and its retry-after. Its own capability and
    # upstream, so the cool-down leaves the other checks alone.
    r = run(demo, gateway, "complete", "limited", "hi [[fake status=429 retry_after=40]]")
    error = [fields(l) for l in r.stdout.splitlines() if l.startswith("error ")]
    if r.returncode != 1 or not error:
        return [f"provider 429: exit {r.returncode}\n{r.stdout}{r.stderr}"]
    e = error[0]
    if e["code"] != "8" or e["provider_http_status"] != "429" or e["retry_after_ms"] != "40000":
        return [f"provider 429: details not decoded\n{r.stdout}"]
    return []


def build_installed(build_dir, source, tmp):
    """Installs the build into tmp/prefix and builds the example against it; its binary."""
    prefix = os.path.join(tmp, "prefix")
    subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix], check=True,
                   capture_output=True, text=True)
    out = os.path.join(tmp, "consumer")
    for step in (["cmake", "-S", source, "-B", out, "-G", "Ninja",
                  f"-DCMAKE_PREFIX_PATH={prefix}"], ["cmake", "--build", out]):
        r = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{r.stdout}{r.stderr}")
    return os.path.join(out, "turnpike_demo")


def main():
    p = argparse.ArgumentParser()
    for flag in ("gateway", "fake", "demo"):
        p.add_argument(f"--{flag}", required=True)
    p.add_argument("--build_dir")
    p.add_argument("--source")
    opts = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="tp-cpp-client-")
    stack = None
    problems = []
    try:
        stack = ClientStack(tmp, opts.gateway, opts.fake)
        demos = {"in-tree (add_subdirectory)": opts.demo}
        if opts.build_dir:
            demos["installed (find_package)"] = build_installed(opts.build_dir, opts.source, tmp)
        for name, demo in demos.items():
            problems += [f"{name}: {p}" for p in check(demo, stack.gateway)]
        problems += check_provider_error(opts.demo, stack.gateway)
        if not problems:
            print(f"the C++ client works, built {' and '.join(demos)}")
    except RuntimeError as e:
        problems.append(str(e))
    finally:
        if stack is not None:
            problems += stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
