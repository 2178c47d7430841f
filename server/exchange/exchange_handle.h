// ExchangeHandle is a front door's hold on the exchange of one call, shared by the threads that
// may end it: the door's own (the client left, the gateway stops), the lease manager's (the
// request was admitted after a wait) and the upstream loop (the exchange ended). A Cancel() that
// comes before the exchange exists is remembered and applied when it starts; one after the
// exchange ended does nothing. Used by the HTTP front door's calls and turnpike::Embedded.
// Thread-safe.
#ifndef TURNPIKE_SERVER_EXCHANGE_EXCHANGE_HANDLE_H_
#define TURNPIKE_SERVER_EXCHANGE_EXCHANGE_HANDLE_H_

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace turnpike {

template <typename Exchange>  // ChatExchange or EmbedExchange
class ExchangeHandle {
 public:
  // Holds `exchange` and starts it; if the call was cancelled while it waited for admission, it
  // is cancelled first, so it ends before any upstream work.
  void Start(std::shared_ptr<Exchange> exchange) {
    bool gone;
    {
      absl::MutexLock lock(&mu_);
      exchange_ = exchange;
      gone = cancelled_;
    }
    if (gone) exchange->Cancel();
    exchange->Start();
  }

  // Ends the call: its exchange is cancelled if it runs, or as soon as it starts.
  void Cancel() {
    std::shared_ptr<Exchange> cancel;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (!done_) cancel = exchange_;
    }
    if (cancel) cancel->Cancel();
  }

  // The exchange ended (its listener's OnDone): Cancel() and Running() no longer reach it, and
  // the handle lets go of it (the driver holds itself while it calls back), so a call object
  // that outlives its exchange does not keep the exchange, and what it points to, alive.
  void Done() {
    std::shared_ptr<Exchange> ended;
    absl::MutexLock lock(&mu_);
    done_ = true;
    ended = std::move(exchange_);
  }

  // The exchange while it runs (to Resume it); null before it started and after it ended.
  std::shared_ptr<Exchange> Running() {
    absl::MutexLock lock(&mu_);
    return exchange_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<Exchange> exchange_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_EXCHANGE_HANDLE_H_
