-- Turnpike control plane: nodes restricted to a set of capabilities (docs/security.md).
--
-- A node token, or a node's certificate binding, may name the capabilities its gateway serves: the gateway then receives only
-- those routes (and the routes their budgets degrade to), the providers and decrypted
-- credentials they use, and their prices, rate limits and budgets; and it may lease only their
-- budgets and rate limits. Names are joined by ','; '' means every capability (as before).

ALTER TABLE node_tokens ADD COLUMN capabilities TEXT NOT NULL DEFAULT '';
ALTER TABLE cert_bindings ADD COLUMN capabilities TEXT NOT NULL DEFAULT '';
