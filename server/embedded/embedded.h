// turnpike::Embedded is the gateway's data plane as a library (docs/embedded.md): an application
// links `turnpike_embedded` and runs completions and embeddings in its own process, with no gRPC
// hop, on exactly the core the gRPC server and the HTTP front door use: the same config snapshot
// (a file, or the control plane's watch stream), the same caller authorization, rate limits and
// budgets (server/grpc/completion_admission.h, limits_admission.h), the same ChatExchange /
// EmbedExchange on the attempt driver (routing, retries, failover, breakers, cache, degradation)
// and the same RequestFinished event, which feeds the same sinks: request metrics, admission
// settlement, and with a control plane the usage spool and audit evidence. Errors are the
// absl::Status the gRPC door turns into its gRPC status: same codes, same details
// (docs/errors.md).
//
// Thread safety: every call method may be called from any thread, concurrently. Callbacks run on
// one of the library's upstream-loop threads; they must be short and must not block, and must not
// call the blocking methods (Complete, Embed) of the same Embedded. Create and destroy from one
// thread; the destructor drains calls in flight (Options::drain_timeout), then cancels the rest
// and waits for every callback to have returned.
#ifndef TURNPIKE_SERVER_EMBEDDED_EMBEDDED_H_
#define TURNPIKE_SERVER_EMBEDDED_EMBEDDED_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/exchange/request_finished.h"
#include "turnpike/v1/completion.pb.h"
#include "turnpike/v1/embedding.pb.h"

namespace turnpike {

class Embedded {
 public:
  struct Options {
    // Exactly one of the two: a config file (the JSON form of turnpike.config.v1.Snapshot, as
    // turnpike-gateway --config), or a control plane's address (host:port), whose watch stream
    // delivers the snapshots (as turnpike-gateway --control_plane).
    std::string config_file;
    std::string control_plane;
    // With a control plane: this process's node id (default "embedded-<host>-<pid>"), its node
    // token file (tpn_..., AdminService/CreateNodeToken), the last-good snapshot cache (empty:
    // none), and the usage spool directory (empty: no metering). Plaintext to the control plane.
    std::string node_id;
    std::string node_token_file;
    std::string snapshot_cache;
    std::string usage_spool_dir;
    absl::Duration usage_commit_interval = absl::Milliseconds(20);
    absl::Duration health_report_interval = absl::Seconds(5);
    // Upstream event loops (threads that run the provider transfers and the callbacks).
    int upstream_loops = 1;
    // How long the destructor lets calls in flight finish before cancelling them.
    absl::Duration drain_timeout = absl::Seconds(10);
    // Also told of every finished request, after the built-in sinks (metrics, admission, usage).
    // Each must be thread-safe, must not block and must outlive the Embedded.
    std::vector<RequestFinishedSink*> sinks;
    // Warnings of the library's threads (config NACKs, lease trouble); optional, must not block.
    std::function<void(const std::string&)> log;
  };

  // Per call.
  struct CallOptions {
    // The caller key (tpk_...), as a gRPC caller sends it in `authorization: Bearer <key>`; empty
    // for an open route.
    std::string caller_key;
    // The call's deadline, from now; infinite for none.
    absl::Duration timeout = absl::InfiniteDuration();
    // A W3C traceparent, recorded with the request; optional.
    std::string traceparent;
  };

  // A streamed completion's callbacks, on an upstream-loop thread, in this order: on_start once
  // (who serves), on_text for each piece of the reply, on_done exactly once, last (OK with the
  // finish reason, usage and every attempt; or the error, with PartialCompletion when text had
  // already been delivered). A request refused before any attempt (bad field, unknown caller,
  // limit) gets only on_done, on the calling thread or the lease manager's. Empty ones are skipped.
  struct StreamCallbacks {
    std::function<void(const v1::CompletionStart&)> on_start;
    std::function<void(std::string_view)> on_text;
    // A fragment of a tool call the model makes (docs/tools.md), in order: the call's id and name
    // on its first fragment, the arguments' JSON text as the provider streamed it.
    std::function<void(const v1::ToolCallDelta&)> on_tool_call;
    std::function<void(const absl::Status&, const v1::CompletionFinish&)> on_done;
  };

  // A streamed completion in flight. Dropping the handle does not cancel the call.
  class Stream {
   public:
    virtual ~Stream() = default;
    // Ends the call: the provider's transfer is stopped and on_done gets CANCELLED (or the outcome
    // that was already decided). Any thread; idempotent.
    virtual void Cancel() = 0;
    // Blocks until on_done has returned. Not from a callback.
    virtual void Wait() = 0;
  };

  // Starts the core: loads the config file (INVALID_ARGUMENT if it is not a valid snapshot) or
  // starts watching the control plane (the first snapshot arrives asynchronously: WaitUntilReady).
  static absl::StatusOr<std::unique_ptr<Embedded>> Create(Options options);
  ~Embedded();
  Embedded(const Embedded&) = delete;
  Embedded& operator=(const Embedded&) = delete;

  // OK once a snapshot is in force; UNAVAILABLE if none arrived within `timeout`.
  absl::Status WaitUntilReady(absl::Duration timeout);

  // Streams a completion to `callbacks`.
  std::unique_ptr<Stream> StreamCompletion(v1::StreamCompletionRequest request,
                                           const CallOptions& options, StreamCallbacks callbacks);
  // The whole completion at once (the gRPC Complete call). Blocks.
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& request,
                                                const CallOptions& options);
  // Embeddings (the gRPC Embed call). Blocks.
  absl::StatusOr<v1::EmbedResponse> Embed(v1::EmbedRequest request, const CallOptions& options);

  // Calls started and not yet finished.
  int in_flight() const;

  class Core;  // embedded_core.h

 private:
  explicit Embedded(std::unique_ptr<Core> core);
  const std::unique_ptr<Core> core_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EMBEDDED_EMBEDDED_H_
