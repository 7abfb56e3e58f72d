-- The s3 rock's cases that prove promises of the matrix (docs/matrix.md), each promise's in its row's order:
-- { { promise id, { { file, the start of the case's name, { the places it runs in } }, ... } }, ... }; the core's
-- spec/support/promises.lua adds them to its rows.
return {
  { "generate", {
    { "rocks/s3/spec/hosts/s3_cli_spec.lua",
      "generate --out s3://",
      { "bucket", "cli", "journal" } },
  } },
  { "rerun", {
    { "rocks/s3/spec/hosts/s3_cli_spec.lua",
      "batch --out-dir s3://bucket/prefix: one object per entry, a rerun sends nothing",
      { "bucket", "cli", "journal" } },
    { "rocks/s3/spec/hosts/s3_spec.lua",
      "a rerun on an object already saved",
      { "bucket", "lua" } },
  } },
  { "ctrl_c", {
    { "rocks/s3/spec/hosts/places_bucket_spec.lua",
      "generate_all: one error saying what was paid and naming `starvideos resume --journal`",
      { "bucket", "journal", "lua" } },
  } },
  { "spend_refusal", {
    { "rocks/s3/spec/hosts/lineage_s3_spec.lua",
      "remix a spend limit refuses",
      { "bucket", "journal", "lua" } },
  } },
  { "again", {
    { "rocks/s3/spec/hosts/lineage_s3_spec.lua",
      "remix: one create naming the parent's video, fetched whole by the service; again of it",
      { "bucket", "journal", "lua" } },
  } },
  { "remix", {
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "remix of an s3:// parent",
      { "bucket", "journal", "lua" } },
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "remix ID --out of an s3:// parent",
      { "bucket", "cli" } },
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "remix ID --out with a bucket configured",
      { "file", "cli" } },
    { "rocks/s3/spec/hosts/lineage_s3_spec.lua",
      "remix: one create naming the parent's video",
      { "bucket", "journal", "lua" } },
  } },
  { "continue", {
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "continue of an s3:// parent: one create",
      { "bucket", "journal", "lua" } },
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "continue from a file parent into an s3:// out",
      { "file", "bucket", "lua" } },
    { "rocks/s3/spec/hosts/lineage_s3_spec.lua",
      "continue: one create whose first_image is the parent's last frame",
      { "journal", "lua" } },
  } },
  { "film", {
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "film into an s3:// out: its shots objects beside it",
      { "bucket", "journal", "lua" } },
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "film FILE --out s3://bucket/key",
      { "bucket", "journal", "cli" } },
  } },
  { "resumable", {
    { "rocks/s3/spec/hosts/s3_spec.lua",
      "kill -9 at a random part, 5 times, then resume",
      { "bucket", "journal", "lua" } },
  } },
  { "sse", {
    { "rocks/s3/spec/sse_bucket_spec.lua",
      "tells a run saved to a bucket by another process",
      { "bucket", "journal", "lua" } },
  } },
  { "provenance", {
    { "rocks/s3/spec/hosts/s3_cli_spec.lua",
      "generate --out s3://",
      { "bucket", "cli", "journal" } },
    { "rocks/s3/spec/lineage_bucket_spec.lua",
      "film into an s3:// out",
      { "bucket", "journal", "lua" } },
  } },
  { "mark", {
    { "rocks/s3/spec/hosts/mark_s3_spec.lua",
      "a video of 2 parts generated to s3://",
      { "bucket", "journal", "lua" } },
  } },
}
