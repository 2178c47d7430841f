// GET /v1/models and /v1/models/{id}: the capabilities the caller may use, answered on the door's
// thread from the current snapshot (docs/openai-compatible.md).
#include "common/status.h"
#include "server/grpc/authorizer.h"
#include "server/http/http_call.h"
#include "server/http/openai_wire.h"

namespace turnpike {
namespace {

class ModelsCall final : public HttpFrontDoor::Call {
 public:
  using Call::Call;

  void Run(std::string_view one) {
    authorization_ = Headers("Authorization");
    std::shared_ptr<const RuntimeConfig> config = env_->config->Get();
    if (config == nullptr) {
      absl::Status status = absl::UnavailableError("gateway has no configuration yet");
      AttachReason(status, "NOT_READY");
      ReplyError(status);
      return;
    }
    const CallerCredentials credentials = Credentials();
    if (!one.empty()) {
      absl::StatusOr<Authorization> a = Authorize(*config, credentials, one, env_->clock->Now());
      if (!a.ok()) {
        if (!HoldRefusal(a.status())) ReplyError(a.status());
      } else {
        Reply(200, "application/json", ModelJson(one));
      }
      return;
    }
    std::vector<std::string> allowed;
    absl::Status unauthenticated;
    for (const std::string& capability : config->Capabilities()) {
      absl::StatusOr<Authorization> a =
          Authorize(*config, credentials, capability, env_->clock->Now());
      if (a.ok()) {
        allowed.push_back(capability);
      } else if (a.status().code() == absl::StatusCode::kUnauthenticated) {
        unauthenticated = a.status();
      }
    }
    // A bad key, or no key where every route is closed: 401, as for any other request.
    if (allowed.empty() && !unauthenticated.ok()) {
      if (!HoldRefusal(unauthenticated)) ReplyError(unauthenticated);
      return;
    }
    Reply(200, "application/json", ModelListJson(allowed));
  }

  void Cancel() override {}

 private:
  void StartExchange(ExchangeRequest) override {}  // answered from the snapshot: no exchange
};

}  // namespace

void RunModelsCall(HttpFrontDoor* door, CallEnv* env, evhttp_request* request,
                   std::string_view one) {
  (new ModelsCall(door, env, request))->Run(one);
}

}  // namespace turnpike
