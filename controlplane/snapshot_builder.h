// Builds the snapshot gateways receive from the database: every provider with the decrypted key
// of its credential's active version, routes, callers with the digests of their valid keys,
// prices, rate limits and budgets, stamped with the config version. The result has passed
// CheckSnapshotConsistency, so nothing inconsistent is ever published. Runs inside the caller's
// transaction (one consistent read); stateless and thread-safe given exclusive use of `db`.
#ifndef TURNPIKE_CONTROLPLANE_SNAPSHOT_BUILDER_H_
#define TURNPIKE_CONTROLPLANE_SNAPSHOT_BUILDER_H_

#include "absl/status/statusor.h"
#include "controlplane/secret_box.h"
#include "controlplane/sqlite.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike::controlplane {

absl::StatusOr<config::v1::Snapshot> BuildSnapshot(SqliteDb& db, const SecretBox& box);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_SNAPSHOT_BUILDER_H_
