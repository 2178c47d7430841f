#include "server/exchange/embed_exchange.h"

#include "absl/strings/str_cat.h"

namespace turnpike {
namespace {

constexpr size_t kMaxBody = 64 << 20;

}  // namespace

std::shared_ptr<EmbedExchange> EmbedExchange::Create(ExchangeRequest request,
                                                     const v1::EmbedRequest* embed, DoneFn done,
                                                     UpstreamTransport& transport,
                                                     Resilience& resilience,
                                                     RequestFinishedSink* sink,
                                                     GatewayMetrics* metrics) {
  return std::shared_ptr<EmbedExchange>(new EmbedExchange(
      std::move(request), embed, std::move(done), transport, resilience, sink, metrics));
}

EmbedExchange::EmbedExchange(ExchangeRequest request, const v1::EmbedRequest* embed, DoneFn done,
                             UpstreamTransport& transport, Resilience& resilience,
                             RequestFinishedSink* sink, GatewayMetrics* metrics)
    : AttemptDriver(std::move(request), transport, resilience, sink, metrics),
      embed_(embed),
      done_(std::move(done)) {}

absl::StatusOr<HttpRequest> EmbedExchange::BuildRequest(const TargetEntry& target) {
  EmbedParams params;
  params.model = target.model;
  for (const std::string& input : embed_->inputs()) params.inputs.push_back(input);
  if (embed_->has_dimensions()) params.dimensions = embed_->dimensions();
  params.user = request().end_user;
  absl::StatusOr<HttpRequest> http = target.provider->adapter->BuildEmbedRequest(params);
  if (!http.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("provider \"", target.provider->name,
                     "\" cannot serve embeddings: ", http.status().message()));
  }
  return http;
}

TransferHandler::DataResult EmbedExchange::OnSuccessBody(std::string_view bytes) {
  if (body_.size() + bytes.size() > kMaxBody) {
    SetAttemptError(absl::ResourceExhaustedError(
        absl::StrCat("upstream response larger than ", kMaxBody, " bytes")));
    return DataResult::kAbort;
  }
  body_.append(bytes);
  return DataResult::kContinue;
}

absl::Status EmbedExchange::OnSuccessEnd() {
  const TargetEntry& t = target();
  absl::StatusOr<EmbedResult> result = t.provider->adapter->ParseEmbedResponse(body_);
  if (!result.ok()) return result.status();
  MarkCommitted();
  response_.Clear();
  response_.set_request_id(request().request_id);
  response_.set_provider(t.provider->name);
  response_.set_model(t.model);
  for (size_t i = 0; i < result->vectors.size(); ++i) {
    v1::Embedding* e = response_.add_embeddings();
    e->set_index(static_cast<int>(i));
    e->mutable_values()->Add(result->vectors[i].begin(), result->vectors[i].end());
  }
  response_.mutable_usage()->set_input_tokens(result->input_tokens);
  response_.mutable_usage()->set_cost_usd_micros(
      RuntimeConfig::CostOf(t, TokenCounts{.input = result->input_tokens}).total);
  served_ = true;
  return absl::OkStatus();
}

void EmbedExchange::CaptureContent(RequestContent& content) const {
  if (embed_ == nullptr) return;
  content.inputs.assign(embed_->inputs().begin(), embed_->inputs().end());
}

void EmbedExchange::FillOutcome(const absl::Status& status, RequestFinished& event) {
  if (!status.ok() || !served_) return;  // a failed embedding is not billed
  event.input_tokens = response_.usage().input_tokens();
  event.cost_usd_micros = response_.usage().cost_usd_micros();
  event.input_cost_usd_micros = event.cost_usd_micros;
  event.cost_known = target().price.has_value();
}

void EmbedExchange::Deliver(const absl::Status& status, const RequestFinished& event) {
  *response_.mutable_attempts() = event.attempts;
  done_(status, response_);
}

}  // namespace turnpike
