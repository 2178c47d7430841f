#include "server/grpc/health_service.h"

#include <algorithm>
#include <utility>

#include "server/grpc/call_env.h"

namespace turnpike {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthService::HealthService(std::vector<std::string> services) : services_(std::move(services)) {}

void HealthService::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (serving_ == serving) return;
  serving_ = serving;
  for (HealthWatcher* watcher : watchers_) {
    watcher->OnStatus(serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  }
}

std::optional<HealthCheckResponse::ServingStatus> HealthService::Status(
    const std::string& service) const {
  if (!service.empty() &&
      std::find(services_.begin(), services_.end(), service) == services_.end()) {
    return std::nullopt;
  }
  absl::MutexLock lock(&mu_);
  return serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

void HealthService::AddWatcher(const std::string& service, HealthWatcher* watcher) {
  // The status is read and the watcher registered under one lock, so no change falls between.
  absl::MutexLock lock(&mu_);
  if (!service.empty() &&
      std::find(services_.begin(), services_.end(), service) == services_.end()) {
    watcher->OnStatus(HealthCheckResponse::SERVICE_UNKNOWN);
    return;
  }
  watchers_.insert(watcher);
  watcher->OnStatus(serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
}

void HealthService::RemoveWatcher(HealthWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

namespace {

enum TagKind { kRequest = 0, kWrite = 1, kFinish = 2, kDone = 3 };

// One Check: answered at once from the current status.
class HealthCheckCall final : public CallBase {
 public:
  explicit HealthCheckCall(CallEnv* env) : CallBase(env), responder_(&ctx_) {
    env_->health->RequestCheck(&ctx_, &request_, &responder_, env_->cq, env_->cq, &request_tag_);
  }

  void Proceed(int kind, bool ok) override {
    if (kind != kRequest || !ok) {  // answered, or never started (the server is stopping)
      Unref();
      return;
    }
    if (!env_->shutting_down->load()) SpawnHealthCheckCall(env_);
    const std::optional<HealthCheckResponse::ServingStatus> status =
        env_->health->Status(request_.service());
    if (!status.has_value()) {
      responder_.FinishWithError(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"),
                                 &finish_tag_);
      return;
    }
    response_.set_status(*status);
    responder_.Finish(response_, grpc::Status::OK, &finish_tag_);
  }

 private:
  HealthCheckRequest request_;
  HealthCheckResponse response_;
  grpc::ServerAsyncResponseWriter<HealthCheckResponse> responder_;
  CallTag request_tag_{this, kRequest};
  CallTag finish_tag_{this, kFinish};
};

// One Watch: the current status, then each change, until the client leaves or the server stops
// (both cancel the call: the done tag). One write at a time; a change that comes while one is
// in flight is sent after it (only the latest).
class HealthWatchCall final : public CallBase, public HealthWatcher {
 public:
  explicit HealthWatchCall(CallEnv* env) : CallBase(env), writer_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    env_->health->RequestWatch(&ctx_, &request_, &writer_, env_->cq, env_->cq, &request_tag_);
  }

  void Proceed(int kind, bool ok) override {
    switch (kind) {
      case kRequest:
        if (!ok) {  // never started: the done tag never comes
          Unref();
          return;
        }
        if (!env_->shutting_down->load()) SpawnHealthWatchCall(env_);
        Ref();  // done tag
        env_->health->AddWatcher(request_.service(), this);
        Unref();  // the accept's reference; writes and the done tag hold their own
        return;
      case kWrite: {
        {
          absl::MutexLock lock(&mu_);
          writing_ = false;
          if (ok && pending_.has_value()) Send(*pending_);
          pending_.reset();
        }
        Unref();
        return;
      }
      case kDone:
        env_->health->RemoveWatcher(this);  // no OnStatus() after this returns
        Unref();
        return;
    }
  }

  void OnStatus(HealthCheckResponse::ServingStatus status) override {
    absl::MutexLock lock(&mu_);
    if (writing_) {
      pending_ = status;
      return;
    }
    Send(status);
  }

 private:
  void Send(HealthCheckResponse::ServingStatus status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    Ref();  // write tag
    response_.set_status(status);
    writer_.Write(response_, &write_tag_);  // serializes `response_` before it returns
  }

  HealthCheckRequest request_;
  grpc::ServerAsyncWriter<HealthCheckResponse> writer_;
  CallTag request_tag_{this, kRequest};
  CallTag write_tag_{this, kWrite};
  CallTag done_tag_{this, kDone};

  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<HealthCheckResponse::ServingStatus> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void SpawnHealthCheckCall(CallEnv* env) { new HealthCheckCall(env); }
void SpawnHealthWatchCall(CallEnv* env) { new HealthWatchCall(env); }

}  // namespace turnpike
