-- The observe rock's cases that prove promises of the matrix (docs/matrix.md), each promise's in its row's order:
-- { { promise id, { { file, the start of the case's name, { the places it runs in } }, ... } }, ... }; the core's
-- spec/support/promises.lua adds them to its rows.
return {
  { "metrics", {
    { "rocks/observe/spec/hosts/metrics_ledgers_spec.lua",
      "redis: a generate counted",
      { "redis", "lua" } },
    { "rocks/observe/spec/hosts/metrics_ledgers_spec.lua",
      "journal: a generate counted",
      { "journal", "lua" } },
    { "rocks/observe/spec/hosts/metrics_ledgers_spec.lua",
      "process: a generate counted",
      { "process", "lua" } },
    { "rocks/observe/spec/observe_spec.lua",
      "counts a generate's exchanges, create, video and bytes",
      { "lua" } },
    { "rocks/observe/spec/hosts/observe_nginx_spec.lua",
      "a real prometheus scraping during a batch of 50",
      { "nginx", "dict" } },
  } },
  { "traces", {
    { "rocks/observe/spec/observe_spec.lua",
      "a generate: a task span under the traceparent",
      { "lua" } },
    { "rocks/observe/spec/hosts/observe_trace_spec.lua",
      "a generate: a task span under the traceparent",
      { "lua" } },
    { "rocks/observe/spec/hosts/observe_nginx_spec.lua",
      "spans of a generate in nginx",
      { "nginx" } },
  } },
  { "failure_reason", {
    { "rocks/observe/spec/observe_spec.lua",
      "counts failed tasks and refused creates by model and reason",
      { "process", "lua" } },
  } },
}
