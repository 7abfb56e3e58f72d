// Reads an object back with the AWS SDK for JavaScript's own S3 client (an independent reader of what the
// library wrote): node s3_read.js ENDPOINT BUCKET KEY -> {"sha256", "bytes", "meta", "type", "etag"} or
// {"missing": true}.
"use strict";
process.removeAllListeners("warning"); // (the SDK's notice that node 22 will be needed from 2027)
const crypto = require("crypto");
const { S3Client, GetObjectCommand } = require("@aws-sdk/client-s3");
const [endpoint, Bucket, Key] = process.argv.slice(2);
const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true,
  credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
(async () => {
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    const hash = crypto.createHash("sha256");
    let bytes = 0;
    for await (const chunk of got.Body) { hash.update(chunk); bytes += chunk.length; }
    process.stdout.write(JSON.stringify({ sha256: hash.digest("hex"), bytes, meta: got.Metadata && got.Metadata.sha256,
      type: got.ContentType, etag: got.ETag }));
  } catch (e) {
    process.stdout.write(JSON.stringify({ missing: e.name === "NoSuchKey", error: String(e) }));
  }
})();
