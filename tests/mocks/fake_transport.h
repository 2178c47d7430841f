// FakeTransport is an UpstreamTransport for unit tests: no sockets, no threads. A test plays the
// provider's side of each transfer (response start, body bytes, completion) and moves a
// SimulatedClock; timers and posted work run when the test calls RunPending() or Advance().
// Like the real loop, Cancel() completes a transfer with CANCELLED on the next turn, and a paused
// transfer holds the bytes it refused until Resume().
// Not thread-safe: one test thread drives it.
#ifndef TURNPIKE_TESTS_MOCKS_FAKE_TRANSPORT_H_
#define TURNPIKE_TESTS_MOCKS_FAKE_TRANSPORT_H_

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "server/upstream/transport.h"

namespace turnpike {

class FakeTransport final : public UpstreamTransport {
 public:
  struct Transfer {
    TransferId id = 0;
    HttpRequest request;
    TransferOptions options;
    std::shared_ptr<TransferHandler> handler;
    bool paused = false;
    std::string held;  // bytes refused with kPause, delivered again on Resume
    bool done = false;
    absl::Status completion;  // how it ended (set when done)
  };

  explicit FakeTransport(SimulatedClock& clock) : clock_(clock) {}

  // UpstreamTransport.
  TransferId Start(HttpRequest request, TransferOptions options,
                   std::shared_ptr<TransferHandler> handler) override {
    auto t = std::make_unique<Transfer>();
    t->id = next_id_++;
    t->request = std::move(request);
    t->options = options;
    t->handler = std::move(handler);
    const TransferId id = t->id;
    transfers_.push_back(std::move(t));
    return id;
  }
  void Resume(TransferId id) override {
    Post([this, id] {
      Transfer* t = Find(id);
      if (t == nullptr || t->done || !t->paused) return;
      t->paused = false;
      ++resumes_;
      std::string held = std::move(t->held);
      t->held.clear();
      if (!held.empty()) Deliver(*t, held);
    });
  }
  void Cancel(TransferId id) override {
    Post([this, id] {
      Transfer* t = Find(id);
      if (t != nullptr && !t->done) Complete(*t, absl::CancelledError("cancelled by the gateway"));
    });
  }
  TimerId RunAfter(absl::Duration delay, std::function<void()> fn) override {
    if (stopped_) return 0;
    const TimerId id = next_id_++;
    timers_.emplace(
        std::make_pair(clock_.MonotonicNow() + std::max(delay, absl::ZeroDuration()), id),
        std::move(fn));
    return id;
  }
  void CancelTimer(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
    }
  }
  Clock& clock() override { return clock_; }
  absl::BitGenRef random() override { return absl::BitGenRef(gen_); }

  // ---- The test's side. ----
  // Runs every timer due now (including posted work), repeatedly, until none is due.
  void RunPending() {
    while (!timers_.empty() && timers_.begin()->first.first <= clock_.MonotonicNow()) {
      auto it = timers_.begin();
      std::function<void()> fn = std::move(it->second);
      timers_.erase(it);
      fn();
    }
  }
  // Moves the clock forward in steps, running timers as they fall due.
  void Advance(absl::Duration d) {
    const absl::Time end = clock_.MonotonicNow() + d;
    RunPending();
    while (!timers_.empty() && timers_.begin()->first.first <= end) {
      clock_.Advance(timers_.begin()->first.first - clock_.MonotonicNow());
      RunPending();
    }
    clock_.Advance(end - clock_.MonotonicNow());
    RunPending();
  }
  // After Stop(), RunAfter refuses new work (as a stopped loop does).
  void Stop() { stopped_ = true; }

  // The provider's response: status line and headers.
  void Respond(TransferId id, int http_status, int64_t retry_after_ms = 0) {
    Get(id).handler->OnResponseStart(http_status, retry_after_ms);
  }
  // Body bytes; returns what the handler answered. Paused bytes are held for Resume.
  TransferHandler::DataResult Send(TransferId id, std::string_view bytes) {
    Transfer& t = Get(id);
    if (t.paused) {
      t.held.append(bytes);
      return TransferHandler::DataResult::kPause;
    }
    return Deliver(t, bytes);
  }
  // Ends the transfer (OK: the body completed).
  void Finish(TransferId id, absl::Status status = absl::OkStatus()) {
    Transfer& t = Get(id);
    if (!t.done) Complete(t, std::move(status));
    RunPending();
  }

  const std::vector<std::unique_ptr<Transfer>>& transfers() const { return transfers_; }
  Transfer& last() { return *transfers_.back(); }
  int started() const { return static_cast<int>(transfers_.size()); }
  int resumes() const { return resumes_; }
  size_t pending_timers() const { return timers_.size(); }

 private:
  Transfer* Find(TransferId id) {
    for (auto& t : transfers_) {
      if (t->id == id) return t.get();
    }
    return nullptr;
  }
  Transfer& Get(TransferId id) {
    Transfer* t = Find(id);
    if (t == nullptr) std::abort();  // a test bug: no such transfer
    return *t;
  }
  TransferHandler::DataResult Deliver(Transfer& t, std::string_view bytes) {
    const TransferHandler::DataResult r = t.handler->OnData(bytes);
    if (r == TransferHandler::DataResult::kPause) {
      t.paused = true;
      t.held.assign(bytes);
    } else if (r == TransferHandler::DataResult::kAbort) {
      Complete(t, absl::UnavailableError("aborted by the handler"));
    }
    return r;
  }
  void Complete(Transfer& t, absl::Status status) {
    t.done = true;
    t.completion = status;
    std::shared_ptr<TransferHandler> handler = std::move(t.handler);
    handler->OnComplete(std::move(status));
  }

  SimulatedClock& clock_;
  std::mt19937_64 gen_{42};  // seeded: runs repeat exactly
  TransferId next_id_ = 1;
  bool stopped_ = false;
  int resumes_ = 0;
  std::vector<std::unique_ptr<Transfer>> transfers_;
  std::map<std::pair<absl::Time, TimerId>, std::function<void()>> timers_;
};

}  // namespace turnpike

#endif  // TURNPIKE_TESTS_MOCKS_FAKE_TRANSPORT_H_
