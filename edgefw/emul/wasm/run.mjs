// Run edgefw code on MicroPython compiled to wasm32 (a 32-bit port: small
// integers are 31-bit, as on an ESP32), under node.
//
//   node edgefw/emul/wasm/run.mjs --package DIR [--root DIR] [--share DIR]...
//        [--heap BYTES] [--timeout SECONDS] [--step]
//        (-m MODULE | -c CODE | SCRIPT) [ARGS...]
//
// DIR is the installed @micropython/micropython-webassembly-pyscript
// package (edgefw/emul/wasm32.py installs it). The port has no host filesystem,
// so the tree under --root (default: the current directory) is copied into
// its in-memory one at the same path, which becomes the working directory;
// each --share directory is copied in the same way, and the files the run
// wrote there are copied back out when it ends.
// prelude.py (beside this file) supplies what the port lacks. MicroPython
// runs in a worker thread so that a run that never returns is stopped at
// --timeout (exit status 124). --step: see prelude.py.

import fs from "node:fs";
import path from "node:path";
import url from "node:url";
import crypto from "node:crypto";
import { Worker, isMainThread, workerData } from "node:worker_threads";

const SKIP = new Set([".git", "__pycache__", "node_modules", ".venv", ".venv-tflite", ".pytest_cache", ".ruff_cache"]);
const MAX_FILE = 4 * 1024 * 1024;

function parseArgs(argv) {
  const o = { root: process.cwd(), share: [], step: false, heap: 8 * 1024 * 1024, timeout: 600, pkg: null, kind: null, target: null, args: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--package") o.pkg = argv[++i];
    else if (a === "--root") o.root = argv[++i];
    else if (a === "--share") o.share.push(path.resolve(argv[++i]));
    else if (a === "--heap") o.heap = Number(argv[++i]);
    else if (a === "--timeout") o.timeout = Number(argv[++i]);
    else if (a === "--step") o.step = true;
    else if (a === "-m" || a === "-c") { o.kind = a; o.target = argv[++i]; i++; break; }
    else { o.kind = "file"; o.target = a; i++; break; }
  }
  o.args = argv.slice(i);
  if (!o.pkg || !o.kind || !o.target) {
    process.stderr.write("usage: run.mjs --package DIR [--root DIR] [--heap BYTES] [--timeout S] (-m MODULE | -c CODE | SCRIPT) [ARGS...]\n");
    process.exit(2);
  }
  o.root = path.resolve(o.root);
  return o;
}

function copyTree(FS, src, dst) {
  FS.mkdirTree(dst);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    if (SKIP.has(ent.name)) continue;
    const s = path.join(src, ent.name);
    const d = dst + "/" + ent.name;
    if (ent.isDirectory()) copyTree(FS, s, d);
    else if (ent.isFile() && fs.statSync(s).size <= MAX_FILE) FS.writeFile(d, fs.readFileSync(s));
  }
}

function copyBack(FS, dir) {
  for (const name of FS.readdir(dir)) {
    if (name === "." || name === "..") continue;
    const p = dir + "/" + name;
    const st = FS.stat(p);
    if (FS.isDir(st.mode)) {
      fs.mkdirSync(p, { recursive: true });
      copyBack(FS, p);
    } else if (FS.isFile(st.mode)) {
      const data = FS.readFile(p);
      if (!fs.existsSync(p) || !fs.readFileSync(p).equals(Buffer.from(data))) fs.writeFileSync(p, data);
    }
  }
}

async function work(o) {
  const out = (fd) => (line) => fs.writeSync(fd, line + "\n");
  const pkgUrl = url.pathToFileURL(path.join(o.pkg, "micropython.mjs")).href;
  const { loadMicroPython } = await import(pkgUrl);
  const mp = await loadMicroPython({ heapsize: o.heap, stdout: out(1), stderr: out(2) });
  copyTree(mp.FS, o.root, o.root);
  for (const d of o.share) if (fs.existsSync(d)) copyTree(mp.FS, d, d);
  const tmp = process.env.TMPDIR || "/tmp";
  mp.FS.mkdirTree(tmp);
  const here = path.dirname(url.fileURLToPath(import.meta.url));
  mp.runPython(fs.readFileSync(path.join(here, "prelude.py"), "utf8"));
  const env = Object.assign({}, process.env, { TMPDIR: tmp });
  const call = JSON.stringify({ kind: o.kind, target: o.target, argv: [o.target].concat(o.args), cwd: o.root, env: env, seed: crypto.randomInt(1 << 30) });
  // the prelude's _edgefw_run and _edgefw_step catch everything and unlock
  // the heap before returning, so nothing escapes with the heap locked
  mp.runPython("_edgefw_status = _edgefw_run(" + JSON.stringify(call) + ")");
  let code = mp.globals.get("_edgefw_status");
  while (o.step && code === 0) {
    mp.runPython("_edgefw_status = _edgefw_step()");
    const s = mp.globals.get("_edgefw_status");
    if (s !== 1) code = s === 0 ? 0 : 1;
    if (s !== 1) break;
  }
  for (const d of o.share) if (fs.existsSync(d)) copyBack(mp.FS, d);
  return typeof code === "number" ? code : 1;
}

if (isMainThread) {
  const o = parseArgs(process.argv.slice(2));
  const w = new Worker(url.fileURLToPath(import.meta.url), { workerData: o, stdout: false, stderr: false });
  const timer = setTimeout(() => {
    fs.writeSync(2, "run.mjs: timed out after " + o.timeout + " s\n");
    process.exit(124);
  }, o.timeout * 1000);
  let status = null;
  w.on("message", (code) => { status = code; });
  w.on("error", (e) => { clearTimeout(timer); fs.writeSync(2, "run.mjs: " + (e && e.stack || e) + "\n"); process.exit(1); });
  w.on("exit", () => { clearTimeout(timer); process.exit(status === null ? 1 : status); });
} else {
  const { parentPort } = await import("node:worker_threads");
  parentPort.postMessage(await work(workerData));
}
