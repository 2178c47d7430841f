#include "server/grpc/completion_admission.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/grpc/authorizer.h"
#include "server/grpc/call_support.h"
#include "server/grpc/request_validation.h"

namespace turnpike {

namespace {

// Metering, snapshot and authorization: what both kinds of request pass after validation.
absl::Status AdmitCaller(CallEnv* env, CredentialsOf credentials, absl::Time deadline,
                         std::string_view capability, ExchangeRequest* exchange) {
  if (absl::Status s = CheckMetering(env->usage); !s.ok()) return s;
  exchange->config = env->config->Get();
  if (exchange->config == nullptr) {
    absl::Status status = absl::UnavailableError("gateway has no configuration yet");
    AttachReason(status, "NOT_READY");
    return status;
  }
  absl::StatusOr<Authorization> authorized =
      Authorize(*exchange->config, credentials(*exchange->config), capability, env->clock->Now());
  if (!authorized.ok()) return authorized.status();
  exchange->route = authorized->route;
  exchange->caller = std::move(authorized->caller);
  exchange->caller_tier = std::move(authorized->tier);
  exchange->deadline = deadline;
  return absl::OkStatus();
}

}  // namespace

absl::Status AdmitCompletionRequest(CallEnv* env, CredentialsOf credentials, absl::Time deadline,
                                    v1::StreamCompletionRequest* request,
                                    ExchangeRequest* exchange) {
  if (request->request_id().empty()) request->set_request_id(NewRequestId());
  exchange->request_id = request->request_id();
  exchange->end_user = request->user();
  exchange->tags = SortedTags(request->tags());
  if (absl::Status s = ValidateCompletionRequest(*request); !s.ok()) return s;
  exchange->latency_class = request->latency_class() == v1::LATENCY_CLASS_BATCH
                                ? LatencyClass::kBatch
                                : LatencyClass::kInteractive;
  return AdmitCaller(env, credentials, deadline, request->capability(), exchange);
}

absl::Status AdmitEmbedRequest(CallEnv* env, CredentialsOf credentials, absl::Time deadline,
                               v1::EmbedRequest* request, ExchangeRequest* exchange) {
  if (request->request_id().empty()) request->set_request_id(NewRequestId());
  exchange->request_id = request->request_id();
  exchange->end_user = request->user();
  exchange->tags = SortedTags(request->tags());
  if (absl::Status s = ValidateEmbedRequest(*request); !s.ok()) return s;
  return AdmitCaller(env, credentials, deadline, request->capability(), exchange);
}

absl::Status AdmitClassifyRequest(CallEnv* env, CredentialsOf credentials, absl::Time deadline,
                                  v1::ClassifyRequest* request,
                                  std::unique_ptr<ClassificationPlan>* plan,
                                  ExchangeRequest* exchange) {
  if (request->request_id().empty()) request->set_request_id(NewRequestId());
  exchange->request_id = request->request_id();
  exchange->end_user = request->user();
  exchange->tags = SortedTags(request->tags());
  if (absl::Status s = ValidateClassifyLabels(*request); !s.ok()) return s;
  *plan = PlanClassification(*request);
  if (absl::Status s = ValidateCompletionRequest((*plan)->completion); !s.ok()) return s;
  exchange->latency_class = request->latency_class() == v1::LATENCY_CLASS_BATCH
                                ? LatencyClass::kBatch
                                : LatencyClass::kInteractive;
  if (absl::Status s = AdmitCaller(env, credentials, deadline, request->capability(), exchange);
      !s.ok()) {
    return s;
  }
  if (!exchange->route->classification) {
    absl::Status status = absl::FailedPreconditionError(absl::StrCat(
        "capability \"", request->capability(),
        "\" is not a classification (its route's task is not ROUTE_TASK_CLASSIFICATION; "
        "docs/classification.md)"));
    AttachReason(status, "NOT_A_CLASSIFICATION");
    return status;
  }
  return absl::OkStatus();
}

absl::Status AdmitCompletion(CallEnv* env, const grpc::ByteBuffer& buffer,
                             const grpc::ServerContext& context,
                             v1::StreamCompletionRequest* request, ExchangeRequest* exchange) {
  if (absl::Status s = ParseCompletionRequest(buffer, request); !s.ok()) return s;
  return AdmitCompletionRequest(
      env,
      [&context](const RuntimeConfig& config) {
        return CallerCredentialsOf(context, config.has_cert_callers());
      },
      DeadlineFromGrpc(context, *env->clock), request, exchange);
}

RequestSize CompletionSize(const v1::StreamCompletionRequest& request) {
  RequestSize size;
  for (const v1::Message& m : request.messages()) size.text_bytes += m.content().size();
  size.items = request.messages_size();
  if (request.has_max_tokens()) size.max_tokens = request.max_tokens();
  return size;
}

RequestSize EmbedSize(const v1::EmbedRequest& request) {
  RequestSize size;
  for (const std::string& input : request.inputs()) size.text_bytes += input.size();
  size.items = request.inputs_size();
  size.text_output = false;
  return size;
}

ChatRequest ToChatRequest(const v1::StreamCompletionRequest& r) {
  ChatRequest c;
  c.messages = &r.messages();
  if (r.has_max_tokens()) c.max_tokens = r.max_tokens();
  if (r.has_temperature()) c.temperature = r.temperature();
  if (r.has_top_p()) c.top_p = r.top_p();
  c.stop.assign(r.stop().begin(), r.stop().end());
  c.tools = &r.tools();
  c.tool_choice = r.tool_choice();
  c.response_format = r.response_format();
  return c;
}

}  // namespace turnpike
