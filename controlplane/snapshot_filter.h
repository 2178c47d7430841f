// What a gateway restricted to a set of capabilities (a node token's `capabilities`,
// docs/security.md) may receive of a snapshot, and a cache of those views so each distinct set is
// filtered once per published version, not once per stream and push.
// The view holds the allowed capabilities' routes, and the routes their budgets degrade to
// (transitively: a degraded request must be servable; an operator who points a budget elsewhere
// could as well point the route there); the providers any chain of those routes names (targets,
// tier chains, variants, latency classes) with their decrypted keys, and no other provider; those
// providers' prices; the rate limits of those capabilities or of every capability; the budgets of
// those capabilities; every caller (key digests only, no secret). A view passes
// CheckSnapshotConsistency whenever the full snapshot does. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_SNAPSHOT_FILTER_H_
#define TURNPIKE_CONTROLPLANE_SNAPSHOT_FILTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/snapshot_cache.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike::controlplane {

// The capabilities a node restricted to `capabilities` is served: those that name a route of
// `full`, and the routes their budgets degrade to, transitively.
std::vector<std::string> ReachableCapabilities(const config::v1::Snapshot& full,
                                               const std::vector<std::string>& capabilities);

// The view of `full` for a node restricted to `capabilities` (non-empty); see above.
config::v1::Snapshot FilterSnapshot(const config::v1::Snapshot& full,
                                    const std::vector<std::string>& capabilities);

class FilteredSnapshots {
 public:
  // `full` itself when `capabilities` is empty; else its view for the set (sorted), computed on
  // the first request for (set, version) and shared after.
  VersionedSnapshot For(const VersionedSnapshot& full,
                        const std::vector<std::string>& capabilities);

 private:
  absl::Mutex mu_;
  // By the set joined with ','; only the newest version of each set is kept. Sets are few (one per
  // distinct node-token restriction), so the map stays small.
  absl::flat_hash_map<std::string, VersionedSnapshot> views_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_SNAPSHOT_FILTER_H_
