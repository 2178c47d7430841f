-- Turnpike control plane: the features a request used, in the usage ledger (docs/tools.md).
--
-- features: UsageRecord.features as the short names of turnpike.v1.RequestFeature joined by
-- commas, in enum order ("tools,json_schema"); a value this control plane does not know is kept
-- as its number. Empty for plain-text requests and for every row stored before this migration.

ALTER TABLE usage ADD COLUMN features TEXT NOT NULL DEFAULT '';
