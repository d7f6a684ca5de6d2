#!/usr/bin/env node
// Node.js client for qingcloud-grpc.
//
// It loads the API's .proto files at run time with @grpc/proto-loader (no code generation step), then:
//   1. InstanceService/DescribeInstances   lists running instances;
//   2. InstanceService/RunInstances        starts one instance and gets its job id;
//   3. WatchService/WatchJobs              follows that job until it is terminal (a server stream);
//   4. InstanceService/TerminateInstances  removes the instance again and watches that job too
//                                          (skipped with QCG_KEEP_INSTANCE=1).
// It exits 0 only if every call succeeded and every watched job ended "successful".
//
// Settings (environment variables; see README.md):
//   QCG_GRPC_ADDR       server address, default 127.0.0.1:9090
//   QCG_TOKEN           bearer token, sent as "authorization: Bearer <token>" (servers with caller auth)
//   QCG_TLS_CA          PEM file of the CA that signed the server certificate; setting it turns TLS on
//   QCG_TLS             "1" turns TLS on with the system's root CAs
//   QCG_PROTO_PATH      folder holding qingcloud/iaas/v1/*.proto, default ../../proto
//   QCG_GOOGLEAPIS_PATH folder holding google/api/*.proto, default ../../.tools/protos/googleapis
//   QCG_ZONE            zone for every request; the server's default zone when unset
//   QCG_IMAGE_ID, QCG_INSTANCE_TYPE, QCG_VXNET, QCG_LOGIN_PASSWD
//                       what RunInstances starts; defaults suit the built-in emulator
//   QCG_WATCH_TIMEOUT   seconds to wait for a job, default 120
//   QCG_KEEP_INSTANCE   "1" keeps the instance (no TerminateInstances)
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const env = (name, dflt) => (process.env[name] !== undefined && process.env[name] !== '' ? process.env[name] : dflt);
const repo = path.resolve(__dirname, '..', '..');

const cfg = {
  addr: env('QCG_GRPC_ADDR', '127.0.0.1:9090'),
  token: env('QCG_TOKEN', ''),
  tlsCA: env('QCG_TLS_CA', ''),
  tls: env('QCG_TLS', '') === '1',
  protoPath: env('QCG_PROTO_PATH', path.join(repo, 'proto')),
  googleapisPath: env('QCG_GOOGLEAPIS_PATH', path.join(repo, '.tools', 'protos', 'googleapis')),
  zone: env('QCG_ZONE', ''),
  imageId: env('QCG_IMAGE_ID', 'centos7x64d'),
  instanceType: env('QCG_INSTANCE_TYPE', 'c1m1'),
  vxnet: env('QCG_VXNET', 'vxnet-0'),
  loginPasswd: env('QCG_LOGIN_PASSWD', 'Passw0rd1'),
  watchTimeoutMs: Number(env('QCG_WATCH_TIMEOUT', '120')) * 1000,
  keepInstance: env('QCG_KEEP_INSTANCE', '') === '1',
};
const UNARY_TIMEOUT_MS = 30 * 1000;

// loadAPI parses the three service files we call (and what they import) into grpc-js service constructors.
function loadAPI() {
  for (const [what, dir, file] of [
    ['QCG_PROTO_PATH', cfg.protoPath, 'qingcloud/iaas/v1/instance.proto'],
    ['QCG_GOOGLEAPIS_PATH', cfg.googleapisPath, 'google/api/annotations.proto'],
  ]) {
    if (!fs.existsSync(path.join(dir, file))) {
      throw new Error(`${path.join(dir, file)} not found: set ${what} (google/api protos come from "bash scripts/tools.sh")`);
    }
  }
  const definition = protoLoader.loadSync(
    ['qingcloud/iaas/v1/instance.proto', 'qingcloud/iaas/v1/job.proto', 'qingcloud/iaas/v1/watch.proto'],
    {
      includeDirs: [cfg.protoPath, cfg.googleapisPath],
      keepCase: true, // QingCloud's own snake_case field names: instance_set, job_id, total_count
      longs: String, // int64 fields (memory, sizes) as decimal strings, like the REST API
      enums: String,
      defaults: false, // proto3 optional: unset fields stay absent instead of becoming 0 or ""
      oneofs: true, // WatchJobsResponse.event says which of job / notice is set
    },
  );
  const v1 = grpc.loadPackageDefinition(definition).qingcloud.iaas.v1;
  return { InstanceService: v1.InstanceService, JobService: v1.JobService, WatchService: v1.WatchService };
}

function channelCredentials() {
  if (cfg.tlsCA) return grpc.credentials.createSsl(fs.readFileSync(cfg.tlsCA));
  if (cfg.tls) return grpc.credentials.createSsl();
  return grpc.credentials.createInsecure();
}

// metadata carries the bearer token when one is configured. It is sent per call (not as channel call
// credentials) so that it also works on plaintext loopback connections.
function metadata() {
  const md = new grpc.Metadata();
  if (cfg.token) md.set('authorization', `Bearer ${cfg.token}`);
  return md;
}

// withZone adds the zone to a request when QCG_ZONE is set; otherwise the server's default zone applies.
const withZone = (req) => (cfg.zone ? { ...req, zone: cfg.zone } : req);

// unary wraps a callback-style unary call in a Promise with a deadline.
function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + UNARY_TIMEOUT_MS);
    client[method](request, metadata(), { deadline }, (err, response) => {
      if (err) reject(annotate(err, method));
      else resolve(response);
    });
  });
}

// annotate prefixes a gRPC error with the method and adds the QingCloud ErrorInfo reason when present.
function annotate(err, method) {
  const code = err.code !== undefined ? grpc.status[err.code] : 'UNKNOWN';
  let msg = `${method}: ${code}: ${err.details || err.message}`;
  if (err.code === grpc.status.UNIMPLEMENTED) {
    msg += ' (this server does not implement the method; update the server)';
  }
  if (err.code === grpc.status.UNAUTHENTICATED) {
    msg += ' (set QCG_TOKEN to a bearer token configured on the server)';
  }
  const e = new Error(msg);
  e.grpcCode = err.code;
  return e;
}

// watchJobs follows jobs over the WatchJobs server stream. It resolves with the final JobEvent of each
// job once the server ends the stream (it does so when every job is terminal), and rejects on a stream
// error, on the deadline, or if the stream ends with a job that is not terminal.
function watchJobs(watch, jobIds) {
  return new Promise((resolve, reject) => {
    const last = new Map();
    const deadline = new Date(Date.now() + cfg.watchTimeoutMs);
    const call = watch.WatchJobs(withZone({ job_ids: jobIds }), metadata(), { deadline });
    call.on('data', (msg) => {
      if (msg.event === 'notice') {
        console.log(`  notice: polling slowed down (${msg.notice.reason}); next poll ${fmtTime(msg.notice.next_poll_time)}`);
        return;
      }
      const ev = msg.job;
      const job = ev.job || {};
      last.set(job.job_id, ev);
      const flags = [ev.terminal ? 'terminal' : '', ev.failed ? 'FAILED' : ''].filter(Boolean).join(' ');
      console.log(`  ${job.job_id} ${job.job_action || ''} status=${job.status}${flags ? ' [' + flags + ']' : ''}` +
        ` resources=${job.resource_ids || '-'} at ${fmtTime(job.status_time)}` +
        (ev.failure_message ? ` failure: ${ev.failure_message}` : ''));
    });
    call.on('error', (err) => reject(annotate(err, 'WatchJobs')));
    call.on('end', () => {
      const open = jobIds.filter((id) => !(last.get(id) && last.get(id).terminal));
      if (open.length) reject(new Error(`WatchJobs: stream ended before job(s) ${open.join(', ')} were terminal`));
      else resolve(jobIds.map((id) => last.get(id)));
    });
  });
}

// expectSuccess fails unless every final job event is terminal, not failed, and "successful".
function expectSuccess(events) {
  for (const ev of events) {
    if (ev.failed || ev.job.status !== 'successful') {
      throw new Error(`job ${ev.job.job_id} ended ${ev.job.status}${ev.failure_message ? ': ' + ev.failure_message : ''}`);
    }
  }
}

function fmtTime(ts) {
  if (!ts || ts.seconds === undefined) return '-';
  return new Date(Number(ts.seconds) * 1000 + Math.floor((ts.nanos || 0) / 1e6)).toISOString();
}

async function main() {
  const api = loadAPI();
  const creds = channelCredentials();
  // One channel, shared by the three service stubs.
  const instances = new api.InstanceService(cfg.addr, creds);
  const watch = new api.WatchService(cfg.addr, creds, { channelOverride: instances.getChannel() });
  console.log(`qingcloud-grpc Node.js example: server ${cfg.addr}${cfg.tls || cfg.tlsCA ? ' (TLS)' : ''}`);

  console.log('\n1. DescribeInstances status=running');
  const described = await unary(instances, 'DescribeInstances', withZone({ status: ['running'], limit: 10 }));
  console.log(`  total_count=${described.total_count || 0}`);
  for (const i of described.instance_set || []) {
    console.log(`  ${i.instance_id} ${i.instance_name || ''} ${i.instance_type || ''} ${i.status}`);
  }

  console.log(`\n2. RunInstances image_id=${cfg.imageId} instance_type=${cfg.instanceType} vxnets=${cfg.vxnet}`);
  const run = await unary(instances, 'RunInstances', withZone({
    image_id: cfg.imageId,
    instance_type: cfg.instanceType,
    instance_name: 'qingcloud-grpc-example-node',
    login_mode: 'passwd',
    login_passwd: cfg.loginPasswd,
    vxnets: [cfg.vxnet],
  }));
  const ids = run.instances || [];
  console.log(`  job_id=${run.job_id} instances=${ids.join(',')}`);
  if (!run.job_id) throw new Error('RunInstances returned no job_id');

  console.log(`\n3. WatchJobs job_ids=${run.job_id}`);
  expectSuccess(await watchJobs(watch, [run.job_id]));
  console.log(`  job ${run.job_id} successful`);

  if (ids.length && !cfg.keepInstance) {
    console.log(`\n4. TerminateInstances instances=${ids.join(',')} (QCG_KEEP_INSTANCE=1 skips this)`);
    const term = await unary(instances, 'TerminateInstances', withZone({ instances: ids }));
    console.log(`  job_id=${term.job_id}`);
    if (term.job_id) {
      expectSuccess(await watchJobs(watch, [term.job_id]));
      console.log(`  job ${term.job_id} successful`);
    }
  }
  instances.close();
  console.log('\nOK');
}

main().catch((err) => {
  console.error(`\nFAILED: ${err.message}`);
  process.exit(1);
});
