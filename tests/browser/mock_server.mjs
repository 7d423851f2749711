// A stand-in for the relay's admin listener, for working on web/ without a relay: serves the
// console's files and made-up JSON in the shapes of docs/admin.md, behind Basic auth
// admin:secret. POST /api/v1/sync runs a pretend 8-second pass; two configs are held back, one
// waiting for an image that arrives over a minute, one for a file the origin lacks, until
// POST /api/v1/configs/release lets them go.
//   node tests/browser/mock_server.mjs [PORT]     (default 5051; 0 picks one)
// Not part of the test: console_test.sh drives the real relay.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const types = {'.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.ico': 'image/x-icon'};
const auth = 'Basic ' + Buffer.from('admin:secret').toString('base64');
const started = Math.floor(Date.now() / 1000) - 3 * 86400 - 4000;
const now = () => Math.floor(Date.now() / 1000);

const models = ['VVX_500', 'VVX_400', 'VVX_311', 'CCX_500', 'Trio_8800', 'SoundPoint_IP_550'];
const devices = Array.from({length: 24}, (_, i) => {
  const mac = '0004f2' + (0xa00000 + i * 4099).toString(16).padStart(6, '0');
  const model = models[i % models.length];
  const mismatch = i % 7 === 3;
  return {
    mac, model, firmware: mismatch ? '5.9.5.0614' : '5.9.7.47435', serial: mac.toUpperCase(),
    ip: `10.1.2.${20 + i}`, protocol: ['http', 'https', 'tftp', 'ftp'][i % 4],
    first_seen: started + i * 3600, last_seen: now() - i * 1800 - 30, last_boot: i % 5 ? now() - 86400 - i * 600 : 0,
    files_fetched: 10 + i * 3, files_failed: i % 6 === 0 ? 2 : 0, upload_bytes: i * 40960,
    expected_firmware: mismatch ? '5.9.7.47435' : '', firmware_mismatch: mismatch,
  };
});
devices.push({mac: '0004f2<b>x', model: '<img src=x onerror=alert(1)>', firmware: '"><script>alert(2)</script>',
  serial: '', ip: '10.9.9.9', protocol: 'http', first_seen: now() - 100, last_seen: now() - 50, last_boot: 0,
  files_fetched: 0, files_failed: 1, upload_bytes: 0, expected_firmware: '', firmware_mismatch: false});

const states = ['fresh', 'stale', 'pinned', 'imported', 'uploaded', 'upload-pending'];
const sources = {fresh: 'origin', stale: 'origin', pinned: 'manifest', imported: 'import', uploaded: 'upload', 'upload-pending': 'upload'};
const files = [
  ['fw/5.9.7/sip.ld', 31457280], ['fw/5.9.7/VVX500-sip.ld', 94371840], ['000000000000.cfg', 2048],
  ['site.cfg', 18211], ['0004f2a00000-phone.cfg', 812], ['0004f2a01003-web.cfg', 1433], ['dir/contacts.xml', 90112],
  ['SoundPointIPLocalization/English_United_States/SoundPointIP-dictionary.xml', 254001],
].map(([p, size], i) => {
  const state = states[i % states.length];
  return {path: p, size, sha256: (i + 1).toString(16).repeat(64).slice(0, 64), state, source: sources[state],
    modified: now() - i * 7200};
});

const sync = {configured: true, running: false, started_at: now() - 4000, finished_at: now() - 3990,
  files_total: 6, files_done: 6, files_failed: 0, bytes_total: 6000000, bytes_done: 6000000, generation: 4, result: 'ok'};
let syncStart = 0;
function syncNow() {
  if (sync.running) {
    const f = Math.min(1, (Date.now() - syncStart) / 8000);
    sync.files_done = Math.floor(f * sync.files_total);
    sync.bytes_done = Math.floor(f * sync.bytes_total);
    if (f >= 1) Object.assign(sync, {running: false, finished_at: now(), generation: sync.generation + 1, result: 'ok'});
  }
  return sync;
}

// Held-back master configs (docs/admin.md, "Held configs").
const heldSince = now() - 340;
const heldStart = Date.now();
const rate = 480000;
let released = 2;
const held = new Map([
  ['000000000000.cfg', () => {
    const total = 31457280;
    const done = Math.min(total, Math.floor(((Date.now() - heldStart) / 1000) * rate));
    return {path: '000000000000.cfg', sha256: 'c0ffee'.repeat(11).slice(0, 64), size: 2311, since: heldSince,
      reason: 'fetching 1 of 3 files it names', eta_seconds: Math.ceil((total - done) / rate),
      files: [
        {path: 'fw/5.9.8.1204/3111-44500-001.sip.ld', state: done < total ? 'fetching' : 'here',
          bytes_done: done, bytes_total: total, error: ''},
        {path: 'site.cfg', state: 'here', bytes_done: 18211, bytes_total: 18211, error: ''},
        {path: 'SoundPointIPLocalization/English_United_States/SoundPointIP-dictionary.xml', state: 'here',
          bytes_done: 254001, bytes_total: 254001, error: ''},
      ]};
  }],
  ['0004f2a01003.cfg', () => ({path: '0004f2a01003.cfg', sha256: 'ab12'.repeat(16), size: 640, since: now() - 7300,
    reason: 'fw/6.4.0/sip.ld: HTTP 404 from the origin <b>(tried again later)</b>', eta_seconds: null,
    files: [{path: 'fw/6.4.0/sip.ld', state: 'failed', bytes_done: 0, bytes_total: null,
      error: 'HTTP 404 from the origin <b>'}]})],
]);
const configs = () => ({enabled: true, held: [...held.values()].map((f) => f()), released, wan_rate: rate});

function history() {
  const bucket = 300;
  const last = Math.floor(now() / bucket) * bucket;
  const points = [];
  for (let t = last - 287 * bucket; t <= last; t += bucket) {
    const hour = new Date(t * 1000).getHours();
    if (hour < 6 && (t / bucket) % 3) continue;  // quiet night: missing buckets
    const load = Math.max(0, Math.sin(((hour - 6) / 24) * 2 * Math.PI)) + 0.05;
    const r = (k) => Math.round(load * k * (0.6 + 0.8 * Math.abs(Math.sin(t / 977))));
    points.push({t, served_bytes: r(4e8), origin_bytes: r(2.5e7),
      requests: {http: r(120), https: r(60), tftp: r(25), ftp: r(8)}});
  }
  return {bucket_seconds: bucket, now: now(), points};
}

function status(host) {
  return {
    version: '0.1.0', started, uptime_seconds: now() - started,
    listeners: [{protocol: 'http', address: '0.0.0.0:8080'}, {protocol: 'https', address: '0.0.0.0:8443'},
      {protocol: 'tftp', address: '0.0.0.0:69'}, {protocol: 'ftp', address: '0.0.0.0:21'},
      {protocol: 'admin', address: host}],
    requests: {http: {results: {200: 1234, 404: 5}, open: 3}},
    cache: {objects: 12, bytes: 734003200, entries: 15, stale_serves: 0},
    wan: {served_bytes: 9000000000, origin_bytes: 300000000, saved_bytes: 8700000000},
    origin: {configured: true, url: 'https://prov.example.com/', requests: 40, failures: 0, in_flight: 1},
    outbox: {pending: 1, sent: 3, failures: 0}, resident_bytes: 16000000, sync: syncNow(),
    log_spool: {shipping: true, unbatched_bytes: 2048, pending_batches: 2, pending_bytes: 81920, dead_batches: 0,
      shipped_lines: 150000, dropped_lines: 0},
    devices: {total: devices.length, seen_24h: 20, firmware_mismatch: devices.filter((d) => d.firmware_mismatch).length},
    tls: {handshakes: 5210, failures: 3},
  };
}

const pem = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQm9ndXMgbW9jayBjZXJ0aWZpY2F0ZTAKBggqhkjOPQQDAjAXMRUwEwYDVQQD\nDAxzaXRlcmVsYXkgQ0EwHhcNMjYwMTAxMDAwMDAwWhcNMzYwMTAxMDAwMDAwWjAXMRUwEwYDVQQDDAxz\n-----END CERTIFICATE-----\n';

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const send = (code, body, type = 'application/json') => {
    res.writeHead(code, {'Content-Type': type, 'Cache-Control': 'no-store'});
    res.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  };
  if (url.pathname === '/healthz') return send(200, 'ok\n', 'text/plain');
  if (req.headers.authorization !== auth) {
    res.writeHead(401, {'WWW-Authenticate': 'Basic realm="siterelay admin"'});
    return res.end('unauthorized\n');
  }
  const host = req.headers.host || '127.0.0.1';
  const hostname = host.replace(/:\d+$/, '');
  switch (url.pathname) {
    case '/api/v1/status': return send(200, status(host));
    case '/api/v1/devices': return send(200, devices);
    case '/api/v1/files': return send(200, files);
    case '/api/v1/history': return send(200, history());
    case '/api/v1/tools': return send(200, {
      urls: [{protocol: 'http', url: `http://${hostname}:8080/`, dhcp_option: `http://${hostname}:8080/`},
        {protocol: 'https', url: `https://${hostname}:8443/`, dhcp_option: `https://${hostname}:8443/`},
        {protocol: 'tftp', url: `tftp://${hostname}/`, dhcp_option: `tftp://${hostname}/`}],
      ca_certificate: pem, ca_snippet: `device.sec.TLS.customCaCert1="${pem}"`});
    case '/api/v1/sync':
      if (req.method === 'POST') {
        if (!sync.running) {
          syncStart = Date.now();
          Object.assign(sync, {running: true, started_at: now(), files_done: 0, bytes_done: 0});
        }
        return send(202, syncNow());
      }
      return send(200, syncNow());
    case '/api/v1/configs': return send(200, configs());
    case '/api/v1/configs/release': {
      if (req.method !== 'POST') return send(405, {error: 'POST only'});
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        let p;
        try { p = JSON.parse(body).path; } catch (e) { p = undefined; }
        if (typeof p !== 'string' || !p) return send(400, {error: 'the body has no "path" string'});
        if (!held.delete(p)) return send(404, {error: `${p} is not held back`});
        released++;
        send(200, configs());
      });
      return;
    }
  }
  const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
  if (!/^[\w.-]+$/.test(name)) return send(404, 'not found\n', 'text/plain');
  fs.readFile(path.join(webDir, name), (err, data) => {
    if (err) return send(404, 'not found\n', 'text/plain');
    send(200, data, types[path.extname(name)] || 'application/octet-stream');
  });
});
server.listen(Number(process.argv[2] ?? 5051), '127.0.0.1', () => {
  console.log(`mock admin listener: http://admin:secret@127.0.0.1:${server.address().port}/`);
});
