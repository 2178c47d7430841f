-- Turnpike control plane: the hash-chained audit trail (docs/audit.md).
--
-- `audit_chain` holds one entry per request (its usage record as the gateway reported it, with
-- the audit evidence) and one per admin change, in one sequence. `canonical` is the entry's
-- serialized turnpike.audit.v1.ChainedEntry; hash = SHA-256(0x00 || canonical || prev_hash).
-- The other columns repeat fields of `canonical` so queries can use indexes; the verifier checks
-- that they agree with it. Entries are never updated; they are deleted only by the retention
-- sweep, which holds a row in audit_prune_permit for the length of its transaction and deletes
-- only entries a signed checkpoint covers. Checkpoints are kept for good.
-- Entries start with this migration: admin changes made before it are in admin_audit only.

CREATE TABLE audit_chain (
  seq           INTEGER PRIMARY KEY CHECK (seq >= 1),
  kind          INTEGER NOT NULL CHECK (kind IN (1, 2)),  -- 1 request, 2 admin change
  time          INTEGER NOT NULL,  -- the request's start or the change's commit, Unix micros
  recorded_time INTEGER NOT NULL,  -- when the entry was appended, Unix micros
  request_id    TEXT NOT NULL,
  caller        TEXT NOT NULL,
  capability    TEXT NOT NULL,
  provider      TEXT NOT NULL,
  canonical     BLOB NOT NULL,
  prev_hash     BLOB NOT NULL CHECK (length(prev_hash) = 32),
  hash          BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX audit_chain_by_time ON audit_chain (time, seq);
CREATE INDEX audit_chain_by_request ON audit_chain (request_id) WHERE request_id <> '';
CREATE INDEX audit_chain_by_caller ON audit_chain (caller, seq) WHERE caller <> '';

CREATE TABLE audit_prune_permit (
  id INTEGER PRIMARY KEY CHECK (id = 1)
) STRICT;

CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN
  SELECT RAISE(ABORT, 'audit_chain is append-only');
END;
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
WHEN NOT EXISTS (SELECT 1 FROM audit_prune_permit)
BEGIN
  SELECT RAISE(ABORT, 'audit_chain is append-only (only the retention sweep prunes it)');
END;

-- Signed statements of the chain's head: entries 1..size hash to head_hash.
CREATE TABLE audit_checkpoints (
  size      INTEGER PRIMARY KEY CHECK (size >= 1),
  head_hash BLOB NOT NULL CHECK (length(head_hash) = 32),
  time      INTEGER NOT NULL,
  key_id    TEXT NOT NULL,
  signature BLOB NOT NULL
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
  SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
  SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
