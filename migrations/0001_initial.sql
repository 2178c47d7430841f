-- Turnpike control plane: initial schema.
--
-- Every configuration resource is one row keyed by its name, with its spec stored as the
-- canonical proto3 JSON of the matching turnpike.config.v1 message (so fields added to the
-- snapshot later need no migration), a revision for optimistic concurrency, and create/update
-- times in Unix microseconds. Columns that other rows reference are kept outside the JSON so
-- SQLite enforces referential integrity (PRAGMA foreign_keys=ON on every connection).
-- Secrets are never stored in clear: credential versions hold AES-256-GCM sealed blobs, caller
-- keys only their SHA-256.

-- Singleton rows describing the database itself (master-key id, ...).
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- The config version: bumped by every committed admin change; gateways ACK it.
CREATE TABLE config_state (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  version     INTEGER NOT NULL CHECK (version >= 1),
  update_time INTEGER NOT NULL
) STRICT;
INSERT INTO config_state (id, version, update_time) VALUES (1, 1, 0);

CREATE TABLE credentials (
  name           TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  description    TEXT NOT NULL DEFAULT '',
  active_version INTEGER NOT NULL CHECK (active_version >= 1),
  revision       INTEGER NOT NULL CHECK (revision >= 1),
  create_time    INTEGER NOT NULL,
  update_time    INTEGER NOT NULL
) STRICT;

-- state: 1 = active, 2 = previous (still valid until retire_time), 3 = retired (sealed destroyed).
CREATE TABLE credential_versions (
  credential  TEXT NOT NULL REFERENCES credentials (name) ON DELETE CASCADE,
  version     INTEGER NOT NULL CHECK (version >= 1),
  state       INTEGER NOT NULL CHECK (state IN (1, 2, 3)),
  sealed      BLOB,
  fingerprint TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  retire_time INTEGER,
  PRIMARY KEY (credential, version),
  CHECK ((state = 3) = (sealed IS NULL))
) STRICT;
CREATE UNIQUE INDEX credential_versions_one_active ON credential_versions (credential)
  WHERE state = 1;

CREATE TABLE providers (
  name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  credential  TEXT REFERENCES credentials (name) ON DELETE RESTRICT,
  spec        TEXT NOT NULL CHECK (substr(spec, 1, 1) = '{'),
  revision    INTEGER NOT NULL CHECK (revision >= 1),
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;
CREATE INDEX providers_by_credential ON providers (credential);

CREATE TABLE routes (
  name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  spec        TEXT NOT NULL CHECK (substr(spec, 1, 1) = '{'),
  revision    INTEGER NOT NULL CHECK (revision >= 1),
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;

-- A route's targets, mirrored from its spec so that a provider in use cannot be deleted.
CREATE TABLE route_targets (
  route    TEXT NOT NULL REFERENCES routes (name) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  provider TEXT NOT NULL REFERENCES providers (name) ON DELETE RESTRICT,
  model    TEXT NOT NULL CHECK (length(model) >= 1),
  PRIMARY KEY (route, position)
) STRICT;
CREATE INDEX route_targets_by_provider ON route_targets (provider);

CREATE TABLE callers (
  name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  spec        TEXT NOT NULL CHECK (substr(spec, 1, 1) = '{'),
  revision    INTEGER NOT NULL CHECK (revision >= 1),
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;

-- Only the SHA-256 (lowercase hex) of a caller key is stored; `prefix` is shown to people.
CREATE TABLE caller_keys (
  key_id      TEXT PRIMARY KEY,
  caller      TEXT NOT NULL REFERENCES callers (name) ON DELETE CASCADE,
  sha256      TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
  prefix      TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  revoke_time INTEGER
) STRICT;
CREATE INDEX caller_keys_by_caller ON caller_keys (caller);

-- name is "<provider>/<model>"; provider names never contain '/'.
CREATE TABLE prices (
  name        TEXT PRIMARY KEY,
  provider    TEXT NOT NULL REFERENCES providers (name) ON DELETE RESTRICT,
  spec        TEXT NOT NULL CHECK (substr(spec, 1, 1) = '{'),
  revision    INTEGER NOT NULL CHECK (revision >= 1),
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;
CREATE INDEX prices_by_provider ON prices (provider);

CREATE TABLE rate_limits (
  name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  spec        TEXT NOT NULL CHECK (substr(spec, 1, 1) = '{'),
  revision    INTEGER NOT NULL CHECK (revision >= 1),
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;

CREATE TABLE budgets (
  name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  spec        TEXT NOT NULL CHECK (substr(spec, 1, 1) = '{'),
  revision    INTEGER NOT NULL CHECK (revision >= 1),
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;

-- Append-only record of every admin change. before/after are JSON with secrets left out.
CREATE TABLE admin_audit (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  time           INTEGER NOT NULL,
  actor          TEXT NOT NULL,
  action         TEXT NOT NULL,
  resource_type  TEXT NOT NULL,
  resource_name  TEXT NOT NULL,
  before_json    TEXT,
  after_json     TEXT,
  config_version INTEGER NOT NULL
) STRICT;
CREATE TRIGGER admin_audit_no_update BEFORE UPDATE ON admin_audit
BEGIN
  SELECT RAISE(ABORT, 'admin_audit is append-only');
END;
CREATE TRIGGER admin_audit_no_delete BEFORE DELETE ON admin_audit
BEGIN
  SELECT RAISE(ABORT, 'admin_audit is append-only');
END;
