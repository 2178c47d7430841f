-- Turnpike control plane: caller keys that expire, and when each was last used (docs/admin.md).
--
-- expire_time: when the key stops working (Unix microseconds), NULL for a key that does not
-- expire; gateways enforce it to the second from the snapshot. last_used_time: the latest minute
-- (Unix microseconds, a whole minute) any gateway reported the key used in its health reports,
-- NULL if never; only ever moves forward.

ALTER TABLE caller_keys ADD COLUMN expire_time INTEGER;
ALTER TABLE caller_keys ADD COLUMN last_used_time INTEGER;
