#include "controlplane/data_plane_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "controlplane/proto_util.h"

namespace turnpike::controlplane {

void DataPlaneRegistry::Connected(const std::string& node_id, const std::string& peer,
                                  const std::string& build_version,
                                  const std::string& authenticated_by) {
  absl::MutexLock lock(&mu_);
  Node& n = nodes_[node_id];
  n.open_streams++;
  n.peer = peer;
  n.build_version = build_version;
  n.authenticated_by = authenticated_by;
  n.last_seen = clock_.Now();
}

void DataPlaneRegistry::Disconnected(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;
  if (it->second.open_streams > 0) it->second.open_streams--;
  it->second.last_seen = clock_.Now();
}

void DataPlaneRegistry::Seen(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it != nodes_.end()) it->second.last_seen = clock_.Now();
}

void DataPlaneRegistry::Acked(const std::string& node_id, const std::string& version) {
  absl::MutexLock lock(&mu_);
  Node& n = nodes_[node_id];
  n.acked_version = version;
  n.nacked_version.clear();
  n.last_nack.clear();
  n.last_seen = clock_.Now();
}

void DataPlaneRegistry::Nacked(const std::string& node_id, const std::string& version,
                               const std::string& message) {
  absl::MutexLock lock(&mu_);
  Node& n = nodes_[node_id];
  n.nacked_version = version;
  n.last_nack = message;
  n.last_seen = clock_.Now();
}

absl::Status DataPlaneRegistry::ReportedHealth(const config::v1::ReportHealthRequest& report) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(report.node_id());
  if (it == nodes_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node \"", report.node_id(), "\" has never opened a watch stream; open Watch first"));
  }
  Node& n = it->second;
  n.upstreams = report.upstreams();
  const absl::Time now = clock_.Now();
  n.health_reported = report.has_observed() ? report.observed() : ToTimestamp(now);
  n.last_seen = now;
  CounterSample sample{now, {}};
  *sample.counters.mutable_admission_refusals() = report.admission_refusals();
  if (report.has_usage_spool()) *sample.counters.mutable_usage_spool() = report.usage_spool();
  if (report.has_process_start()) {
    *sample.counters.mutable_process_start() = report.process_start();
  }
  // A report within kCounterSpacing of the sample before the newest replaces the newest (a burst
  // of prompt reports), so there are at most two samples per kCounterSpacing: an hour is at most
  // 1,441 samples per gateway.
  if (n.samples.size() >= 2 && now - n.samples[n.samples.size() - 2].received < kCounterSpacing) {
    n.samples.back() = std::move(sample);
  } else {
    n.samples.push_back(std::move(sample));
  }
  while (n.samples.size() >= 2 && n.samples[1].received <= now - kCounterHistory) {
    n.samples.pop_front();
  }
  return absl::OkStatus();
}

std::map<std::string, std::vector<CounterSample>> DataPlaneRegistry::CounterHistory() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, std::vector<CounterSample>> out;
  for (const auto& [id, n] : nodes_) {
    if (n.samples.empty()) continue;
    out[id] = {n.samples.begin(), n.samples.end()};
  }
  return out;
}

admin::v1::DataPlane DataPlaneRegistry::ToProto(const std::string& id, const Node& n) const {
  admin::v1::DataPlane d;
  d.set_node_id(id);
  d.set_acked_version(n.acked_version);
  d.set_nacked_version(n.nacked_version);
  d.set_last_nack(n.last_nack);
  d.set_build_version(n.build_version);
  d.set_peer(n.peer);
  d.set_authenticated_by(n.authenticated_by);
  *d.mutable_last_seen() = ToTimestamp(n.last_seen);
  d.set_connected(n.open_streams > 0);
  *d.mutable_upstreams() = n.upstreams;
  if (n.health_reported.has_value()) *d.mutable_health_reported() = *n.health_reported;
  return d;
}

std::vector<admin::v1::DataPlane> DataPlaneRegistry::List(const std::string& after,
                                                          int limit) const {
  absl::MutexLock lock(&mu_);
  std::vector<admin::v1::DataPlane> out;
  for (auto it = nodes_.upper_bound(after); it != nodes_.end(); ++it) {
    if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
    out.push_back(ToProto(it->first, it->second));
  }
  return out;
}

std::pair<int, int> DataPlaneRegistry::Count(const std::string& current_version) const {
  absl::MutexLock lock(&mu_);
  int connected = 0, current = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.open_streams == 0) continue;
    ++connected;
    if (n.acked_version == current_version) ++current;
  }
  return {connected, current};
}

std::optional<admin::v1::DataPlane> DataPlaneRegistry::Get(const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return std::nullopt;
  return ToProto(it->first, it->second);
}

}  // namespace turnpike::controlplane
