// The AWS SDK for JavaScript's own SigV4 signer (@smithy/signature-v4, with @aws-crypto/sha256-js) on the
// inputs rocks/s3/spec/sigv4_spec.lua gives on stdin (a JSON list of requests: endpoint authority, bucket, key,
// virtual-host style or not, method, query, headers, payload, region, credentials, time, expires), each
// signed as the SDK's S3 client and presigner do: its canonical request, string to sign, signature, the
// Authorization header (header auth) or the query parameters (presigned).  The path is built here from the
// bucket and key with the SDK's own escapeUri, so that the library's encoding is checked too.
"use strict";
const { SignatureV4, getCanonicalHeaders, prepareRequest, ALGORITHM_IDENTIFIER, createScope } =
  require("@smithy/signature-v4");
const { HttpRequest, escapeUri } = require("@smithy/core/protocols");
const { Sha256 } = require("@aws-crypto/sha256-js");

const longDate = (t) => new Date(t * 1000).toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");

async function one(c) {
  const host = c.virtual ? `${c.bucket}.${c.authority}` : c.authority;
  const keyPath = c.key.split("/").map(escapeUri).join("/");
  const path = (c.virtual ? "" : `/${c.bucket}`) + `/${keyPath}`;
  const signer = new SignatureV4({
    credentials: { accessKeyId: c.access_key, secretAccessKey: c.secret_key, sessionToken: c.session_token },
    region: c.region, service: "s3", sha256: Sha256, uriEscapePath: false, applyChecksum: true,
  });
  const date = longDate(c.time);
  const scope = createScope(date.slice(0, 8), c.region, "s3");
  const headers = Object.assign({ host }, c.headers, { "x-amz-content-sha256": c.payload });
  const request = new HttpRequest({ method: c.method, protocol: "http:", hostname: host, path,
    query: Object.assign({}, c.query), headers });
  if (c.expires) {
    const signed = await signer.presign(request, { signingDate: new Date(c.time * 1000), expiresIn: c.expires });
    const canonical = signer.createCanonicalRequest(signed, getCanonicalHeaders(signed), c.payload);
    return { canonical, string_to_sign: await signer.createStringToSign(date, scope, canonical, ALGORITHM_IDENTIFIER),
      signature: signed.query["X-Amz-Signature"], query: signed.query, path };
  }
  const signed = await signer.sign(request, { signingDate: new Date(c.time * 1000) });
  const prepared = prepareRequest(request);
  prepared.headers["x-amz-date"] = date;
  if (c.session_token) prepared.headers["x-amz-security-token"] = c.session_token;
  const canonical = signer.createCanonicalRequest(prepared, getCanonicalHeaders(prepared), c.payload);
  return { canonical, string_to_sign: await signer.createStringToSign(date, scope, canonical, ALGORITHM_IDENTIFIER),
    signature: signed.headers.authorization.replace(/^.*Signature=/, ""), authorization: signed.headers.authorization,
    token: signed.headers["x-amz-security-token"], path };
}

let input = "";
process.stdin.setEncoding("utf8"); // (each chunk a Buffer turned into a string alone: a character cut between two
// 64 KiB chunks read as two U+FFFD, where cjson's key order put one there)
process.stdin.on("data", (d) => { input += d; });
process.stdin.on("end", async () => {
  const out = [];
  for (const c of JSON.parse(input)) out.push(await one(c));
  process.stdout.write(JSON.stringify(out));
});
