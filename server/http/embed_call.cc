// POST /v1/embeddings: OpenAI's embeddings request in, the gateway's EmbedExchange, OpenAI's
// embedding list out (docs/openai-compatible.md).
#include "server/exchange/embed_exchange.h"
#include "server/exchange/exchange_handle.h"
#include "server/grpc/completion_admission.h"
#include "server/http/http_call.h"
#include "server/http/openai_wire.h"

namespace turnpike {
namespace {

class EmbedCall final : public HttpFrontDoor::Call {
 public:
  using Call::Call;

  // Event thread.
  void Run() {
    authorization_ = Headers("Authorization");
    absl::StatusOr<std::string> body = Body();
    absl::StatusOr<OpenAiEmbedRequest> parsed =
        body.ok() ? ParseOpenAiEmbedRequest(*body)
                  : absl::StatusOr<OpenAiEmbedRequest>(body.status());
    if (parsed.ok()) embed_ = *std::move(parsed);
    ExchangeRequest r = BeginRequest(RequestMethod::kEmbed);
    absl::Status status = parsed.status();
    if (status.ok()) {
      status = AdmitEmbedRequest(
          env_, [this](const RuntimeConfig&) { return Credentials(); }, absl::InfiniteFuture(),
          &embed_.request, &r);
    }
    request_id_ = embed_.request.request_id();
    AdmitAndStart(status, std::move(r), EmbedSize(embed_.request));
  }

  void Cancel() override { exchange_.Cancel(); }

 private:
  void StartExchange(ExchangeRequest r) override {
    Ref();  // the exchange's reference
    exchange_.Start(EmbedExchange::Create(
        std::move(r), &embed_.request,
        [this](const absl::Status& s, const v1::EmbedResponse& response) {
          exchange_.Done();
          std::string body =
              s.ok() ? EmbeddingListJson(response, embed_.request.capability(), embed_.base64) : "";
          PostHere([this, s, body = std::move(body)] {
            if (!s.ok()) {
              ReplyError(s);
              return;
            }
            AddAllowanceHeaders();
            Reply(200, "application/json", body);
          });
          Unref();
        },
        *env_->transport, *env_->resilience, env_->finished, env_->metrics));
  }

  OpenAiEmbedRequest embed_;
  ExchangeHandle<EmbedExchange> exchange_;
};

}  // namespace

void RunEmbedCall(HttpFrontDoor* door, CallEnv* env, evhttp_request* request) {
  (new EmbedCall(door, env, request))->Run();
}

}  // namespace turnpike
