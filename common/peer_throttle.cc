#include "common/peer_throttle.h"

#include <algorithm>

namespace turnpike {

std::string PeerAddressKey(std::string_view peer) {
  if (peer.substr(0, 5) == "unix:") return "unix";
  if (peer.substr(0, 5) == "ipv6:") {
    std::string_view rest = peer.substr(5);
    if (!rest.empty() && rest.front() == '[') {
      const size_t close = rest.find(']');
      if (close != std::string_view::npos) return std::string(rest.substr(1, close - 1));
    }
    return std::string(rest);
  }
  if (peer.substr(0, 5) == "ipv4:") {
    std::string_view rest = peer.substr(5);
    return std::string(rest.substr(0, rest.rfind(':')));
  }
  return std::string(peer);
}

PeerThrottle::Verdict PeerThrottle::RecordFailure(const std::string& peer) {
  failures_total_.fetch_add(1, std::memory_order_relaxed);
  const absl::Time now = clock_.MonotonicNow();
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    if (peers_.size() >= std::max<size_t>(options_.max_peers, 1)) {
      // The least recently failed peer goes: a rotating attacker evicts its own stale entries.
      peers_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(PeerState{peer, 0, now});
    it = peers_.emplace(peer, lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  PeerState& state = *it->second;
  // A quiet window forgives a peer's earlier mistakes.
  if (now - state.last_failure >= options_.window) state.failures = 0;
  state.failures = std::min(state.failures + 1, 1 << 20);
  state.last_failure = now;
  const int over = state.failures - options_.free_failures;
  if (over <= 0 || held_ >= options_.max_held || options_.max_delay <= absl::ZeroDuration()) {
    return Verdict{};
  }
  const int doublings = std::min((over - 1) / std::max(options_.step, 1), 30);
  ++held_;
  held_total_.fetch_add(1, std::memory_order_relaxed);
  return Verdict{std::min(options_.first_delay * (int64_t{1} << doublings), options_.max_delay)};
}

void PeerThrottle::Release() {
  absl::MutexLock lock(&mu_);
  if (held_ > 0) --held_;
}

size_t PeerThrottle::ThrottledPeers() const {
  const absl::Time now = clock_.MonotonicNow();
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const PeerState& state : lru_) {
    // Most recently failed first: the rest of the list is quieter still.
    if (now - state.last_failure >= options_.window) break;
    if (state.failures > options_.free_failures) ++n;
  }
  return n;
}

size_t PeerThrottle::TrackedPeers() const {
  absl::MutexLock lock(&mu_);
  return peers_.size();
}

}  // namespace turnpike
