-- Turnpike control plane: alert rules, notification channels and alert states (docs/alerts.md).
--
-- A rule's spec is its turnpike.alert.v1.AlertRule, serialized. A channel's URL and routing key
-- are sealed with the SecretBox (controlplane/secret_box.h, bound to "alert-channel/<name>",
-- version 1); only the URL's scheme and host and a fingerprint are kept in clear. `alerts` keeps
-- each alert's state (turnpike.alert.v1.Alert, serialized, deliveries included), so a restarted
-- control plane does not notify again what already fired. Times are Unix microseconds.

CREATE TABLE alert_rules (
  name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  spec        BLOB NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;

CREATE TABLE alert_channels (
  name         TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
  kind         INTEGER NOT NULL,
  sealed       BLOB NOT NULL,
  url_redacted TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  create_time  INTEGER NOT NULL
) STRICT;

CREATE TABLE alerts (
  rule        TEXT NOT NULL,
  subject     TEXT NOT NULL,
  body        BLOB NOT NULL,
  update_time INTEGER NOT NULL,
  PRIMARY KEY (rule, subject)
) STRICT;
