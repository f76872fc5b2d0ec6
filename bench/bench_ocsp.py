"""OCSP responder throughput: ours (`jplink ca serve --workers 2`) vs OpenSSL's.

Both responders run on this machine in the same run, with the same CA home
(same RSA OCSP signing key), and are driven by the same load generator: an
aiohttp client with N concurrent workers POSTing one pre-built request DER,
for a fixed duration each. Reported per case: responses/s, median and p99
latency, and the ratio ours/openssl. Two cases: a request without a nonce
(a responder may reuse a signed response) and with a nonce (every response
must be freshly signed).

Run: ``.venv/bin/python -m bench.bench_ocsp [--duration 5] [--clients 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca_tsa.home import init_ca_home, load_ca_material
from jplink.security.certs import CertProfile, MemberSubject, build_subject_name
from jplink.security.ocsp import (
    OcspResponseStatus,
    build_ocsp_request,
    parse_ocsp_response,
)
from tests.support.ports import free_port

JPLINK = [sys.executable, "-m", "jplink.cli"]


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def make_home(root: Path, port: int) -> tuple[Path, x509.Certificate, x509.Certificate]:
    home = root / "ca"
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    config = init_ca_home(home, api_port=port, tsa_port=free_port(), now=now)
    material = load_ca_material(config)
    subject = MemberSubject("JP", "COM", "1234", "Bench Org")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(build_subject_name(CertProfile.SIGN, subject))
        .sign(key, hashes.SHA256())
    )
    (root / "leaf.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    subprocess.run(
        [*JPLINK, "ca", "issue", "--home", str(home), "--csr", str(root / "leaf.csr"),
         "--profile", "sign", "--instance", "JP", "--member-class", "COM",
         "--member-code", "1234", "--member-name", "Bench Org",
         "--out", str(root / "leaf.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    leaf = x509.load_pem_x509_certificate((root / "leaf.pem").read_bytes())
    (root / "issuer.pem").write_bytes(
        material.ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    expiry = leaf.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    (root / "index.txt").write_text(
        f"V\t{expiry}\t\t{leaf.serial_number:X}\tunknown\t/CN=leaf\n"
    )
    return home, material.ca_cert, leaf


async def drive(
    url: str, body: bytes, clients: int, duration: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/ocsp-request"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> float:
            start = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                data = await response.read()
            elapsed = time.perf_counter() - start
            if (
                parse_ocsp_response(data).response_status
                is not OcspResponseStatus.SUCCESSFUL
            ):
                raise RuntimeError("unsuccessful OCSP response")
            return elapsed

        async def worker(stop: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                try:
                    elapsed = await one()
                except (aiohttp.ClientError, RuntimeError, OSError):
                    errors += 1
                    continue
                if record:
                    latencies.append(elapsed)

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(warm, False) for _ in range(clients)))
        errors = 0
        start = time.perf_counter()
        stop = start + duration
        await asyncio.gather(*(worker(stop, True) for _ in range(clients)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / wall,
        "median_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000
        if latencies
        else 0.0,
        "errors": float(errors),
    }


def stop_group(process: subprocess.Popen[bytes], marker: str) -> None:
    """Stop a server and every process it forked.

    Both servers fork workers (`--workers 2`, `-multi 2`). openssl's workers
    detach into a session of their own and outlive their parent, so after the
    parent is gone every process whose command line names this run's
    temporary directory (``marker``) is killed too.
    """
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)


def start_openssl(root: Path, home: Path, port: int) -> subprocess.Popen[bytes]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("openssl is required")
    help_text = subprocess.run(
        [openssl, "ocsp", "-help"], capture_output=True, text=True
    )
    multi = ["-multi", "2"] if "-multi" in help_text.stderr + help_text.stdout else []
    return subprocess.Popen(
        [openssl, "ocsp", "-index", str(root / "index.txt"), "-port", str(port),
         "-rsigner", str(home / "certs" / "ocsp.pem"),
         "-rkey", str(home / "private" / "ocsp.key"),
         "-CA", str(root / "issuer.pem"), "-nmin", "60", *multi],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ocsp-") as tmp:
        root = Path(tmp)
        ours_port, openssl_port = free_port(), free_port()
        home, issuer, leaf = make_home(root, ours_port)
        requests = {
            "no nonce": build_ocsp_request(leaf, issuer, hash_algorithm=hashes.SHA1()),
            "nonce": build_ocsp_request(
                leaf, issuer, hash_algorithm=hashes.SHA1(), nonce=os.urandom(16)
            ),
        }
        ours = subprocess.Popen(
            [*JPLINK, "ca", "serve", "--home", str(home), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs = start_openssl(root, home, openssl_port)
        try:
            wait_for(ours_port, ours)
            wait_for(openssl_port, theirs)
            print(
                f"{args.clients} clients, {args.duration:.0f} s per run, RSA OCSP key"
            )
            head = ("case", "server", "resp/s", "median ms", "p99 ms")
            print("{:<10} {:<8} {:>8} {:>10} {:>8}".format(*head))
            for case, body in requests.items():
                results = {}
                for name, port in (("ours", ours_port), ("openssl", openssl_port)):
                    url = (
                        f"http://127.0.0.1:{port}/ocsp"
                        if name == "ours"
                        else (f"http://127.0.0.1:{port}/")
                    )
                    r = asyncio.run(drive(url, body, args.clients, args.duration))
                    results[name] = r
                    print(
                        f"{case:<10} {name:<8} {r['rps']:>8.0f} "
                        f"{r['median_ms']:>10.2f} {r['p99_ms']:>8.2f}"
                        + (f"  errors={r['errors']:.0f}" if r["errors"] else "")
                    )
                ratio = results["ours"]["rps"] / max(results["openssl"]["rps"], 1e-9)
                print(f"{case:<10} ratio ours/openssl = {ratio:.2f}")
        finally:
            for process in (ours, theirs):
                stop_group(process, tmp)


if __name__ == "__main__":
    main()
