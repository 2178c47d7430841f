-- Turnpike control plane: the lease ledger (docs/budgets.md).
--
-- A quota is what leases are carved from: a budget in its current window, or one key of a rate
-- limit (requests or tokens) in the current UTC minute. `quota_windows` holds one row per quota
-- and window, created by an upsert inside the transaction that first grants from it; a new
-- window is a new row, so a reset never zeroes spend in place. `settled` is what closed leases
-- charged to the window: a released lease its reported spend, an expired one its last reported
-- spend plus reservations. Every grant checks, in one BEGIN IMMEDIATE transaction,
--   settled + sum(granted of live leases of the window) <= limit
-- where the limit is read from the budget or rate limit spec at grant time. Times are Unix
-- microseconds; amounts are in the quota's unit (micro-dollars, requests or tokens).

-- quota_key: "budget:<name>", "rate_limit:<name>:requests:<key>" or
-- "rate_limit:<name>:tokens:<key>" (names never contain ':'; the key comes last).
CREATE TABLE quota_windows (
  quota_key    TEXT NOT NULL CHECK (length(quota_key) BETWEEN 1 AND 1024),
  window_start INTEGER NOT NULL,
  window_end   INTEGER NOT NULL CHECK (window_end > window_start),
  settled      INTEGER NOT NULL,
  PRIMARY KEY (quota_key, window_start)
) STRICT, WITHOUT ROWID;

-- state: 1 = live, 2 = released by its gateway, 3 = expired (charged spent + reserved).
-- `charged` is what the lease added to its window's settled once closed; a release after expiry
-- corrects it to the reported spend.
CREATE TABLE leases (
  lease_id     TEXT PRIMARY KEY CHECK (length(lease_id) BETWEEN 1 AND 64),
  node_id      TEXT NOT NULL,
  quota_key    TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  granted      INTEGER NOT NULL CHECK (granted >= 0),
  spent        INTEGER NOT NULL CHECK (spent >= 0),
  reserved     INTEGER NOT NULL CHECK (reserved >= 0),
  expires_at   INTEGER NOT NULL,
  state        INTEGER NOT NULL CHECK (state IN (1, 2, 3)),
  charged      INTEGER NOT NULL,
  create_time  INTEGER NOT NULL,
  close_time   INTEGER,
  FOREIGN KEY (quota_key, window_start) REFERENCES quota_windows (quota_key, window_start),
  CHECK ((state = 1) = (close_time IS NULL))
) STRICT;
CREATE INDEX leases_live_by_quota ON leases (quota_key, window_start) WHERE state = 1;
CREATE INDEX leases_live_by_expiry ON leases (expires_at) WHERE state = 1;
