-- Turnpike control plane: routing rules in the usage ledger (docs/routing.md).
--
-- Each usage record says which of its route's chains served it: the caller tier whose chain it
-- was (tier_chain) or the variant (variant); both empty for the route's own targets and for
-- every row stored before this migration.

ALTER TABLE usage ADD COLUMN tier_chain TEXT NOT NULL DEFAULT '';
ALTER TABLE usage ADD COLUMN variant TEXT NOT NULL DEFAULT '';
