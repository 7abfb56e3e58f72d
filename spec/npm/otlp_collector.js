// An OTLP/HTTP collector for the specs (rocks/observe/spec/hosts/observe_trace_spec.lua, observe_nginx_spec.lua): each POST's
// JSON body decoded with OpenTelemetry's own OTLP definitions (the protobuf messages of
// @opentelemetry/otlp-transformer: ExportTraceServiceRequest), as the OTLP/HTTP JSON encoding says (ids as hex,
// 64-bit integers as strings), round-tripped through the protobuf wire format, and compared with what was
// sent: a field the definitions do not know, or a value of the wrong type, fails the export (400) and is
// written as {"error": ...}.  Each span decoded is one line of OUT: {trace, id, parent, name, kind, start, end,
// attrs, status, resource}.
//   node collector.js PORTFILE OUT [silent]     (port 0: the system picks; written to PORTFILE once listening)
// silent: every connection is accepted and read, and never answered (a collector that hangs).
"use strict";
const http = require("http");
const fs = require("fs");
const root = require("@opentelemetry/otlp-transformer/build/src/generated/root");
const semconv = require("@opentelemetry/semantic-conventions");

const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const [portFile, out, mode] = process.argv.slice(2);

const Long = require("protobufjs/minimal").util.Long;
const ID = new Set(["traceId", "spanId", "parentSpanId"]);
// the 64-bit integers, which the JSON encoding writes as decimal strings
const INT64 = { startTimeUnixNano: true, endTimeUnixNano: true, timeUnixNano: true, intValue: false };

// OTLP JSON -> protobufjs's object form: hex ids as base64 (the JSON encoding's one difference).
function toProto(v, key) {
  if (Array.isArray(v)) return v.map((x) => toProto(x, key));
  if (v && typeof v === "object") {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = toProto(x, k);
    return o;
  }
  if (ID.has(key)) {
    if (typeof v !== "string" || !/^[0-9a-f]*$/.test(v)) throw new Error(`${key}: not lowercase hex: ${v}`);
    return Buffer.from(v, "hex").toString("base64");
  }
  if (key in INT64 && typeof v === "string") {
    if (!/^-?[0-9]+$/.test(v)) throw new Error(`${key}: not a decimal integer: ${v}`);
    return Long.fromString(v, INT64[key]);
  }
  return v;
}

// Every field sent must come back from the protobuf round trip with the same value.
function same(sent, got, path) {
  if (Long.isLong(sent)) sent = sent.toString();
  if (Array.isArray(sent)) {
    if (!Array.isArray(got) || got.length !== sent.length) throw new Error(`${path}: a list of ${sent.length} lost`);
    sent.forEach((x, i) => same(x, got[i], `${path}[${i}]`));
    return;
  }
  if (sent && typeof sent === "object") {
    for (const [k, x] of Object.entries(sent)) {
      if (!(k in (got || {}))) throw new Error(`${path}.${k}: no such field in the OTLP definitions`);
      same(x, got[k], `${path}.${k}`);
    }
    return;
  }
  if (String(sent) !== String(got)) throw new Error(`${path}: sent ${JSON.stringify(sent)}, decoded ${got}`);
}

function decode(text) {
  const json = JSON.parse(text);
  const obj = toProto(json);
  const why = Request.verify(obj);
  if (why) throw new Error(why);
  const bytes = Request.encode(Request.fromObject(obj)).finish();
  const back = Request.toObject(Request.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: false });
  same(obj, back, "request");
  const lines = [];
  for (const rs of back.resourceSpans || []) {
    const resource = {};
    for (const a of (rs.resource && rs.resource.attributes) || []) resource[a.key] = a.value;
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        const attrs = {};
        for (const a of s.attributes || []) {
          const v = a.value;
          attrs[a.key] = v.stringValue !== undefined ? v.stringValue : v.intValue !== undefined ? Number(v.intValue)
            : v.doubleValue !== undefined ? v.doubleValue : v.boolValue;
        }
        const hex = (b) => (b ? Buffer.from(b, "base64").toString("hex") : undefined);
        lines.push(JSON.stringify({ trace: hex(s.traceId), id: hex(s.spanId), parent: hex(s.parentSpanId),
          name: s.name, kind: s.kind, start: s.startTimeUnixNano, end: s.endTimeUnixNano, attrs,
          status: s.status, resource, scope: ss.scope }));
      }
    }
  }
  return lines;
}

// The semantic conventions' names the spec asks for (OpenTelemetry's own constants).
const NAMES = { method: semconv.ATTR_HTTP_REQUEST_METHOD, address: semconv.ATTR_SERVER_ADDRESS,
  port: semconv.ATTR_SERVER_PORT, url: semconv.ATTR_URL_FULL, status: semconv.ATTR_HTTP_RESPONSE_STATUS_CODE,
  error: semconv.ATTR_ERROR_TYPE, resend: semconv.ATTR_HTTP_REQUEST_RESEND_COUNT, service: semconv.ATTR_SERVICE_NAME };

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (mode === "silent") return; // never answered
    let status = 200;
    try {
      if (req.method !== "POST" || req.url !== "/v1/traces") throw new Error(`${req.method} ${req.url}`);
      if (!/^application\/json/.test(req.headers["content-type"] || "")) throw new Error("not application/json");
      const lines = decode(Buffer.concat(chunks).toString("utf8"));
      fs.appendFileSync(out, lines.map((l) => l + "\n").join("") +
        JSON.stringify({ export: lines.length, headers: req.headers }) + "\n");
    } catch (e) {
      status = 400;
      fs.appendFileSync(out, JSON.stringify({ error: String(e && e.message || e) }) + "\n");
    }
    res.writeHead(status, { "content-type": "application/json" });
    res.end("{}");
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(portFile + ".names", JSON.stringify(NAMES));
  fs.writeFileSync(portFile, String(server.address().port));
});
