-- The redis rock's cases that prove promises of the matrix (docs/matrix.md), each promise's in its row's order:
-- { { promise id, { { file, the start of the case's name, { the places it runs in } }, ... } }, ... }; the core's
-- spec/support/promises.lua adds them to its rows.
return {
  { "generate", {
    { "rocks/redis/spec/hosts/fleet_spec.lua",
      "finishes all 40 generates whole after one host is killed -9",
      { "redis", "file", "lua" } },
    { "rocks/redis/spec/hosts/store_wire_nginx_spec.lua",
      "generates with a store per request",
      { "redis", "nginx" } },
  } },
  { "ctrl_c", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "generate_all: one error saying what was paid and naming `starvideos resume --store`",
      { "redis", "file", "lua" } },
  } },
  { "create_limit", {
    { "rocks/redis/spec/hosts/redis_spec.lua",
      "allows exactly count creates across two processes",
      { "redis", "lua" } },
    { "rocks/redis/spec/hosts/redis_nginx_spec.lua",
      "shares the create limit between requests",
      { "redis", "nginx" } },
  } },
  { "fair_share", {
    { "rocks/redis/spec/hosts/fair_runs_redis_spec.lua",
      "B's 5 creates in turn with A's, A's 200 and B's 5 in two processes",
      { "redis", "job" } },
    { "rocks/redis/spec/hosts/fair_runs_redis_spec.lua",
      "B's 5 creates in turn with A's, B's 5 beside 100 of A's in one process",
      { "redis", "job" } },
  } },
  { "spend_refusal", {
    { "rocks/redis/spec/hosts/spend_store_spec.lua",
      "spend --store --spend-limit after creates made without it reads what they spent",
      { "redis", "cli" } },
    { "rocks/redis/spec/hosts/spend_store_spec.lua",
      "of processes spelling the base URL five ways is one key's spend",
      { "redis", "lua" } },
    { "rocks/redis/spec/hosts/spend_fleet_spec.lua",
      "50 processes, 10 creates each",
      { "redis", "lua" } },
  } },
  { "spend_reservation", {
    { "rocks/redis/spec/hosts/spend_fleet_spec.lua",
      "50 processes, 10 creates each",
      { "redis", "lua" } },
  } },
  { "spend_warnings", {
    { "rocks/redis/spec/hosts/spend_fleet_spec.lua",
      "50 processes, 10 creates each of 0.40 against 7.90",
      { "redis", "lua" } },
  } },
  { "spend_restart", {
    { "rocks/redis/spec/hosts/spend_store_spec.lua",
      "on a Redis without its AOF says once that a restart forgets",
      { "redis", "lua" } },
    { "rocks/redis/spec/hosts/spend_store_spec.lua",
      "of processes whose clocks are a day apart is one window",
      { "redis", "lua" } },
    { "rocks/redis/spec/hosts/spend_fleet_spec.lua",
      "30 reserving processes killed at random, then rerun",
      { "redis", "lua" } },
  } },
  { "again", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "again of a parent another process recorded in the store",
      { "redis", "file", "lua" } },
  } },
  { "remix", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "remix of a parent from the store, without a bucket",
      { "redis", "file", "lua" } },
  } },
  { "continue", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "continue of a parent from the store",
      { "redis", "file", "lua" } },
  } },
  { "film", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "film of 2 shots on a store",
      { "redis", "file", "lua" } },
  } },
  { "lineage", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "again of a parent another process recorded in the store",
      { "redis", "lua" } },
    { "rocks/redis/spec/hosts/lineage_store_spec.lua",
      "list --tree from a second host shows the three generations",
      { "redis", "cli" } },
  } },
  { "resumable", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "a generate killed -9 mid-download",
      { "redis", "file", "cli" } },
  } },
  { "refused_before", {
    { "rocks/redis/spec/hosts/refused_store_spec.lua",
      "a policy refusal: 4 processes refused before sending",
      { "redis", "lua" } },
  } },
  { "fallback", {
    { "rocks/redis/spec/hosts/refused_store_spec.lua",
      "a fallback on a store",
      { "redis", "lua" } },
  } },
  { "sse", {
    { "rocks/redis/spec/hosts/sse_redis_nginx_spec.lua",
      "tells a run of another host of the store",
      { "redis", "nginx" } },
  } },
  { "provenance", {
    { "rocks/redis/spec/hosts/places_redis_spec.lua",
      "again of a parent another process recorded in the store",
      { "redis", "file", "lua" } },
  } },
}
