// ConfigWatchClient is the gateway's side of turnpike.config.v1.ConfigDiscoveryService/Watch.
// On its own thread it connects to the control plane, reports the version it runs, and for every
// snapshot pushed calls ApplyFn: OK is ACKed (and the snapshot saved to disk, mode 0600, as the
// last good one), an error is NACKed with its message while the previous snapshot stays in force.
// A snapshot whose version is the one already applied is ACKed without applying it again. When
// the stream ends it reconnects after the project's full-jitter backoff (common/backoff.h:
// uniform below min(max_backoff, initial_backoff * 2^attempt)), reset by any response received.
// Time (the wait, the applied-at stamp) comes from the injected Clock and the jitter from the
// injected generator, so tests drive reconnects on a SimulatedClock.
// LoadCachedSnapshot() lets a gateway start from the last good snapshot while the control plane
// is down. Thread-safe; ApplyFn is never called concurrently with itself.
#ifndef TURNPIKE_SERVER_CONFIG_CONFIG_WATCH_CLIENT_H_
#define TURNPIKE_SERVER_CONFIG_CONFIG_WATCH_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/log_severity.h"
#include "absl/base/thread_annotations.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "turnpike/config/v1/config_discovery.grpc.pb.h"
#include "turnpike/config/v1/snapshot.pb.h"

namespace turnpike {

class ConfigWatchClient {
 public:
  struct Options {
    std::string target;  // control plane address, e.g. "localhost:50052"
    std::string node_id;
    std::string snapshot_path;  // last good snapshot, written 0600 (binary proto); may be empty
    std::shared_ptr<grpc::ChannelCredentials> credentials;  // insecure or TLS
    // The gateway's node token (tpn_...), sent as `authorization: Bearer` on every call made on
    // channel() (common/bearer_channel.h): the watch stream, health reports, usage, leases.
    // Empty sends none, and the control plane refuses the calls.
    std::string node_token;
    absl::Duration initial_backoff = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(30);
    // Reported to the control plane (ListDataPlanes); optional.
    std::string build_version;
    // Receives notable events (NACKs, failed saves, stream errors); optional. Called on the
    // client's thread; must not block. (Libraries do not log; the gateway decides how.)
    std::function<void(absl::LogSeverity, const std::string&)> log;
  };
  // Validates and applies a snapshot; non-OK means NACK with that message. Called on the
  // client's own thread, one call at a time.
  using ApplyFn = std::function<absl::Status(const config::v1::Snapshot&)>;

  struct Stats {
    int64_t applied = 0;        // snapshots applied (cache included)
    int64_t nacked = 0;         // snapshots rejected by ApplyFn
    int64_t streams = 0;        // watch streams opened
    int64_t save_failures = 0;  // last-good snapshots that could not be written
    absl::Time last_applied = absl::InfinitePast();  // when the snapshot in force was applied
  };

  // `clock` and `rng` outlive the client; `rng` is drawn from only on the client's thread, so it
  // must not be shared with another thread.
  static absl::StatusOr<std::unique_ptr<ConfigWatchClient>> Create(Options options, ApplyFn apply,
                                                                   Clock& clock,
                                                                   absl::BitGenRef rng);
  ~ConfigWatchClient();
  ConfigWatchClient(const ConfigWatchClient&) = delete;
  ConfigWatchClient& operator=(const ConfigWatchClient&) = delete;

  // Loads snapshot_path if present and applies it; NOT_FOUND if there is none. DATA_LOSS if the
  // file is unreadable or not a snapshot; the ApplyFn's error if it rejects it.
  absl::Status LoadCachedSnapshot();
  // Background thread: connect, watch, ACK/NACK, save good snapshots, reconnect after a jittered
  // backoff on the injected Clock. Idempotent; does nothing after Stop().
  void Start();
  // Cancels the stream, joins; idempotent.
  void Stop();

  const std::string& node_id() const { return options_.node_id; }
  // The channel to the control plane, for other calls to it (HealthReporter).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // The version of the snapshot in force (empty before the first one).
  std::string applied_version() const;
  Stats stats() const;

 private:
  ConfigWatchClient(Options options, ApplyFn apply, Clock& clock, absl::BitGenRef rng);
  void Run();
  // One watch stream, until it ends. Returns true if any response arrived.
  bool RunStream();
  // Applies `snapshot` unless its version is already in force; saves it if applied.
  absl::Status ApplyAndSave(const config::v1::Snapshot& snapshot, bool save);
  absl::Status SaveSnapshot(const config::v1::Snapshot& snapshot);
  void Log(absl::LogSeverity severity, const std::string& message);

  // Constant after construction.
  const Options options_;
  const ApplyFn apply_;
  Clock& clock_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<config::v1::ConfigDiscoveryService::Stub> stub_;

  // Serialises ApplyFn calls (the watch thread vs. LoadCachedSnapshot()).
  absl::Mutex apply_mu_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string applied_version_ ABSL_GUARDED_BY(mu_);
  bool has_applied_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;

  // Used only by the watch thread.
  absl::BitGenRef rng_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_CONFIG_WATCH_CLIENT_H_
