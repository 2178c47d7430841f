// The status a caller is told when its request fails, as the attempt driver
// (server/exchange/attempt_driver.h) builds it: provider text through the route's redactor, the
// last error when every target gave up, then the details every failure carries (ProviderError,
// RetryInfo, PartialCompletion with the attempts and, after the commit point, the usage;
// docs/errors.md). Pure functions of their arguments: no I/O, no clock (the driver passes what
// it read), safe to call from any thread.
#ifndef TURNPIKE_SERVER_EXCHANGE_FAILURE_STATUS_H_
#define TURNPIKE_SERVER_EXCHANGE_FAILURE_STATUS_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/config/runtime_config.h"
#include "server/exchange/request_finished.h"
#include "turnpike/v1/common.pb.h"

namespace turnpike {

// A provider's free text (its error message, a quoted piece of a malformed payload) as it may
// reach the caller, the attempt list and every log: through the route's redactor unless the
// route opted in to CONTENT_POLICY_FULL. The provider's error type and code are kept.
absl::Status RedactProviderText(absl::Status status, const RouteEntry& route);

// The status of a request whose targets all gave up and that no fallback served: the last
// attempt's error (UNAVAILABLE naming the capability when no attempt ran); UNAVAILABLE when the
// failure was one of availability and the route's degradation forces it; with a RetryInfo of
// `retry_hint` (when a target is available again) unless the provider's retry-after says it.
absl::Status GiveUpStatus(absl::Status last_error, const RouteEntry& route,
                          bool availability_failure, absl::Duration retry_hint);

// What the driver knows of a request when it fails.
struct FailureFacts {
  // The caller's own deadline has passed (an upstream timeout is DEADLINE_EXCEEDED only then).
  bool caller_deadline_passed = false;
  // The target of the last attempt; null when no attempt ran.
  const TargetEntry* target = nullptr;
  // How many targets the attempts involved, and the attempts (null when none were planned).
  int targets_involved = 0;
  const google::protobuf::RepeatedPtrField<v1::Attempt>* attempts = nullptr;
  // The first output had reached the caller: the usage so far goes in PartialCompletion.
  bool committed = false;
};

// `status` (not OK) as the caller gets it: upstream timeouts UNAVAILABLE unless the caller's
// deadline passed; a provider's error named and attached as a ProviderError (and RetryInfo);
// UNAVAILABLE when several targets failed before the commit point; and a PartialCompletion with
// the attempts and, if committed, the usage in `event`.
absl::Status DecorateFailure(absl::Status status, const FailureFacts& facts,
                             const RouteEntry& route, const RequestFinished& event);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_FAILURE_STATUS_H_
