// Clients for the control-plane end-to-end tests: the admin API through the generated
// AdminService stub (seeding the demo config and switching the demo route's model), what a caller
// of a gateway sees (the model serving its completion, health), and a set of callers streaming
// back to back that records every stream. Admin and GatewayClient are thread-compatible;
// StreamLoad is thread-safe.
#ifndef TURNPIKE_TESTS_INTEGRATION_CONTROL_PLANE_CLIENTS_H_
#define TURNPIKE_TESTS_INTEGRATION_CONTROL_PLANE_CLIENTS_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/bearer_channel.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "turnpike/admin/v1/admin.grpc.pb.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::testing {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using SteadyTime = std::chrono::steady_clock::time_point;

// The demo route every test switches between models.
inline constexpr char kCapability[] = "demo";

inline SteadyTime Now() { return std::chrono::steady_clock::now(); }
inline double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

template <typename Request>
Request DemoRequest(const std::string& text) {
  Request request;
  request.set_capability(kCapability);
  auto* m = request.add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content(text);
  return request;
}

inline void SetDeadline(grpc::ClientContext& ctx,
                        std::chrono::seconds timeout = std::chrono::seconds(10)) {
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
}

// A channel to the control plane at `address` whose calls carry `token`.
inline std::shared_ptr<grpc::Channel> ControlChannel(const std::string& address,
                                                     const std::string& token) {
  return CreateChannelWithBearerToken(address, grpc::InsecureChannelCredentials(),
                                      grpc::ChannelArguments(), token);
}

// The admin API of one control plane, through the generated stub, with an admin token.
class Admin {
 public:
  Admin(const std::string& address, const std::string& token)
      : stub_(admin::v1::AdminService::NewStub(ControlChannel(address, token))) {}

  // Issues a node token bound to `node_id` and writes it to `path` (mode 0600), for a gateway's
  // --node_token_file.
  grpc::Status WriteNodeToken(const std::string& node_id, const std::string& path) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateNodeTokenRequest req;
    req.set_name(node_id + "-token");
    req.set_node_id(node_id);
    admin::v1::CreateNodeTokenResponse resp;
    if (grpc::Status s = stub_->CreateNodeToken(&ctx, req, &resp); !s.ok()) return s;
    std::ofstream out(path, std::ios::trunc);
    out << resp.token() << "\n";
    out.close();
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return out ? grpc::Status::OK
               : grpc::Status(grpc::StatusCode::INTERNAL, "cannot write " + path);
  }

  // The demo configuration tools/dev up seeds: credential fake-key, provider fake (OpenAI
  // protocol, the fake provider), open route demo -> fake/`model`.
  grpc::Status SeedDemo(int fake_port, const std::string& model) {
    {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      admin::v1::CreateCredentialRequest req;
      req.mutable_credential()->set_name("fake-key");
      req.set_secret("fake-key");
      admin::v1::CreateCredentialResponse resp;
      if (grpc::Status s = stub_->CreateCredential(&ctx, req, &resp); !s.ok()) return s;
    }
    {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      admin::v1::CreateProviderRequest req;
      config::v1::Provider* spec = req.mutable_provider()->mutable_spec();
      spec->set_name("fake");
      spec->set_kind(config::v1::PROVIDER_KIND_OPENAI);
      spec->set_base_url(absl::StrCat("http://127.0.0.1:", fake_port, "/v1"));
      spec->set_credential("fake-key");
      admin::v1::CreateProviderResponse resp;
      if (grpc::Status s = stub_->CreateProvider(&ctx, req, &resp); !s.ok()) return s;
    }
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::CreateRouteRequest req;
    config::v1::Route* spec = req.mutable_route()->mutable_spec();
    spec->set_capability(kCapability);
    spec->set_allow_unauthenticated(true);
    auto* target = spec->add_targets();
    target->set_provider("fake");
    target->set_model(model);
    admin::v1::CreateRouteResponse resp;
    return stub_->CreateRoute(&ctx, req, &resp);
  }

  // Points the demo route at `model` (the change every test makes and then looks for).
  grpc::Status SetModel(const std::string& model) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    admin::v1::UpdateRouteRequest req;
    config::v1::Route* spec = req.mutable_route()->mutable_spec();
    spec->set_capability(kCapability);
    auto* target = spec->add_targets();
    target->set_provider("fake");
    target->set_model(model);
    req.mutable_update_mask()->add_paths("spec.targets");
    admin::v1::UpdateRouteResponse resp;
    return stub_->UpdateRoute(&ctx, req, &resp);
  }

  grpc::Status ConfigStatus(admin::v1::GetConfigStatusResponse* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    return stub_->GetConfigStatus(&ctx, admin::v1::GetConfigStatusRequest(), resp);
  }

  grpc::Status DataPlanes(admin::v1::ListDataPlanesResponse* resp) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    return stub_->ListDataPlanes(&ctx, admin::v1::ListDataPlanesRequest(), resp);
  }

  // True when the control plane's current version is acked by every node in `nodes`, each with
  // its watch stream connected.
  bool AllAckedCurrent(const std::vector<std::string>& nodes) {
    admin::v1::GetConfigStatusResponse status;
    admin::v1::ListDataPlanesResponse planes;
    if (!ConfigStatus(&status).ok() || !DataPlanes(&planes).ok()) return false;
    for (const std::string& node : nodes) {
      auto it = std::find_if(planes.data_planes().begin(), planes.data_planes().end(),
                             [&](const auto& p) { return p.node_id() == node; });
      if (it == planes.data_planes().end() || !it->connected() ||
          it->acked_version() != status.version()) {
        return false;
      }
    }
    return true;
  }

 private:
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
};

// What a caller of one gateway sees.
class GatewayClient {
 public:
  explicit GatewayClient(const std::string& address)
      : channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        completion_(v1::CompletionService::NewStub(channel_)),
        health_(Health::NewStub(channel_)) {}

  struct Served {
    grpc::Status status;
    std::string model;  // CompletionStart.model
  };
  Served Complete() {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CompleteResponse response;
    grpc::Status status =
        completion_->Complete(&ctx, DemoRequest<v1::CompleteRequest>("which model?"), &response);
    return {status, response.start().model()};
  }
  Served Stream() {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    auto reader = completion_->StreamCompletion(
        &ctx, DemoRequest<v1::StreamCompletionRequest>("which model?"));
    v1::StreamCompletionResponse response;
    std::string model;
    while (reader->Read(&response)) {
      if (response.has_start()) model = response.start().model();
    }
    return {reader->Finish(), model};
  }
  bool Serves(const std::string& model) {
    Served served = Complete();
    return served.status.ok() && served.model == model;
  }
  // The overall health status; UNKNOWN if the check itself fails.
  HealthCheckResponse::ServingStatus HealthStatus() {
    grpc::ClientContext ctx;
    SetDeadline(ctx, std::chrono::seconds(5));
    HealthCheckResponse response;
    if (!health_->Check(&ctx, HealthCheckRequest(), &response).ok())
      return HealthCheckResponse::UNKNOWN;
    return response.status();
  }
  v1::CompletionService::Stub& completion() { return *completion_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CompletionService::Stub> completion_;
  std::unique_ptr<Health::Stub> health_;
};

// Callers streaming back to back: `threads` loops of StreamCompletion against one gateway until
// Stop(), each stream recorded with when it was sent, when its CompletionStart arrived and how it
// ended. Caller t asks the fake provider for 5 + 2t chunks, so the callers' streams differ in
// length and never run in step: whenever one starts a stream, others are in the middle of one.
class StreamLoad {
 public:
  struct Record {
    int thread;
    SteadyTime sent, started, finished;
    std::string model;
    grpc::Status status;
  };

  StreamLoad(const std::string& address, int threads) : client_(address) {
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { Loop(t); });
  }
  ~StreamLoad() { Stop(); }

  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<Record> records() {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }
  // When a CompletionStart naming `model` first arrived, if one has.
  std::optional<SteadyTime> FirstStart(const std::string& model) {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<SteadyTime> first;
    for (const Record& r : records_) {
      if (r.model == model && (!first || r.started < *first)) first = r.started;
    }
    return first;
  }
  // Streams that ended, in all.
  size_t finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return records_.size();
  }

 private:
  void Loop(int thread) {
    while (!stop_) {
      Record record{thread, Now(), {}, {}, "", grpc::Status::OK};
      grpc::ClientContext ctx;
      SetDeadline(ctx, std::chrono::seconds(20));
      auto reader = client_.completion().StreamCompletion(
          &ctx, DemoRequest<v1::StreamCompletionRequest>(
                    absl::StrCat("keep streaming [[fake chunks=", 5 + 2 * thread, "]]")));
      v1::StreamCompletionResponse response;
      while (reader->Read(&response)) {
        if (response.has_start()) {
          record.started = Now();
          record.model = response.start().model();
        }
      }
      record.status = reader->Finish();
      record.finished = Now();
      std::lock_guard<std::mutex> lock(mu_);
      records_.push_back(std::move(record));
    }
  }

  GatewayClient client_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Record> records_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

// Every stream that failed, one per line, for a failure message.
inline std::string Failures(const std::vector<StreamLoad::Record>& records) {
  std::string out;
  for (const auto& r : records) {
    if (!r.status.ok()) {
      absl::StrAppend(&out, "thread ", r.thread, ": ", r.status.error_code(), " ",
                      r.status.error_message(), "\n");
    }
  }
  return out;
}

}  // namespace turnpike::testing

#endif  // TURNPIKE_TESTS_INTEGRATION_CONTROL_PLANE_CLIENTS_H_
