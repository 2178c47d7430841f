-- Turnpike control plane: the latency class in the usage ledger (docs/routing.md).
--
-- latency_class: the class a request was served as, "interactive" or "batch"; empty for every
-- row stored before this migration.

ALTER TABLE usage ADD COLUMN latency_class TEXT NOT NULL DEFAULT '';
