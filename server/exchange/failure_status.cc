#include "server/exchange/failure_status.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/redactor.h"
#include "common/status.h"
#include "common/string_view_compat.h"
#include "server/providers/provider_adapter.h"

namespace turnpike {

absl::Status RedactProviderText(absl::Status status, const RouteEntry& route) {
  if (status.ok() || route.content_policy == config::v1::CONTENT_POLICY_FULL) return status;
  absl::optional<absl::Cord> payload = status.GetPayload(kProviderErrorPayloadUrl);
  if (!payload.has_value() && status.code() != absl::StatusCode::kInternal) return status;
  const Redactor& redactor = route.redactor != nullptr ? *route.redactor : *Redactor::Default();
  status = WithMessage(status, redactor.Redact(Std(status.message())));
  if (payload.has_value()) {
    v1::ProviderError detail;
    if (detail.ParseFromString(std::string(*payload))) {
      detail.set_message(redactor.Redact(detail.message()));
      status.SetPayload(kProviderErrorPayloadUrl, absl::Cord(detail.SerializeAsString()));
    }
  }
  return status;
}

absl::Status GiveUpStatus(absl::Status last_error, const RouteEntry& route,
                          bool availability_failure, absl::Duration retry_hint) {
  absl::Status status = std::move(last_error);
  if (status.ok()) {
    // No attempt ran: every target was skipped (cool-downs or ejections beyond the deadline).
    status = absl::UnavailableError(
        absl::StrCat("no target of capability \"", route.capability, "\" is available now"));
  }
  if (availability_failure && route.degradation.force_unavailable &&
      status.code() != absl::StatusCode::kUnavailable) {
    status = WithCode(status, absl::StatusCode::kUnavailable);
  }
  // When a target will be available again (a cool-down or an ejection ends), say so, unless the
  // provider's own retry-after already does.
  if (retry_hint > absl::ZeroDuration() &&
      (status.code() == absl::StatusCode::kUnavailable ||
       status.code() == absl::StatusCode::kResourceExhausted)) {
    std::optional<ProviderError> error = ProviderErrorFromStatus(status);
    if (!error.has_value() || error->retry_after_ms == 0) {
      AttachRetryInfo(status,
                      absl::ToInt64Milliseconds(absl::Ceil(retry_hint, absl::Milliseconds(1))));
    }
  }
  return status;
}

absl::Status DecorateFailure(absl::Status status, const FailureFacts& facts,
                             const RouteEntry& route, const RequestFinished& event) {
  // Upstream timeouts are UNAVAILABLE to the caller unless the caller's own deadline passed.
  if (status.code() == absl::StatusCode::kDeadlineExceeded && !facts.caller_deadline_passed) {
    status = WithCode(status, absl::StatusCode::kUnavailable);
  }
  std::optional<ProviderError> error = ProviderErrorFromStatus(status);
  std::string prefix;
  if (error.has_value() && facts.target != nullptr) {
    const TargetEntry& t = *facts.target;
    v1::ProviderError detail;
    detail.set_provider(t.provider->name);
    detail.set_model(t.model);
    detail.set_http_status(error->http_status);
    detail.set_error_type(error->type);
    detail.set_error_code(error->code);
    detail.set_message(error->message);
    detail.set_retry_after_ms(error->retry_after_ms);
    prefix = absl::StrCat(t.provider->name, ": ");
    AttachDetail(status, detail);
    if (error->retry_after_ms > 0) AttachRetryInfo(status, error->retry_after_ms);
  }
  // Several targets failed: the caller cannot act on one provider's error code, so the request
  // is UNAVAILABLE (the attempt list says what each target did).
  const int targets = facts.targets_involved;
  if (!facts.committed && targets > 1) {
    switch (status.code()) {
      case absl::StatusCode::kCancelled:
      case absl::StatusCode::kDeadlineExceeded:
      case absl::StatusCode::kInvalidArgument:
        break;
      default:
        status = WithCode(status, absl::StatusCode::kUnavailable);
        prefix = absl::StrCat("all ", targets, " targets of \"", route.capability,
                              "\" failed; last: ", prefix);
    }
  }
  if (!prefix.empty()) status = WithMessagePrefix(status, prefix);
  v1::PartialCompletion partial;
  if (facts.attempts != nullptr) *partial.mutable_attempts() = *facts.attempts;
  if (facts.committed) {
    v1::Usage* usage = partial.mutable_usage();
    usage->set_input_tokens(event.input_tokens);
    usage->set_output_tokens(event.output_tokens);
    usage->set_cost_usd_micros(event.cost_usd_micros);
    usage->set_cached_input_tokens(event.cached_input_tokens);
    usage->set_cache_write_input_tokens(event.cache_write_input_tokens);
    usage->set_reasoning_output_tokens(event.reasoning_output_tokens);
  }
  AttachDetail(status, partial);
  return status;
}

}  // namespace turnpike
