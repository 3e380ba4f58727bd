"""The emulator's cost per request: stock `moto_server` against `serve.py`, in one run.

For each server, interleaved over --rounds: N conditional PutItems, N conditional UpdateItems and
N/10 TransactWriteItems of 10 actions each into a table that already holds those N items (the
shape of the insights counters), from 8 client threads. Reported: the server process's CPU time
per request (user + system, from /proc), so the client's own cost is left out, and the ratio of
serve.py to moto_server.

Usage: bench.py [--items 1000] [--rounds 2]   (the venv's python: bin/setup installs boto3 with moto)
"""

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import time

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(kind, port):
    if kind == "moto_server":
        cmd = [os.path.join(os.path.dirname(sys.executable), "moto_server")]
    else:
        cmd = [sys.executable, os.path.join(HERE, "serve.py")]
    proc = subprocess.Popen(
        cmd + ["-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"bench.py: {kind} did not answer on port {port} within 30 s")


def workload(endpoint, items):
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_table(
        TableName="bench",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )

    def put(i):
        client.put_item(
            TableName="bench",
            Item={"pk": {"S": "org"}, "sk": {"S": f"{i:07}"}, "state": {"S": "PENDING"},
                  "body": {"S": "x" * 600}, "n": {"N": "0"}},
            ConditionExpression="attribute_not_exists(pk)",
        )

    def update(i):
        client.update_item(
            TableName="bench",
            Key={"pk": {"S": "org"}, "sk": {"S": f"{i:07}"}},
            UpdateExpression="SET #s = :leased",
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":leased": {"S": "LEASED"}, ":pending": {"S": "PENDING"}},
        )

    def transact(i):
        client.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": "bench",
                            "Key": {"pk": {"S": "org"}, "sk": {"S": f"{i * 10 + j:07}"}},
                            "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}}
                for j in range(10)
            ]
        )

    requests = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for fn, count in ((put, items), (update, items), (transact, items // 10)):
            list(pool.map(fn, range(count)))
            requests += count
    return requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    per_request = {"moto_server": [], "serve.py": []}
    for round_ in range(args.rounds):
        for kind in ("moto_server", "serve.py"):
            port = free_port()
            proc = start(kind, port)
            try:
                before = cpu_seconds(proc.pid)
                requests = workload(f"http://127.0.0.1:{port}", args.items)
                used = cpu_seconds(proc.pid) - before
            finally:
                proc.kill()
                proc.wait()
            per_request[kind].append(used / requests * 1000)
            print(f"round {round_ + 1} {kind:11}: {requests} requests, "
                  f"{used / requests * 1000:.2f} ms of emulator CPU each", flush=True)
    base = statistics.median(per_request["moto_server"])
    ours = statistics.median(per_request["serve.py"])
    print(f"median: moto_server {base:.2f} ms, serve.py {ours:.2f} ms per request "
          f"(x{ours / base:.2f})")


if __name__ == "__main__":
    main()
