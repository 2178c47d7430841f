// Embedded::Core, the library's side of the core (server/core/gateway_core.h, the components
// turnpike-gateway's doors use): it owns the GatewayCore, one call environment per upstream loop,
// and the registry of calls in flight, which its destructor drains, cancels and waits for before
// the GatewayCore shuts down. The calls themselves (embedded.cc) run through the same admission,
// limits and exchanges as the two front doors.
//
// Thread safety: Enter, Leave, in_flight and WaitUntilReady may be called from any thread,
// concurrently. Start and the destructor run on the thread that creates and destroys the
// Embedded (server/embedded/embedded.h).
#ifndef TURNPIKE_SERVER_EMBEDDED_EMBEDDED_CORE_H_
#define TURNPIKE_SERVER_EMBEDDED_EMBEDDED_CORE_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/embedded/embedded.h"
#include "server/grpc/call_env.h"

namespace turnpike {

class GatewayCore;  // server/core/gateway_core.h

// One call in flight: what the Core cancels at shutdown and waits for.
class EmbeddedCall {
 public:
  virtual ~EmbeddedCall() = default;
  virtual void Cancel() = 0;
};

class Embedded::Core {
 public:
  explicit Core(Options options);
  // Drains the calls in flight (Options::drain_timeout), cancels the rest and waits for them to
  // end, then stops the GatewayCore.
  ~Core();

  // Builds and starts the GatewayCore: INVALID_ARGUMENT for options that do not fit together,
  // else GatewayCore::Create's and Start's status. Call once, before any other method.
  absl::Status Start();
  // OK once a snapshot is in force; UNAVAILABLE if none arrived within `timeout`.
  absl::Status WaitUntilReady(absl::Duration timeout);

  // A call enters: nullptr (UNAVAILABLE) once the Core is stopping. Else the environment of the
  // loop it runs on.
  CallEnv* Enter(const std::shared_ptr<EmbeddedCall>& call);
  void Leave(EmbeddedCall* call);
  int in_flight() const;
  Clock& clock() { return Clock::Real(); }

 private:
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.empty(); }
  void CancelAll();

  // Constant after Start().
  const Options options_;
  std::unique_ptr<GatewayCore> gateway_;
  std::vector<CallEnv> envs_;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool config_applied_ ABSL_GUARDED_BY(mu_) = false;
  size_t next_env_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<EmbeddedCall*, std::weak_ptr<EmbeddedCall>> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EMBEDDED_EMBEDDED_CORE_H_
