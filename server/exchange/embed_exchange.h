// EmbedExchange is the embeddings protocol on top of the AttemptDriver: it builds each target's
// embeddings request (targets whose provider has no embeddings API are skipped as unsupported),
// parses the vectors and usage from the reply, and hands the result to a callback. Retries,
// failover, timeouts and errors are the driver's (attempt_driver.h).
//
// Threading: as AttemptDriver.
#ifndef TURNPIKE_SERVER_EXCHANGE_EMBED_EXCHANGE_H_
#define TURNPIKE_SERVER_EXCHANGE_EMBED_EXCHANGE_H_

#include <functional>
#include <memory>
#include <string>

#include "server/exchange/attempt_driver.h"
#include "turnpike/v1/embedding.pb.h"

namespace turnpike {

class EmbedExchange final : public AttemptDriver {
 public:
  // Called exactly once, on the transport thread, with the caller's answer.
  using DoneFn = std::function<void(const absl::Status&, const v1::EmbedResponse&)>;

  // `embed` is owned by the caller and outlives the exchange.
  static std::shared_ptr<EmbedExchange> Create(ExchangeRequest request,
                                               const v1::EmbedRequest* embed, DoneFn done,
                                               UpstreamTransport& transport, Resilience& resilience,
                                               RequestFinishedSink* sink,
                                               GatewayMetrics* metrics = nullptr);

 private:
  EmbedExchange(ExchangeRequest request, const v1::EmbedRequest* embed, DoneFn done,
                UpstreamTransport& transport, Resilience& resilience, RequestFinishedSink* sink,
                GatewayMetrics* metrics);

  // AttemptDriver.
  absl::StatusOr<HttpRequest> BuildRequest(const TargetEntry& target) override;
  void ResetAttempt() override { body_.clear(); }
  DataResult OnSuccessBody(std::string_view bytes) override;
  absl::Status OnSuccessEnd() override;
  void FillOutcome(const absl::Status& status, RequestFinished& event) override;
  void CaptureContent(RequestContent& content) const override;
  void Deliver(const absl::Status& status, const RequestFinished& event) override;

  // Constant after construction.
  const v1::EmbedRequest* const embed_;
  const DoneFn done_;

  // Transport-thread state.
  std::string body_;
  v1::EmbedResponse response_;
  bool served_ = false;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_EMBED_EXCHANGE_H_
