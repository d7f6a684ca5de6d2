#!/usr/bin/python3
"""Python client for qingcloud-grpc, on Debian's python3-grpcio.

It generates the Python stubs at run time into a temporary folder, with Debian's protoc
(protobuf-compiler) and gRPC's Python plugin (protobuf-compiler-grpc), then:
  1. InstanceService/DescribeInstances   lists running instances;
  2. InstanceService/RunInstances        starts one instance and gets its job id;
  3. WatchService/WatchJobs              follows that job until it is terminal (a server stream);
  4. InstanceService/TerminateInstances  removes the instance again and watches that job too
                                         (skipped with QCG_KEEP_INSTANCE=1).
It exits 0 only if every call succeeded and every watched job ended "successful".

Settings are environment variables (see README.md): QCG_GRPC_ADDR, QCG_TOKEN, QCG_TLS, QCG_TLS_CA,
QCG_PROTO_PATH, QCG_GOOGLEAPIS_PATH, QCG_ZONE, QCG_IMAGE_ID, QCG_INSTANCE_TYPE, QCG_VXNET,
QCG_LOGIN_PASSWD, QCG_WATCH_TIMEOUT, QCG_KEEP_INSTANCE, and QCG_STUBS_DIR to keep the generated stubs
in a folder of your choice instead of a temporary one.
"""

import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import grpc

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def env(name, default=""):
    value = os.environ.get(name, "")
    return value if value != "" else default


CFG = {
    "addr": env("QCG_GRPC_ADDR", "127.0.0.1:9090"),
    "token": env("QCG_TOKEN"),
    "tls": env("QCG_TLS") == "1",
    "tls_ca": env("QCG_TLS_CA"),
    "proto_path": env("QCG_PROTO_PATH", os.path.join(REPO, "proto")),
    "googleapis_path": env("QCG_GOOGLEAPIS_PATH", os.path.join(REPO, ".tools", "protos", "googleapis")),
    "wkt_path": env("QCG_WKT_PATH", "/usr/include"),  # google/protobuf/*.proto, from libprotobuf-dev
    "zone": env("QCG_ZONE"),
    "image_id": env("QCG_IMAGE_ID", "centos7x64d"),
    "instance_type": env("QCG_INSTANCE_TYPE", "c1m1"),
    "vxnet": env("QCG_VXNET", "vxnet-0"),
    "login_passwd": env("QCG_LOGIN_PASSWD", "Passw0rd1"),
    "watch_timeout": float(env("QCG_WATCH_TIMEOUT", "120")),
    "keep_instance": env("QCG_KEEP_INSTANCE") == "1",
    "stubs_dir": env("QCG_STUBS_DIR"),
}
UNARY_TIMEOUT = 30.0
ENTRY_PROTOS = ["qingcloud/iaas/v1/instance.proto", "qingcloud/iaas/v1/watch.proto"]


class Failure(Exception):
    """A failed step; its message is printed and the example exits 1."""


def proto_closure(roots, include_dirs):
    """Returns the .proto files that roots import, directly or not, except google/protobuf/* (the
    well-known types ship compiled inside python3-protobuf)."""
    seen, todo = [], list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name.startswith("google/protobuf/"):
            continue
        for d in include_dirs:
            p = os.path.join(d, name)
            if os.path.exists(p):
                break
        else:
            raise Failure(f"{name} not found in {include_dirs} (set QCG_PROTO_PATH / QCG_GOOGLEAPIS_PATH; "
                          "google/api protos come from 'bash scripts/tools.sh')")
        seen.append(name)
        with open(p, encoding="utf-8") as f:
            todo.extend(re.findall(r'^\s*import\s+(?:public\s+)?"([^"]+)"\s*;', f.read(), re.M))
    return sorted(seen)


def generate_stubs(out_dir):
    """Runs protoc with the gRPC Python plugin into out_dir and makes the result importable."""
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if not protoc or not plugin:
        raise Failure("protoc and grpc_python_plugin are needed: "
                      "apt-get install protobuf-compiler protobuf-compiler-grpc libprotobuf-dev")
    if not os.path.exists(os.path.join(CFG["wkt_path"], "google/protobuf/timestamp.proto")):
        raise Failure(f"google/protobuf/timestamp.proto not in {CFG['wkt_path']}: apt-get install libprotobuf-dev "
                      "(or set QCG_WKT_PATH)")
    includes = [CFG["proto_path"], CFG["googleapis_path"]]
    files = proto_closure(ENTRY_PROTOS, includes)
    cmd = [protoc] + [f"-I{d}" for d in includes + [CFG["wkt_path"]]] + [
        f"--python_out={out_dir}", f"--grpc_out={out_dir}", f"--plugin=protoc-gen-grpc={plugin}"] + files
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise Failure(f"protoc failed:\n{res.stderr}")
    sys.path.insert(0, out_dir)
    importlib.invalidate_caches()


def call_metadata():
    return [("authorization", f"Bearer {CFG['token']}")] if CFG["token"] else []


def with_zone(fields):
    if CFG["zone"]:
        fields["zone"] = CFG["zone"]
    return fields


def describe_error(method, err):
    """Turns a grpc.RpcError into one line, with a hint for the codes a client team meets first."""
    code = err.code()
    msg = f"{method}: {code.name}: {err.details()}"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        msg += " (this server does not implement the method; update the server)"
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        msg += " (set QCG_TOKEN to a bearer token configured on the server)"
    return msg


def fmt_time(msg, field):
    if not msg.HasField(field):
        return "-"
    return getattr(msg, field).ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")


def watch_jobs(watch_stub, watch_pb2, job_ids):
    """Follows jobs over the WatchJobs server stream; returns the final JobEvent of each job. The server
    ends the stream once every job is terminal."""
    last = {}
    req = watch_pb2.WatchJobsRequest(**with_zone({"job_ids": job_ids}))
    try:
        for resp in watch_stub.WatchJobs(req, timeout=CFG["watch_timeout"], metadata=call_metadata()):
            kind = resp.WhichOneof("event")
            if kind == "notice":
                print(f"  notice: polling slowed down ({resp.notice.reason}); "
                      f"next poll {fmt_time(resp.notice, 'next_poll_time')}")
                continue
            if kind != "job":
                continue
            ev, job = resp.job, resp.job.job
            last[job.job_id] = ev
            flags = " ".join(f for f, on in (("terminal", ev.terminal), ("FAILED", ev.failed)) if on)
            print(f"  {job.job_id} {job.job_action} status={job.status}{' [' + flags + ']' if flags else ''} "
                  f"resources={job.resource_ids or '-'} at {fmt_time(job, 'status_time')}"
                  + (f" failure: {ev.failure_message}" if ev.failure_message else ""))
    except grpc.RpcError as err:
        raise Failure(describe_error("WatchJobs", err)) from None
    still_open = [j for j in job_ids if j not in last or not last[j].terminal]
    if still_open:
        raise Failure(f"WatchJobs: stream ended before job(s) {', '.join(still_open)} were terminal")
    return [last[j] for j in job_ids]


def expect_success(events):
    for ev in events:
        if ev.failed or ev.job.status != "successful":
            raise Failure(f"job {ev.job.job_id} ended {ev.job.status}"
                          + (f": {ev.failure_message}" if ev.failure_message else ""))


def unary(method, call, request):
    try:
        return call(request, timeout=UNARY_TIMEOUT, metadata=call_metadata())
    except grpc.RpcError as err:
        raise Failure(describe_error(method, err)) from None


def run():
    from qingcloud.iaas.v1 import instance_pb2, instance_pb2_grpc, watch_pb2, watch_pb2_grpc

    if CFG["tls_ca"]:
        with open(CFG["tls_ca"], "rb") as f:
            channel = grpc.secure_channel(CFG["addr"], grpc.ssl_channel_credentials(root_certificates=f.read()))
    elif CFG["tls"]:
        channel = grpc.secure_channel(CFG["addr"], grpc.ssl_channel_credentials())
    else:
        channel = grpc.insecure_channel(CFG["addr"])
    with channel:
        instances = instance_pb2_grpc.InstanceServiceStub(channel)
        watch = watch_pb2_grpc.WatchServiceStub(channel)
        print(f"qingcloud-grpc Python example: server {CFG['addr']}{' (TLS)' if CFG['tls'] or CFG['tls_ca'] else ''}")

        print("\n1. DescribeInstances status=running")
        described = unary("DescribeInstances", instances.DescribeInstances,
                          instance_pb2.DescribeInstancesRequest(**with_zone({"status": ["running"], "limit": 10})))
        print(f"  total_count={described.total_count}")
        for i in described.instance_set:
            print(f"  {i.instance_id} {i.instance_name} {i.instance_type} {i.status}")

        print(f"\n2. RunInstances image_id={CFG['image_id']} instance_type={CFG['instance_type']} vxnets={CFG['vxnet']}")
        run_resp = unary("RunInstances", instances.RunInstances, instance_pb2.RunInstancesRequest(**with_zone({
            "image_id": CFG["image_id"],
            "instance_type": CFG["instance_type"],
            "instance_name": "qingcloud-grpc-example-python",
            "login_mode": "passwd",
            "login_passwd": CFG["login_passwd"],
            "vxnets": [CFG["vxnet"]],
        })))
        ids = list(run_resp.instances)
        print(f"  job_id={run_resp.job_id} instances={','.join(ids)}")
        if not run_resp.job_id:
            raise Failure("RunInstances returned no job_id")

        print(f"\n3. WatchJobs job_ids={run_resp.job_id}")
        expect_success(watch_jobs(watch, watch_pb2, [run_resp.job_id]))
        print(f"  job {run_resp.job_id} successful")

        if ids and not CFG["keep_instance"]:
            print(f"\n4. TerminateInstances instances={','.join(ids)} (QCG_KEEP_INSTANCE=1 skips this)")
            term = unary("TerminateInstances", instances.TerminateInstances,
                         instance_pb2.TerminateInstancesRequest(**with_zone({"instances": ids})))
            print(f"  job_id={term.job_id}")
            if term.job_id:
                expect_success(watch_jobs(watch, watch_pb2, [term.job_id]))
                print(f"  job {term.job_id} successful")
    print("\nOK")


def main():
    try:
        if CFG["stubs_dir"]:
            os.makedirs(CFG["stubs_dir"], exist_ok=True)
            generate_stubs(CFG["stubs_dir"])
            run()
        else:
            with tempfile.TemporaryDirectory(prefix="qcg-stubs-") as tmp:
                generate_stubs(tmp)
                run()
    except Failure as err:
        print(f"\nFAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
