-- Turnpike control plane: who may call it (docs/security.md).
--
-- Admin tokens (role viewer, operator, admin or auditor) and node tokens (bound to one gateway's
-- node id). Only the SHA-256 of a token is stored (lowercase hex), never the token; its first 12
-- characters are kept to tell tokens apart in lists. A revoked token keeps its row (revoke_time
-- set) so lists show what was revoked and when. Times are Unix microseconds.

CREATE TABLE admin_tokens (
  name           TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
  role           TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'auditor')),
  sha256_hex     TEXT NOT NULL UNIQUE CHECK (length(sha256_hex) = 64),
  display_prefix TEXT NOT NULL,
  created_by     TEXT NOT NULL,
  create_time    INTEGER NOT NULL,
  revoke_time    INTEGER
);

CREATE TABLE node_tokens (
  name           TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
  node_id        TEXT NOT NULL CHECK (length(node_id) BETWEEN 1 AND 256),
  sha256_hex     TEXT NOT NULL UNIQUE CHECK (length(sha256_hex) = 64),
  display_prefix TEXT NOT NULL,
  created_by     TEXT NOT NULL,
  create_time    INTEGER NOT NULL,
  revoke_time    INTEGER
);
