// How an upstream attempt ended, in the terms the retry policy decides on: the FailureKind of an
// attempt's final status (a provider's classified error, a transport failure, a timeout), and
// the AttemptOutcome the attempt driver hands the planner. Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_RESILIENCE_FAILURE_KIND_H_
#define TURNPIKE_SERVER_RESILIENCE_FAILURE_KIND_H_

#include <cstdint>

#include "absl/status/status.h"

namespace turnpike {

// What kind of failure ended an attempt; decides retries and what the upstream's state learns.
enum class FailureKind {
  kNone,            // success
  kCancelled,       // the client cancelled
  kDeadline,        // the request's deadline passed
  kInvalidRequest,  // the provider rejected the request (400, 404, 413, 422): never retried
  kUnsupported,     // this target cannot serve the request (e.g. no embeddings): next target
  kAuth,            // 401/403: the credential is wrong; it is benched, the chain moves on
  kQuotaExhausted,  // quota or spend limit: as kAuth
  kRateLimited,     // 429: the upstream cools down until its retry-after
  kConnect,         // connect, DNS or TLS failure: the request never reached the provider
  kTimeout,         // no first token in time, or a stall before the first token
  kUpstream,        // 5xx, 529, overload, reset, error event, malformed or cut-off stream
  kBadAnswer,       // a whole reply that does not fit the request (a classification outside its
               // labels): the next target, else the same one; the upstream's health is untouched
};

// The ErrorInfo reason that marks an attempt's status kBadAnswer (docs/classification.md).
inline constexpr char kBadAnswerReason[] = "ANSWER_NOT_A_LABEL";

// Classifies an attempt's final status. `deadline_passed`: the request's deadline has passed.
FailureKind ClassifyFailure(const absl::Status& status, bool deadline_passed);
const char* FailureKindName(FailureKind kind);

struct AttemptOutcome {
  absl::Status status;  // OK on success
  FailureKind kind = FailureKind::kNone;
  int http_status = 0;
  int64_t retry_after_ms = 0;  // the provider's hint, 0 if none
  bool committed = false;      // text had reached the client when it failed
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_RESILIENCE_FAILURE_KIND_H_
