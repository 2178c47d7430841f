#include "server/grpc/limits_admission.h"

#include <memory>
#include <utility>

#include "server/admission/admission.h"
#include "server/config/route_selection.h"

namespace turnpike {

void AdmitToLimits(CallEnv* env, grpc::ServerContext* context, ExchangeRequest request,
                   const RequestSize& size,
                   std::function<void(ExchangeRequest, absl::Status)> then) {
  AdmitToLimits(
      env,
      [context](const std::string& key, const std::string& value) {
        context->AddInitialMetadata(key, value);
      },
      std::move(request), size, std::move(then));
}

void AdmitToLimits(CallEnv* env, AllowanceSink allowance, ExchangeRequest request,
                   const RequestSize& size,
                   std::function<void(ExchangeRequest, absl::Status)> then) {
  // The chain that serves (tier chain or variant, docs/routing.md) is chosen first, so its own
  // targets' prices bound the request's worst-case cost.
  request.route = &SelectRoute(*request.route, request.latency_class, request.caller,
                               request.caller_tier, request.request_id);
  if (env->admission == nullptr || request.route->limits.empty()) {
    then(std::move(request), absl::OkStatus());
    return;
  }
  AdmissionRequest ask;
  ask.route = request.route;
  ask.caller = request.caller;
  ask.tier = request.caller_tier;
  ask.end_user = request.end_user;
  ask.input_tokens = InputTokensUpperBound(size.text_bytes, size.items);
  ask.max_tokens = size.max_tokens;
  ask.text_output = size.text_output;
  ask.deadline = request.deadline;
  // The request waits inside the continuation; it is moved there, not copied.
  auto held = std::make_shared<ExchangeRequest>(std::move(request));
  env->admission->Admit(
      std::move(ask), [allowance = std::move(allowance), held,
                       then = std::move(then)](absl::StatusOr<Admitted> admitted) {
        if (!admitted.ok()) {
          then(std::move(*held), admitted.status());
          return;
        }
        for (const auto& [key, value] : admitted->metadata) allowance(key, value);
        held->admission = std::move(admitted->ticket);
        if (admitted->degraded) {
          held->route = &SelectRoute(*admitted->route, held->latency_class, held->caller,
                                     held->caller_tier, held->request_id);
          held->degraded = true;
        }
        then(std::move(*held), absl::OkStatus());
      });
}

}  // namespace turnpike
