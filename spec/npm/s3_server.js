// An S3-compatible server for the storage specs: s3rver 3.7.1 (which checks only that an access key exists),
// behind a proxy of the specs' own that checks every request's SigV4 with the AWS SDK's own signer
// (@smithy/signature-v4), its payload against x-amz-content-sha256, Content-MD5 and x-amz-checksum-sha256,
// and logs each (a JSON line: method, path, query, status, bytes, part, signature).  A presigned URL (query
// auth, X-Amz-Signature) is checked the same way with the signer's presign, and refused once it has expired.  s3rver 3.7.1 has no
// AbortMultipartUpload nor ListMultipartUploads: the proxy answers them from s3rver's own folder of uploads, and a
// CompleteMultipartUpload of an upload not there with S3's 404 NoSuchUpload (s3rver's is a 500).  Each of those three
// asked of a bucket s3rver does not hold is answered as S3 answers it: 404 NoSuchBucket (the client's question before
// a create is a ListMultipartUploads: a bucket that does not exist is refused then, nothing paid).
// With --refuse-checksums it refuses any x-amz-checksum-* header, as R2 and B2 did in 2025.
// With --faults FILE, the faults that file names (JSON: name -> how many times more; a spec writes it, the proxy
// counts each down as it acts) are done to the requests they fit, as S3 or a hostile network may:
//   complete_error: a CompleteMultipartUpload done, then answered 200 with an <Error> body (S3's way)
//   complete_undone: a CompleteMultipartUpload not done, answered 200 with an <Error> body
//   copy_error: the copy that sets an object's metadata not done, answered 200 with an <Error> body
//   etag: an UploadPart done, answered with an ETag that is not its bytes' MD5
//   hold_journal: an UploadPart held until `flock` holds the journal the file names ("journal") for "hold" s, so
//     that the client's record of that part waits (its writer takes the journal's flock)
//   kill_at_copy: when the copy that sets an object's metadata arrives, the process whose pid the file "pid_file"
//     holds is killed (SIGKILL) and the copy not forwarded (a kill between the complete and the copy)
//   kill_at_part: when a part of that number ("part") arrives, the process whose pid the file "pid_file" holds is
//     killed (SIGKILL) and the part not forwarded
//   slow_part: the part of that number ("part") answered "delay" s late (a store slow to take it)
// When the file names a "journal", each UploadPart's log line says how many parts that journal's last upload
// record held when the request arrived (journal_parts).
//   node s3_server.js --dir DIR --log FILE [--bucket NAME]... [--refuse-checksums] [--faults FILE]
// prints {"port": <the proxy's>, "s3rver": <s3rver's>} once both listen (ports chosen by the system).
"use strict";
const args = process.argv.slice(2);
// Its options checked before anything starts: --help prints the usage and exits; an unknown option, one
// without its value, or no --dir or --log is refused, naming it (usage on stderr, status 2).
const USAGE = `usage: node spec/npm/s3_server.js --dir DIR --log FILE [--bucket NAME]... [--refuse-checksums]
                                   [--faults FILE]
An S3-compatible server for trying s3:// outs and the storage specs: s3rver keeping its buckets in DIR,
behind a proxy that checks every request's SigV4 signature (key S3RVER, secret S3RVER) and logs each as a
JSON line to FILE. Prints {"port": PORT, "s3rver": ...} once it listens (ports chosen by the system), then
serves until it is killed.
  --dir DIR            the folder s3rver keeps its buckets in
  --log FILE           each request's log line is appended here
  --bucket NAME        a bucket made at start (repeatable)
  --refuse-checksums   refuse any x-amz-checksum-* header (as R2 and B2 did in 2025)
  --faults FILE        the faults to act, read from that JSON file (see the head of this file)
  -h, --help           print this and exit
`;
{
  const VALUED = { "--dir": true, "--log": true, "--bucket": true, "--faults": true };
  const refuseArgs = (why) => { process.stderr.write(`s3_server.js: ${why}\n${USAGE}`); process.exit(2); };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") { process.stdout.write(USAGE); process.exit(0); }
    if (VALUED[a]) {
      if (args[i + 1] === undefined || args[i + 1].startsWith("--")) refuseArgs(`${a} needs a value`);
      i++;
    } else if (a !== "--refuse-checksums") {
      refuseArgs(`unknown option ${a}`);
    }
  }
  if (!args.includes("--dir")) refuseArgs("--dir DIR is required");
  if (!args.includes("--log")) refuseArgs("--log FILE is required");
}
const http = require("http");
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const S3rver = require("s3rver");
const { SignatureV4 } = require("@smithy/signature-v4");
const { HttpRequest } = require("@smithy/core/protocols");
const { Sha256 } = require("@aws-crypto/sha256-js");

const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const dir = opt("--dir"), logFile = opt("--log"), refuse = args.includes("--refuse-checksums");
const faultsFile = opt("--faults");
const buckets = args.filter((a, i) => args[i - 1] === "--bucket");
const SECRETS = { S3RVER: "S3RVER" }; // s3rver's own default key

const log = (e) => fs.appendFileSync(logFile, JSON.stringify(e) + "\n");
const xmlError = (res, status, code, message) => {
  res.writeHead(status, { "Content-Type": "application/xml" });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
  return status;
};

function queryOf(raw) {
  const q = {};
  for (const pair of (raw || "").split("&")) {
    if (!pair) continue;
    const i = pair.indexOf("=");
    q[decodeURIComponent(i < 0 ? pair : pair.slice(0, i))] = i < 0 ? "" : decodeURIComponent(pair.slice(i + 1));
  }
  return q;
}

// Whether a presigned URL's signature is the one the SDK's signer presigns of what arrived (and is not expired).
const QUERY_AUTH = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
  "X-Amz-Signature", "X-Amz-Security-Token"];
async function presignedOk(req, rawPath, query) {
  const m = /^([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request$/.exec(query["X-Amz-Credential"] || "");
  const d = query["X-Amz-Date"] || "", expires = Number(query["X-Amz-Expires"]);
  if (!m || !SECRETS[m[1]] || query["X-Amz-Algorithm"] !== "AWS4-HMAC-SHA256" || !/^\d{8}T\d{6}Z$/.test(d)) return false;
  const date = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`);
  if (!(expires > 0) || Date.now() > date.getTime() + expires * 1000) return "expired";
  const rest = {}, headers = {};
  for (const name of (query["X-Amz-SignedHeaders"] || "").split(";")) headers[name] = req.headers[name];
  for (const [k, v] of Object.entries(query)) {
    if (k === "x-amz-content-sha256") headers[k] = v; // (the signer hoists it back into the query)
    else if (!QUERY_AUTH.includes(k)) rest[k] = v;
  }
  const signer = new SignatureV4({ credentials: { accessKeyId: m[1], secretAccessKey: SECRETS[m[1]],
    sessionToken: query["X-Amz-Security-Token"] }, region: m[3], service: "s3", sha256: Sha256, uriEscapePath: false });
  const signed = await signer.presign(new HttpRequest({ method: req.method, hostname: headers.host, path: rawPath,
    query: rest, headers }), { signingDate: date, expiresIn: expires });
  return signed.query["X-Amz-Signature"] === query["X-Amz-Signature"];
}

// Whether the request's SigV4 is the one the SDK's signer makes of what arrived.
async function signatureOk(req, rawPath, query) {
  if (query["X-Amz-Signature"] !== undefined) return presignedOk(req, rawPath, query);
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/
    .exec(req.headers.authorization || "");
  if (!m || !SECRETS[m[1]]) return false;
  const headers = {};
  for (const name of m[4].split(";")) headers[name] = req.headers[name];
  if (!headers.host || !headers["x-amz-date"]) return false;
  const d = headers["x-amz-date"];
  const date = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`);
  const signer = new SignatureV4({ credentials: { accessKeyId: m[1], secretAccessKey: SECRETS[m[1]],
    sessionToken: headers["x-amz-security-token"] }, region: m[3], service: "s3", sha256: Sha256, uriEscapePath: false });
  const signed = await signer.sign(new HttpRequest({ method: req.method, hostname: headers.host, path: rawPath, query,
    headers }), { signingDate: date });
  return signed.headers.authorization === req.headers.authorization;
}

// What the body must be by the headers that name its digest: null when it is, else why not.
function payloadWrong(req, body) {
  const h = req.headers, sha = crypto.createHash("sha256").update(body);
  const sum = h["x-amz-content-sha256"];
  if (sum && sum !== "UNSIGNED-PAYLOAD" && sum !== sha.copy().digest("hex")) return "XAmzContentSHA256Mismatch";
  if (h["content-md5"] && h["content-md5"] !== crypto.createHash("md5").update(body).digest("base64")) return "BadDigest";
  if (h["x-amz-checksum-sha256"] && h["x-amz-checksum-sha256"] !== sha.digest("base64")) return "BadDigest";
  return null;
}

// s3rver's folder of a bucket's uploads (its FilesystemStore's layout).
const uploadsOf = (bucket) => path.join(dir, bucket, "._S3rver_uploads");

// Whether s3rver holds the bucket (its FilesystemStore's folder of it; a name S3 could not give, never).
const bucketThere = (bucket) => /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !bucket.includes("..")
  && fs.existsSync(path.join(dir, bucket)) && fs.statSync(path.join(dir, bucket)).isDirectory();

// Whether the proxy answers the request itself (s3rver lacks it, or answers it otherwise than S3): an abort, a
// complete, a listing of the uploads.
const proxied = (req, query) => (req.method === "DELETE" && query.uploadId !== undefined)
  || (req.method === "POST" && query.uploadId !== undefined) || (req.method === "GET" && query.uploads !== undefined);

const uploadThere = (bucket, uploadId) => /^[0-9a-f]+$/.test(uploadId)
  && fs.existsSync(path.join(uploadsOf(bucket), uploadId));

function abort(res, bucket, uploadId) {
  const p = path.join(uploadsOf(bucket), uploadId);
  if (!uploadThere(bucket, uploadId)) return xmlError(res, 404, "NoSuchUpload", "no such upload");
  fs.rmSync(p, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
  return 204;
}

function listUploads(res, bucket, prefix) {
  const items = [];
  for (const id of fs.existsSync(uploadsOf(bucket)) ? fs.readdirSync(uploadsOf(bucket)) : []) {
    const keyFile = path.join(uploadsOf(bucket), id, "key");
    const key = fs.readFileSync(keyFile, "utf8");
    // Initiated: the time s3rver wrote the upload's key file (a spec ages an upload by setting it back)
    const initiated = fs.statSync(keyFile).mtime.toISOString();
    if (key.startsWith(prefix || "")) {
      items.push(`<Upload><Key>${key}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated></Upload>`);
    }
  }
  res.writeHead(200, { "Content-Type": "application/xml" });
  res.end(`<ListMultipartUploadsResult><Bucket>${bucket}</Bucket>${items.join("")}</ListMultipartUploadsResult>`);
  return 200;
}

// The fault of the file that fits request e (one of names), counted down: its name, or undefined.
function fault(e, names) {
  if (!faultsFile || !fs.existsSync(faultsFile)) return undefined;
  const faults = JSON.parse(fs.readFileSync(faultsFile, "utf8") || "{}");
  const name = names.find((n) => faults[n] > 0 && ((n !== "kill_at_part" && n !== "slow_part") || e.part === faults.part));
  if (!name) return undefined;
  faults[name] -= 1;
  fs.writeFileSync(faultsFile, JSON.stringify(faults));
  e.fault = name;
  return name;
}

// The faults file's contents ({} without one).
const faultsNow = () => (faultsFile && fs.existsSync(faultsFile) ? JSON.parse(fs.readFileSync(faultsFile, "utf8") || "{}")
  : {});

// How many parts the last upload record of journal holds (storage/object.lua's state, a JSON text).
function journalParts(journal) {
  let n = 0;
  for (const line of (fs.existsSync(journal) ? fs.readFileSync(journal, "utf8") : "").split("\n")) {
    if (!line.includes('"event":"upload"')) continue;
    try { const up = JSON.parse(JSON.parse(line).upload); n = up && Array.isArray(up.parts) ? up.parts.length : 0; } catch (_) { n = 0; }
  }
  return n;
}

// Until `flock` holds path, for seconds: resolved once it does.
function holdLock(path, seconds) {
  return new Promise((resolve) => {
    const p = require("child_process").spawn("flock", ["-x", path, "-c", `echo held; sleep ${seconds}`],
      { stdio: ["ignore", "pipe", "ignore"] });
    p.stdout.once("data", () => resolve());
    p.on("exit", () => resolve());
  });
}

// The faults a request may meet (its kind: a complete, a copy, a part).
function faultsOf(req, query) {
  if (req.method === "POST" && query.uploadId !== undefined) return ["complete_error", "complete_undone"];
  if (req.method === "PUT" && req.headers["x-amz-copy-source"]) return ["copy_error", "kill_at_copy"];
  if (req.method === "PUT" && query.partNumber !== undefined) return ["etag", "hold_journal", "kill_at_part", "slow_part"];
  return [];
}

const error200Body = (what) => `<?xml version="1.0" encoding="UTF-8"?>\n\n<Error><Code>InternalError</Code>`
  + `<Message>We encountered an internal error (${what}). Please try again.</Message></Error>`;
const error200 = (res, what) => {
  res.writeHead(200, { "Content-Type": "application/xml" });
  res.end(error200Body(what));
  return 200;
};

// alter (a fault's): the answer's status, headers and body rewritten before they go back (the body read whole).
function forward(req, res, body, target, alter) {
  return new Promise((resolve) => {
    // agent: false, a connection of its own: Node 20's global agent keeps connections alive, and one s3rver closed
    // while a long body came in (its keep-alive timeout, 5 s) failed the request forwarded on it (a 502 to curl -T)
    const up = http.request({ host: "127.0.0.1", port: target, method: req.method, path: req.url, headers: req.headers,
      agent: false },
      (answer) => {
        if (alter) {
          const chunks = [];
          answer.on("data", (c) => chunks.push(c));
          answer.on("end", () => {
            const a = alter(answer.statusCode, { ...answer.headers }, Buffer.concat(chunks));
            res.writeHead(a.status, a.headers);
            res.end(a.body);
            resolve(a.status);
          });
          return;
        }
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
        answer.on("end", () => resolve(answer.statusCode));
      });
    up.on("error", () => resolve(xmlError(res, 502, "BadGateway", "s3rver did not answer")));
    up.end(body);
  });
}

// The request forwarded to s3rver, with the fault named (or none) done to it.
async function faulty(req, res, body, target, name) {
  if (name === "complete_undone" || name === "copy_error") return error200(res, name);
  const f = name ? faultsNow() : {};
  if (name === "hold_journal") await holdLock(f.journal, f.hold || 1);
  if (name === "slow_part") await new Promise((resolve) => setTimeout(resolve, (f.delay || 1) * 1000));
  if (name === "kill_at_part" || name === "kill_at_copy") {
    process.kill(Number(fs.readFileSync(f.pid_file, "utf8")), "SIGKILL");
    res.destroy();
    return "killed";
  }
  if (name === "complete_error") {
    return forward(req, res, body, target, (status, headers, got) => {
      if (status !== 200) return { status, headers, body: got }; // (a complete that failed: as it was)
      return { status, headers: { "content-type": "application/xml" }, body: error200Body(name) };
    });
  }
  if (name === "etag") {
    return forward(req, res, body, target, (status, headers, got) => {
      headers.etag = '"' + crypto.createHash("md5").update("not the part's bytes").digest("hex") + '"';
      return { status, headers, body: got };
    });
  }
  return forward(req, res, body, target);
}

async function handle(req, res, body, target) {
  const [rawPath, rawQuery] = req.url.split("?");
  const query = queryOf(rawQuery);
  const bucket = decodeURIComponent(rawPath.split("/")[1] || "");
  const e = { method: req.method, path: decodeURIComponent(rawPath), query, bytes: body.length,
    part: query.partNumber ? Number(query.partNumber) : undefined, at: Date.now() / 1000 };
  const journal = e.part !== undefined && faultsNow().journal;
  if (journal) e.journal_parts = journalParts(journal);
  const verdict = await signatureOk(req, rawPath, query);
  e.signature = verdict === true ? "ok" : verdict || "bad";
  e.presigned = query["X-Amz-Signature"] !== undefined || undefined;
  const checksums = Object.keys(req.headers).filter((n) => n.startsWith("x-amz-checksum-"));
  const wrong = payloadWrong(req, body);
  if (e.signature === "expired") e.status = xmlError(res, 403, "AccessDenied", "Request has expired");
  else if (e.signature !== "ok") e.status = xmlError(res, 403, "SignatureDoesNotMatch", "the SigV4 signature does not match");
  else if (refuse && checksums.length) e.status = xmlError(res, 400, "InvalidArgument", `${checksums[0]} is not supported`);
  else if (wrong) e.status = xmlError(res, 400, wrong, "the body does not match its digest");
  else if (proxied(req, query) && !bucketThere(bucket)) {
    e.status = xmlError(res, 404, "NoSuchBucket", "The specified bucket does not exist"); // (S3's answer)
  }
  else if (req.method === "DELETE" && query.uploadId !== undefined) e.status = abort(res, bucket, query.uploadId);
  else if (req.method === "POST" && query.uploadId !== undefined && !uploadThere(bucket, query.uploadId)) {
    e.status = xmlError(res, 404, "NoSuchUpload", "no such upload"); // (as S3 answers; s3rver: a 500)
  }
  else if (req.method === "GET" && query.uploads !== undefined) e.status = listUploads(res, bucket, query.prefix);
  else e.status = await faulty(req, res, body, target, fault(e, faultsOf(req, query)));
  log(e);
}

(async () => {
  const server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir,
    configureBuckets: buckets.map((name) => ({ name })) });
  const { port: target } = await server.run();
  const proxy = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks), target).catch((err) => {
      log({ method: req.method, path: req.url, error: String(err) });
      if (!res.headersSent) xmlError(res, 500, "InternalError", "the specs' proxy failed");
    }));
  });
  proxy.listen(0, "127.0.0.1", () => {
    process.stdout.write(JSON.stringify({ port: proxy.address().port, s3rver: target }) + "\n");
  });
})();
