// UpstreamLoop runs HTTP transfers to AI providers on one event-loop thread: libcurl's multi
// interface driven by its socket API on epoll, with connection reuse per host and TCP_NODELAY.
// Callers on any thread Start(), Pause-aware Resume() and Cancel() transfers; every callback of
// a TransferHandler runs on the loop thread and must not block. Each started transfer gets
// exactly one OnComplete(), including when it is cancelled or the loop stops. The loop also runs
// timers (RunAfter), so waits such as retry backoff never block a thread; a timer still pending
// when the loop stops runs during the stop, so work it continues can finish.
// Thread-safe: Start/Resume/Cancel/RunAfter/CancelTimer may be called from any thread, including
// from callbacks. The loop, its commands and timers are in upstream_loop.cc; a transfer's start,
// end, deadlines and libcurl callbacks in upstream_loop_transfers.cc.
#ifndef TURNPIKE_SERVER_UPSTREAM_UPSTREAM_LOOP_H_
#define TURNPIKE_SERVER_UPSTREAM_UPSTREAM_LOOP_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <functional>
#include <queue>
#include "absl/base/thread_annotations.h"

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/providers/provider_adapter.h"
#include "server/upstream/transport.h"

namespace turnpike {

class UpstreamLoop final : public UpstreamTransport {
 public:
  struct Options {
    // Idle connections kept for reuse across all hosts.
    int max_idle_connections = 256;
    // Time source of timers and transfer deadlines; must outlive the loop. The loop waits in
    // epoll with real timeouts, so only a real clock makes sense here (tests of the logic above
    // the loop use tests/mocks/fake_transport.h on a SimulatedClock instead).
    Clock* clock = &Clock::Real();
  };

  static absl::StatusOr<std::unique_ptr<UpstreamLoop>> Create(Options options);
  ~UpstreamLoop();  // Stops the loop: pending transfers complete with CANCELLED.

  UpstreamLoop(const UpstreamLoop&) = delete;
  UpstreamLoop& operator=(const UpstreamLoop&) = delete;

  // Queues a transfer. The loop keeps `handler` alive until its OnComplete() returns.
  TransferId Start(HttpRequest request, TransferOptions options,
                   std::shared_ptr<TransferHandler> handler) override;
  // Resumes reading a paused transfer. No-op for unknown or finished ids.
  void Resume(TransferId id) override;
  // Aborts a transfer at once (closes its connection); it completes with CANCELLED.
  void Cancel(TransferId id) override;
  // Runs `fn` once on the loop thread after `delay` (zero or negative: on the next turn of the
  // loop). Returns 0, and drops `fn` without running it, once the loop has stopped; a timer
  // pending when Stop() is called runs during the stop.
  TimerId RunAfter(absl::Duration delay, std::function<void()> fn) override;
  // Drops a timer that has not run yet; no-op for unknown or fired ids.
  void CancelTimer(TimerId id) override;
  Clock& clock() override { return clock_; }
  absl::BitGenRef random() override { return absl::BitGenRef(bitgen_); }
  // Stops the loop thread; transfers still running complete with CANCELLED. Idempotent.
  void Stop();

  // Number of transfers running now (approximate; for metrics and tests).
  int active_transfers() const;

 private:
  struct Transfer;
  struct Command {
    enum class Kind { kStart, kResume, kCancel, kTimer, kCancelTimer } kind;
    TransferId id;                       // transfer id, or timer id for kTimer/kCancelTimer
    std::unique_ptr<Transfer> transfer;  // kStart only
    absl::Time when;                     // kTimer only
    std::function<void()> fn;            // kTimer only
  };

  explicit UpstreamLoop(Options options);
  absl::Status Init();
  void Enqueue(Command command);
  void Run();
  void RunCommands();
  void StartTransfer(std::unique_ptr<Transfer> transfer);
  void FinishTransfer(Transfer* transfer, absl::Status status);
  void CheckDone();
  void CheckDeadlines(absl::Time now);
  // Runs every timer due at `now` (all of them if `all`); returns true if any ran.
  bool RunTimers(absl::Time now, bool all);
  int NextTimeoutMs();

  static int SocketCallback(void* easy, int fd, int what, void* userp, void* socketp);
  static int TimerCallback(void* multi, long timeout_ms, void* userp);
  static size_t WriteCallback(char* data, size_t size, size_t nmemb, void* userp);
  static size_t HeaderCallback(char* data, size_t size, size_t nmemb, void* userp);

  // Constant after construction.
  const Options options_;
  Clock& clock_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;       // eventfd
  void* multi_ = nullptr;  // CURLM*

  absl::Mutex mu_;
  std::vector<Command> commands_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the thread has drained and exited
  std::thread thread_;

  static constexpr absl::Duration kDeadlineTick = absl::Milliseconds(10);
  static constexpr size_t kMaxIdleEasyHandles = 256;

  // Loop-thread state.
  absl::BitGen bitgen_;
  absl::flat_hash_map<TransferId, Transfer*> transfers_;
  std::vector<void*> idle_easy_;  // CURL* handles ready for reuse
  absl::Time next_deadline_check_ = absl::InfinitePast();
  using TimerEntry = std::pair<absl::Time, TimerId>;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<TimerEntry>> timer_queue_;
  absl::flat_hash_map<TimerId, std::function<void()>> timers_;
  absl::Time curl_deadline_ = absl::InfiniteFuture();  // curl's one-shot timer
  std::atomic<TransferId> next_id_{1};
  std::atomic<int> active_{0};
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_UPSTREAM_UPSTREAM_LOOP_H_
