// UpstreamTransport is everything an exchange needs from the upstream I/O layer: start, resume and
// cancel HTTP transfers, post work and arm timers on the transport's thread, and read time. The
// libcurl event loop (server/upstream/upstream_loop.h) is the production implementation;
// tests/mocks/fake_transport.h is another, driven by a SimulatedClock, so the attempt driver is
// tested without sockets or sleeping (docs/architecture.md, "The request path").
//
// Threading contract: every TransferHandler callback and every posted or timed function runs on
// the transport's one thread and must not block. Start, Resume, Cancel, RunAfter and CancelTimer
// may be called from any thread, including from those callbacks.
#ifndef TURNPIKE_SERVER_UPSTREAM_TRANSPORT_H_
#define TURNPIKE_SERVER_UPSTREAM_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/providers/provider_adapter.h"

namespace turnpike {

// Receives one transfer's events, on the transport's thread.
class TransferHandler {
 public:
  enum class DataResult { kContinue, kPause, kAbort };
  virtual ~TransferHandler() = default;
  // The response status line and headers arrived. `retry_after_ms` is parsed from
  // retry-after-ms / retry-after (seconds or HTTP date), 0 if absent.
  virtual void OnResponseStart(int http_status, int64_t retry_after_ms) = 0;
  // Body bytes. Return kPause to stop reading from the socket until Resume(); on kPause the
  // bytes are NOT consumed and are delivered again after Resume. kAbort ends the transfer at once
  // (OnComplete follows with a non-OK status).
  virtual DataResult OnData(std::string_view bytes) = 0;
  // The transfer ended: OK when the body completed; UNAVAILABLE for connection failures and
  // resets, DEADLINE_EXCEEDED for a timeout, CANCELLED after Cancel().
  virtual void OnComplete(absl::Status status) = 0;
};

// Per-transfer limits, enforced by the transport.
struct TransferOptions {
  absl::Duration connect_timeout = absl::Seconds(2);
  // Limit from sending the request to the first body byte.
  absl::Duration first_byte_timeout = absl::Seconds(30);
  // Limit on silence between body reads once data flows (not counted while paused).
  absl::Duration idle_timeout = absl::Seconds(30);
  // Limit on the whole transfer.
  absl::Duration total_timeout = absl::Minutes(5);
};

// Connection failures (connect refused, DNS, TLS) carry this payload: the request never reached
// the provider, so a router may fail over at once instead of retrying the same host.
inline constexpr char kConnectFailurePayloadUrl[] = "turnpike.internal/upstream_connect_failure";
inline bool IsConnectFailure(const absl::Status& status) {
  return status.GetPayload(kConnectFailurePayloadUrl).has_value();
}

class UpstreamTransport {
 public:
  using TransferId = uint64_t;
  using TimerId = uint64_t;

  virtual ~UpstreamTransport() = default;

  // Queues a transfer. The transport keeps `handler` alive until its OnComplete() returns; every
  // started transfer gets exactly one OnComplete(), also when cancelled or when the transport
  // stops (CANCELLED).
  virtual TransferId Start(HttpRequest request, TransferOptions options,
                           std::shared_ptr<TransferHandler> handler) = 0;
  // Resumes reading a paused transfer. No-op for unknown or finished ids.
  virtual void Resume(TransferId id) = 0;
  // Aborts a transfer; it completes with CANCELLED. No-op for unknown or finished ids.
  virtual void Cancel(TransferId id) = 0;
  // Runs `fn` once on the transport's thread after `delay` (zero or negative: on the next turn).
  // Returns 0, and drops `fn` without running it, once the transport has stopped.
  virtual TimerId RunAfter(absl::Duration delay, std::function<void()> fn) = 0;
  // Drops a timer that has not run yet; no-op for unknown or fired ids.
  virtual void CancelTimer(TimerId id) = 0;
  // The time source of the transport's timers and deadlines.
  virtual Clock& clock() = 0;
  // The transport thread's random source (retry jitter, weighted picks). Use only on that
  // thread: it is one generator per thread, so draws take no lock.
  virtual absl::BitGenRef random() = 0;

  // Runs `fn` on the transport's thread as soon as possible; false if the transport has stopped.
  bool Post(std::function<void()> fn) { return RunAfter(absl::ZeroDuration(), std::move(fn)) != 0; }
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_UPSTREAM_TRANSPORT_H_
