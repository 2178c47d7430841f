-- Turnpike control plane: the usage ledger (docs/usage.md).
--
-- `usage` holds one row per request, keyed by the gateway's request id, so a resent batch is
-- recognised and never counted twice. Raw rows are pruned after the retention period
-- (--usage_retention); `usage_hourly` keeps the sums per UTC hour for good and is updated in
-- the same transaction as the raw rows it sums. Times are Unix microseconds; money is integer
-- micro-dollars. No foreign keys: a record for a capability or caller deleted (or never known)
-- is kept as reported.

CREATE TABLE usage (
  request_id               TEXT PRIMARY KEY CHECK (length(request_id) BETWEEN 1 AND 128),
  start_time               INTEGER NOT NULL,
  received_time            INTEGER NOT NULL,
  node_id                  TEXT NOT NULL,
  caller                   TEXT NOT NULL,
  capability               TEXT NOT NULL,
  provider                 TEXT NOT NULL,
  model                    TEXT NOT NULL,
  user                     TEXT NOT NULL,
  trace_id                 TEXT NOT NULL,
  config_version           TEXT NOT NULL,
  credential               TEXT NOT NULL,
  method                   INTEGER NOT NULL,
  status                   TEXT NOT NULL,
  partial                  INTEGER NOT NULL,
  input_tokens             INTEGER NOT NULL CHECK (input_tokens >= 0),
  cached_input_tokens      INTEGER NOT NULL CHECK (cached_input_tokens >= 0),
  cache_write_input_tokens INTEGER NOT NULL CHECK (cache_write_input_tokens >= 0),
  output_tokens            INTEGER NOT NULL CHECK (output_tokens >= 0),
  reasoning_output_tokens  INTEGER NOT NULL CHECK (reasoning_output_tokens >= 0),
  usage_estimated          INTEGER NOT NULL,
  cost_known               INTEGER NOT NULL,
  cost_usd_micros          INTEGER NOT NULL CHECK (cost_usd_micros >= 0),
  input_cost_usd_micros        INTEGER NOT NULL,
  cached_input_cost_usd_micros INTEGER NOT NULL,
  cache_write_cost_usd_micros  INTEGER NOT NULL,
  output_cost_usd_micros       INTEGER NOT NULL,
  price_version            TEXT NOT NULL,
  cache_hit                INTEGER NOT NULL,
  degraded                 INTEGER NOT NULL,
  refused                  INTEGER NOT NULL,
  attempts                 INTEGER NOT NULL,
  time_to_first_token_us   INTEGER NOT NULL,
  latency_us               INTEGER NOT NULL,
  -- The request's tags as a JSON object ({} when none).
  tags                     TEXT NOT NULL CHECK (substr(tags, 1, 1) = '{')
) STRICT;
CREATE INDEX usage_by_start ON usage (start_time, request_id);

-- Sums of the raw rows per UTC hour (hour = start of the hour, Unix microseconds) and
-- dimension. cost_usd_micros sums only the records whose cost was known.
CREATE TABLE usage_hourly (
  hour                     INTEGER NOT NULL,
  capability               TEXT NOT NULL,
  model                    TEXT NOT NULL,
  provider                 TEXT NOT NULL,
  caller                   TEXT NOT NULL,
  requests                 INTEGER NOT NULL,
  input_tokens             INTEGER NOT NULL,
  cached_input_tokens      INTEGER NOT NULL,
  cache_write_input_tokens INTEGER NOT NULL,
  output_tokens            INTEGER NOT NULL,
  reasoning_output_tokens  INTEGER NOT NULL,
  cost_usd_micros          INTEGER NOT NULL,
  cost_unknown_requests    INTEGER NOT NULL,
  estimated_requests       INTEGER NOT NULL,
  PRIMARY KEY (hour, capability, model, provider, caller)
) STRICT, WITHOUT ROWID;
