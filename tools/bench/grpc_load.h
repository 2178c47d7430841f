// The gRPC side of the load generator: drives turnpike.v1.CompletionService (the gateway or the
// gRPC floor server) with the completion-queue async client API. Each worker thread owns one
// completion queue, its own channels (each its own TCP connection, so one HTTP/2 connection is
// not the bottleneck) and its own Recorder; a call costs a few queue events and no thread.
#ifndef TURNPIKE_TOOLS_BENCH_GRPC_LOAD_H_
#define TURNPIKE_TOOLS_BENCH_GRPC_LOAD_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/bench/load_plan.h"
#include "tools/bench/recorder.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike::bench {

struct GrpcTarget {
  std::string address;  // host:port
  int channels = 2;     // in total, spread over the workers (at least one each)
  bool unary = false;   // Complete instead of StreamCompletion
  std::vector<std::pair<std::string, std::string>> metadata;  // sent with every call
  v1::StreamCompletionRequest request;  // used for both RPCs (they are wire-identical)
  absl::Duration connect_timeout = absl::Seconds(10);
  // PEM CA bundle: connect over TLS trusting it (the address's host must be in the server's
  // certificate); empty = plaintext.
  std::string tls_ca_pem;
};

// Connects (failing with UNAVAILABLE if a channel is not ready within connect_timeout), runs the
// load and returns the merged measurements.
absl::StatusOr<Recorder> RunGrpcLoad(const LoadOptions& options, const GrpcTarget& target);

}  // namespace turnpike::bench

#endif  // TURNPIKE_TOOLS_BENCH_GRPC_LOAD_H_
