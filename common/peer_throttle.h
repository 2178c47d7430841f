// PeerThrottle slows down credential guessing one peer address at a time, on both services
// (docs/security.md, "Brute force"). Each failed authentication is recorded against the peer's
// address (PeerAddressKey: the IP without the port, so reconnecting does not start afresh); once a
// peer has failed more than `free_failures` times without a quiet `window` in between, each of its
// further refusals is held for a delay that doubles every `step` failures, from `first_delay` up
// to `max_delay`. Only failures are recorded: a valid credential is never held, and one peer's
// successes or failures change nothing for another. The table of peers is bounded (`max_peers`,
// least recently failed evicted first), so an attacker rotating addresses cannot grow memory, and
// at most `max_held` refusals are held at once (beyond that they are answered at once). The holder
// answers the refusal after the returned delay (a timer: no thread waits) and then calls
// Release(). Time comes from the injected Clock. Thread-safe.
#ifndef TURNPIKE_COMMON_PEER_THROTTLE_H_
#define TURNPIKE_COMMON_PEER_THROTTLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace turnpike {

// The address part of a gRPC peer string: "ipv4:10.0.0.7:51234" -> "10.0.0.7",
// "ipv6:[::1]:51234" -> "::1", "unix:/path" -> "unix" (every local socket peer is one peer).
// Anything else is returned whole.
std::string PeerAddressKey(std::string_view grpc_peer);

class PeerThrottle {
 public:
  struct Options {
    absl::Duration window = absl::Minutes(1);
    int free_failures = 5;
    int step = 5;
    absl::Duration first_delay = absl::Milliseconds(50);
    absl::Duration max_delay = absl::Seconds(2);  // zero turns the slowdown off
    size_t max_peers = 4096;
    int max_held = 256;
  };

  // What to do with one refusal.
  struct Verdict {
    absl::Duration hold = absl::ZeroDuration();  // zero: answer now, and do not call Release()
    bool throttled() const { return hold > absl::ZeroDuration(); }
  };

  PeerThrottle(Options options, Clock& clock) : options_(options), clock_(clock) {}

  // Records one failed authentication from `peer` (a PeerAddressKey) now.
  Verdict RecordFailure(const std::string& peer);
  // A held refusal has been answered: gives its slot back.
  void Release();

  // Peers over their free failures whose last failure is within the window (the
  // *_auth_throttled_peers gauge). Scans the bounded table.
  size_t ThrottledPeers() const;
  size_t TrackedPeers() const;
  uint64_t failures_total() const { return failures_total_.load(std::memory_order_relaxed); }
  uint64_t held_total() const { return held_total_.load(std::memory_order_relaxed); }

 private:
  struct PeerState {
    std::string key;
    int failures = 0;
    absl::Time last_failure;
  };
  using Lru = std::list<PeerState>;  // most recently failed first

  const Options options_;
  Clock& clock_;

  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Lru::iterator> peers_ ABSL_GUARDED_BY(mu_);
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> failures_total_{0};
  std::atomic<uint64_t> held_total_{0};
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_PEER_THROTTLE_H_
