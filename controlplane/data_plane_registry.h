// DataPlaneRegistry remembers every gateway (node id) that has opened a watch stream since the
// control plane started: its ACKed version, its last NACK, when it was last heard from, whether a
// stream is open now, and its latest health report (the state of its upstreams' circuit
// breakers). It feeds ListDataPlanes, GetDataPlane and GetConfigStatus. It also keeps the last
// hour of each gateway's reported counters (admission refusals, usage spool) for the alert rules
// that difference them (controlplane/alerts/gateway_counters.h). In memory only: a
// restarted control plane learns the fleet again as gateways reconnect and report. Thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_DATA_PLANE_REGISTRY_H_
#define TURNPIKE_CONTROLPLANE_DATA_PLANE_REGISTRY_H_

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "turnpike/admin/v1/admin.pb.h"
#include "turnpike/config/v1/config_discovery.pb.h"

namespace turnpike::controlplane {

// A health report's counters (admission refusals, usage spool, process start; no upstreams) and
// when it arrived.
struct CounterSample {
  absl::Time received;
  config::v1::ReportHealthRequest counters;
};

class DataPlaneRegistry {
 public:
  // How far back CounterHistory() reaches (the longest window a rule may difference), plus the
  // one sample before it that serves as the baseline.
  static constexpr absl::Duration kCounterHistory = absl::Hours(1);
  // Samples are thinned to at most two per this much time (the newest is always kept).
  static constexpr absl::Duration kCounterSpacing = absl::Seconds(5);

  explicit DataPlaneRegistry(Clock& clock) : clock_(clock) {}

  // `authenticated_by` says how the stream authenticated (shown by ListDataPlanes).
  void Connected(const std::string& node_id, const std::string& peer,
                 const std::string& build_version, const std::string& authenticated_by = "");
  void Disconnected(const std::string& node_id);
  void Seen(const std::string& node_id);
  // The node applied `version` (an ACK, or the version it reported on connect).
  void Acked(const std::string& node_id, const std::string& version);
  void Nacked(const std::string& node_id, const std::string& version, const std::string& message);
  // The node's latest health report; replaces the previous one whole. FAILED_PRECONDITION if the
  // node has never opened a watch stream (reports do not create nodes).
  absl::Status ReportedHealth(const config::v1::ReportHealthRequest& report);

  // All known nodes by node id, from `after` (exclusive), at most `limit` (all if <= 0).
  std::vector<admin::v1::DataPlane> List(const std::string& after, int limit) const;
  // Connected nodes, and those whose ACKed version is `current_version`.
  std::pair<int, int> Count(const std::string& current_version) const;
  // The node's state, or nullopt if it was never seen.
  std::optional<admin::v1::DataPlane> Get(const std::string& node_id) const;
  // Every node's counter samples, oldest first: those of the last kCounterHistory and the newest
  // one before it.
  std::map<std::string, std::vector<CounterSample>> CounterHistory() const;

 private:
  struct Node {
    std::string acked_version;
    std::string nacked_version;
    std::string last_nack;
    std::string build_version;
    std::string peer;
    std::string authenticated_by;
    absl::Time last_seen;
    int open_streams = 0;
    // The latest health report, as received.
    google::protobuf::RepeatedPtrField<config::v1::UpstreamHealth> upstreams;
    std::optional<google::protobuf::Timestamp> health_reported;
    std::deque<CounterSample> samples;
  };
  admin::v1::DataPlane ToProto(const std::string& id, const Node& n) const;

  Clock& clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_DATA_PLANE_REGISTRY_H_
