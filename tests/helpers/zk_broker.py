#!/usr/bin/env python3
"""Registers a Kafka broker in ZooKeeper exactly as Kafka does, then waits.

Usage: zk_broker.py HOSTS ID ENDPOINT [--controller] [--persistent] [--data JSON]
                     [--protocol PROTOCOL] [--controller-data DATA]

Kafka (>= 2.2, KafkaZkClient.registerBroker) creates /brokers/ids/<id> as an
EPHEMERAL node in one multi: create with null data, then setData at version 0
(so a fresh registration has version 1). With --controller it also creates
/controller ({"version":2,"brokerid":ID,...}) owned by the same session, as
the broker that won the election would (--controller-data: other bytes
there). The listener_security_protocol_map maps ENDPOINT's listener to
PROTOCOL (default: the listener's own name when it is one of Kafka's
protocols, else PLAINTEXT). --data replaces the whole registration JSON.
Prints "registered 0x<session>" and
then sleeps until killed: SIGKILL leaves the session, and the nodes, alive
on the server until the session timeout, like a crashed broker.

Uses kazoo (PyPI), a ZooKeeper client independent of kwait's.
"""
import json
import sys
import time

from kazoo.client import KazooClient


def main():
    hosts, broker_id, endpoint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    args = sys.argv[4:]
    timeout = 30.0
    zk = KazooClient(hosts=hosts, timeout=timeout)
    zk.start(timeout=15)
    listener, hostport = endpoint.split("://", 1)
    host, port = hostport.rsplit(":", 1)
    protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    protocol = listener if listener in protocols else "PLAINTEXT"
    if "--protocol" in args:
        protocol = args[args.index("--protocol") + 1]
    data = json.dumps({
        "features": {},
        "listener_security_protocol_map": {listener: protocol},
        "endpoints": [endpoint],
        "jmx_port": -1,
        # Kafka's host/port are its PLAINTEXT listener's, null/-1 without one.
        "host": host if protocol == "PLAINTEXT" else None,
        "port": int(port) if protocol == "PLAINTEXT" else -1,
        "timestamp": str(int(time.time() * 1000)),
        "version": 5,
    }).encode()
    if "--data" in args:
        data = args[args.index("--data") + 1].encode()
    zk.ensure_path("/brokers/ids")
    path = "/brokers/ids/%d" % broker_id
    ephemeral = "--persistent" not in args
    tx = zk.transaction()
    tx.create(path, b"", ephemeral=ephemeral)
    tx.set_data(path, data, version=0)
    results = tx.commit()
    for r in results:
        if isinstance(r, Exception):
            raise r
    if "--controller" in args:
        controller = json.dumps({"version": 2, "brokerid": broker_id,
                                 "timestamp": str(int(time.time() * 1000)),
                                 "kraftControllerEpoch": -1}).encode()
        if "--controller-data" in args:
            controller = args[args.index("--controller-data") + 1].encode()
        zk.create("/controller", controller, ephemeral=True)
        if not zk.exists("/controller_epoch"):
            zk.create("/controller_epoch", b"1")
    session_id, _ = zk.client_id
    print("registered 0x%x timeout %.0fms" % (session_id, zk._session_timeout), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
