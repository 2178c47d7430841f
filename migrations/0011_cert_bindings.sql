-- Turnpike control plane: identities by client certificate (docs/security.md).
--
-- With mutual TLS, a client certificate whose subject alternative name (as openssl prints it:
-- "DNS:...", "URI:...", "email:...", "IP:...") is bound here is that identity: an admin identity
-- with a role, or a gateway bound to one node id (exactly one of the two). Unbinding deletes the
-- row; the audit trail keeps who bound and unbound what. Times are Unix microseconds.

CREATE TABLE cert_bindings (
  san         TEXT PRIMARY KEY CHECK (length(san) BETWEEN 3 AND 1024),
  name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  role        TEXT CHECK (role IS NULL OR role IN ('viewer', 'operator', 'admin', 'auditor')),
  node_id     TEXT CHECK (node_id IS NULL OR length(node_id) BETWEEN 1 AND 256),
  created_by  TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  CHECK ((role IS NULL) != (node_id IS NULL))
);
