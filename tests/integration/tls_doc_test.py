#!/usr/bin/env python3
"""Replays docs/tls.md whole against a live stack, in a temp dir.

Runs EVERY line of the guide's ```sh blocks in order, as written, through bash:
  * the openssl, printf, mkdir, chmod and mv lines make the CA, the certificates and the rotation;
  * the `turnpike-control ... &` and `turnpike-gateway ... &` lines start those binaries with the
    guide's flags, only their listen addresses moved to free ports (port files added), the
    gateway's --control_plane pointed at the control plane started above it, and
    --tls_reload_interval=1s so the rotation is seen in seconds;
  * the grpcurl lines run through tools/grpcurl-shim (buf curl), TLS flags included, with
    localhost:50051/50052 pointed at the stack (the name stays `localhost`: the certificate's);
  * the curl line reads the gateway's /metrics over HTTPS.
A fake provider and the `fake` provider the guide assumes (as `tools/dev up` creates it) are set
up once the control plane is up. A gateway line waits, deadline-bounded, for the gateway to have
the control plane's current config (it retries until the line passes or 15 s are up).
Then checks what the guide claims: both Complete calls (certificate, key) were the same caller in
the access log and in the usage ledger (the ListUsage line); after the rotation lines the gateway and the control plane hand new connections
the new certificate; /metrics reports the reload; every process ends cleanly on SIGTERM.

usage: tls_doc_test.py --control=PATH --gateway=PATH --fake=PATH --buf=PATH --shim=PATH
                       --doc=docs/tls.md
Without buf or jq it prints SKIP (exit 0), except under CI=true, where that is a failure.
"""
import argparse
import os
import re
import shlex
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "controlplane"))
from doc_lines import extract_sh_lines  # noqa: E402
from doc_stack import ProcessStack, missing_tools, shim_env, wait_until  # noqa: E402

GATEWAY, CONTROL, METRICS = "localhost:50051", "localhost:50052", "localhost:9464"


def server_cert_der(port, client_cert=None):
    """The certificate a new TLS connection to 127.0.0.1:port is given (DER); None on failure.
    `client_cert`: (certificate file, key file) to present, for a server that asks for one."""
    try:
        return _server_cert_der(port, client_cert)
    except (OSError, ssl.SSLError):
        return None


def _server_cert_der(port, client_cert):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        ctx.load_cert_chain(*client_cert)
    ctx.set_alpn_protocols(["h2"])
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def file_cert_der(path):
    pem = open(path).read()
    first = pem[pem.index("-----BEGIN CERTIFICATE-----"):pem.index("-----END CERTIFICATE-----") + 25]
    return ssl.PEM_cert_to_DER_cert(first)


def rewrite_server_line(args, binaries):
    """The guide's start line for our binary, with listen addresses on free ports."""
    out = [binaries[args[0]]]
    for a in args[1:]:
        if a.startswith("--listen=") or a.startswith("--metrics_listen="):
            out.append(a.split("=", 1)[0] + "=127.0.0.1:0")
        else:
            out.append(a)
    if not any(a.startswith("--listen=") for a in out):
        out.append("--listen=127.0.0.1:0")
    if not any(a.startswith("--metrics_listen=") for a in out):
        out.append("--metrics_listen=127.0.0.1:0")
    # The guide leaves the check period at its default (60 s); the test does not wait that long.
    out.append("--tls_reload_interval=1s")
    return out


def main():
    p = argparse.ArgumentParser()
    for flag in ("control", "gateway", "fake", "buf", "shim", "doc"):
        p.add_argument(f"--{flag}", required=True)
    opts = p.parse_args()
    for flag in ("control", "gateway", "fake"):
        setattr(opts, flag, os.path.realpath(getattr(opts, flag)))
    code = missing_tools(opts.buf, also=("jq", "openssl"))
    if code is not None:
        return code
    lines = extract_sh_lines(opts.doc)
    assert any(l.startswith("openssl ") for l in lines), "no openssl lines found"

    with tempfile.TemporaryDirectory(prefix="tp-tls-doc-") as tmp:
        env = shim_env(tmp, opts.shim, opts.buf)
        stack = ProcessStack(tmp)
        binaries = {"turnpike-control": opts.control, "turnpike-gateway": opts.gateway}
        ops_cert = (os.path.join(tmp, "certs/ops.crt"), os.path.join(tmp, "certs/ops.key"))
        addresses = {}
        gateway_port = control_port = None
        ran = 0
        try:
            fake_port, = stack.start("fake", [opts.fake, "--listen=127.0.0.1:0", "--chunks=8",
                                              "--api_key=fake-key"], ["port"])
            for n, line in enumerate(lines, 1):
                args = shlex.split(line)
                if args and args[0] in binaries:
                    assert args[-1] == "&", f"line {n}: a server line ends with &: {line}"
                    argv = rewrite_server_line(args[:-1], binaries)
                    if args[0] == "turnpike-control":
                        control_port, _ = stack.start("control", argv, ["port", "metrics_port"])
                        addresses[CONTROL] = f"localhost:{control_port}"
                        seed_fake_provider(env, tmp, addresses[CONTROL], fake_port)
                        # Mutual TLS between the planes: no client certificate, no connection.
                        r = subprocess.run(["grpcurl", "-cacert", "certs/ca.crt",
                                            addresses[CONTROL], "grpc.health.v1.Health/Check"],
                                           cwd=tmp, env=env, capture_output=True, text=True,
                                           timeout=30)
                        if r.returncode == 0:
                            print("the control plane accepted a client without a certificate")
                            return 1
                    else:
                        argv = [a.replace(CONTROL, addresses[CONTROL]) for a in argv]
                        gateway_port, metrics_port = stack.start("gateway", argv,
                                                                 ["port", "metrics_port"])
                        addresses[GATEWAY] = f"localhost:{gateway_port}"
                        addresses[METRICS] = f"localhost:{metrics_port}"
                    ran += 1
                    continue
                cmd = line
                for doc_addr, real in addresses.items():
                    cmd = cmd.replace(doc_addr, real)
                if line.startswith("export "):
                    # A reader's shell keeps the variable for the next lines; so does the test.
                    name = line.split()[1].split("=", 1)[0]
                    r = subprocess.run(["bash", "-c", f'{cmd}; printf %s "${name}"'], cwd=tmp,
                                       env=env, capture_output=True, text=True, timeout=30)
                    if r.returncode != 0 or not r.stdout:
                        print(f"line {n} failed:\n  {line}\n{r.stdout}{r.stderr}")
                        return 1
                    env[name] = r.stdout
                    ran += 1
                    continue
                # Config and reloads reach the gateway, and usage records the control plane,
                # asynchronously: those lines are retried until they show what they should.
                is_gateway_line = GATEWAY in line or METRICS in line or "ListUsage" in line
                rotate = line.startswith("mv certs/server-next.key")
                before = {}
                if rotate:
                    before = {"gateway": server_cert_der(gateway_port),
                              "control": server_cert_der(control_port, ops_cert)}

                def attempt():
                    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp,
                                          env=env, capture_output=True, text=True, timeout=60)

                def done(r):
                    if r.returncode != 0:
                        return False
                    if line.startswith("curl "):
                        return "turnpike_tls_certificate_reloads_total 1" in r.stdout
                    if "ListUsage" in line:  # the certificate's request and the key's
                        return r.stdout.count('"caller": "claims-service"') == 2
                    return True
                r = attempt()
                if not done(r) and is_gateway_line:
                    deadline = time.monotonic() + 15
                    while not done(r) and time.monotonic() < deadline:
                        time.sleep(0.2)
                        r = attempt()
                if r.returncode != 0:
                    print(f"line {n} failed (exit {r.returncode}):\n  {line}\n{r.stdout}{r.stderr}")
                    print(stack.log("gateway"))
                    return 1
                ran += 1
                if "Health/Check" in line and "SERVING" not in r.stdout:
                    print(f"line {n}: not SERVING:\n{r.stdout}")
                    return 1
                if "CompletionService/Complete" in line and '"text"' not in r.stdout:
                    print(f"line {n}: no completion text:\n{r.stdout}")
                    return 1
                if rotate:
                    new = file_cert_der(os.path.join(tmp, "certs/server.crt"))
                    assert new != before["gateway"]
                    for name, port, cert in (("gateway", gateway_port, None),
                                             ("control", control_port, ops_cert)):
                        if not wait_until(lambda: server_cert_der(port, cert) == new, 20,
                                          poll=0.2):
                            print(f"{name} did not hand out the renewed certificate")
                            return 1
                if not done(r):
                    print(f"line {n}: not what the guide says (the reload on /metrics, two "
                          f"usage records of claims-service):\n  {line}\n{r.stdout}")
                    return 1
            gw_log = stack.log("gateway")
            callers = re.findall(r"access method=\S+ .*?capability=claims-summary caller=(\S+)",
                                 gw_log)
            if callers != ["claims-service", "claims-service"]:
                print(f"access log callers {callers}, want claims-service twice:\n{gw_log}")
                return 1
            if "tls: TLS certificate reloaded from certs/server.crt" not in gw_log:
                print(f"the gateway did not log the reload:\n{gw_log}")
                return 1
            print(f"ran all {ran} lines of {opts.doc}")
        finally:
            problems = stack.stop()
        if problems:
            print("\n".join(problems))
            return 1
    return 0


def seed_fake_provider(env, tmp, control, fake_port):
    """The `fake` provider the guide's examples use, as `tools/dev up` creates it."""
    token = open(os.path.join(tmp, "admin.token")).read().strip()
    for method, body in (
            ("CreateCredential",
             '{"credential":{"name":"fake-key"},"secret":"fake-key"}'),
            ("CreateProvider",
             '{"provider":{"spec":{"name":"fake","kind":"PROVIDER_KIND_OPENAI","baseUrl":'
             f'"http://127.0.0.1:{fake_port}/v1","credential":"fake-key"}}}}}}')):
        r = subprocess.run(["grpcurl", "-cacert", "certs/ca.crt", "-cert", "certs/ops.crt",
                            "-key", "certs/ops.key", "-H",
                            f"authorization: Bearer {token}", "-d", body, control,
                            f"turnpike.admin.v1.AdminService/{method}"],
                           cwd=tmp, env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"seeding {method} failed:\n{r.stdout}{r.stderr}")


if __name__ == "__main__":
    sys.exit(main())
