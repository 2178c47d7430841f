// What every asynchronous call object needs from the server: the raw services to request calls
// on, its completion queue, the config store, the upstream transport, the resilience state and
// the request-finished sink. Owned by
// GatewayServer and outlives every call. The tag protocol: each CQ tag is a CallTag whose
// call->Proceed(kind, ok) runs on the completion-queue thread.
#ifndef TURNPIKE_SERVER_GRPC_CALL_ENV_H_
#define TURNPIKE_SERVER_GRPC_CALL_ENV_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "common/clock.h"
#include "common/peer_throttle.h"
#include "grpcpp/alarm.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "server/config/config_store.h"
#include "server/exchange/request_finished.h"
#include "server/resilience/resilience.h"
#include "server/telemetry/gateway_metrics.h"
#include "server/upstream/transport.h"
#include "server/usage/usage_recorder.h"
#include "turnpike/v1/classification.grpc.pb.h"
#include "turnpike/v1/completion.grpc.pb.h"
#include "turnpike/v1/embedding.grpc.pb.h"

namespace turnpike {

class Admission;      // server/admission/admission.h
class HealthService;  // server/grpc/health_service.h

// Raw (ByteBuffer) async services: requests are parsed by request_validation so bad bytes get
// a precise INVALID_ARGUMENT, and responses are serialized once into a reusable buffer.
using RawCompletionService = v1::CompletionService::WithRawMethod_StreamCompletion<
    v1::CompletionService::WithRawMethod_Complete<v1::CompletionService::Service>>;
using RawEmbeddingService =
    v1::EmbeddingService::WithRawMethod_Embed<v1::EmbeddingService::Service>;
using RawClassificationService =
    v1::ClassificationService::WithRawMethod_Classify<v1::ClassificationService::Service>;

struct CallEnv {
  RawCompletionService* completion = nullptr;
  RawEmbeddingService* embedding = nullptr;
  RawClassificationService* classification = nullptr;
  HealthService* health = nullptr;
  grpc::ServerCompletionQueue* cq = nullptr;
  ConfigStore* config = nullptr;
  // The upstream transport of this queue's calls.
  UpstreamTransport* transport = nullptr;
  // Circuit breakers, retry budgets and response caches shared by every request.
  Resilience* resilience = nullptr;
  std::atomic<bool>* shutting_down = nullptr;
  // Call objects alive (accepting or serving); shutdown waits for it to reach zero.
  std::atomic<int>* live_calls = nullptr;
  // Calls accepted and not yet destroyed (in flight); shutdown drains until it is zero.
  std::atomic<int>* active_calls = nullptr;
  // Where every request ends (access log, metrics; later usage and audit). Never null.
  RequestFinishedSink* finished = nullptr;
  // Request metrics (internal overhead); null when the gateway runs without them.
  GatewayMetrics* metrics = nullptr;
  Clock* clock = &Clock::Real();
  // Metering; null when the gateway does not meter (a file config). When it says it is not
  // accepting (its spool is full in reject mode), new requests are refused.
  const UsageRecorder* usage = nullptr;
  // Rate limits and budgets; null when the gateway enforces none (tests of other parts).
  Admission* admission = nullptr;
  // Slows down key guessing per peer address (common/peer_throttle.h); null: refusals at once.
  PeerThrottle* auth_throttle = nullptr;
};

class CallBase;

// A completion-queue tag: call->Proceed(kind, ok) runs when it completes.
struct CallTag {
  CallBase* call;
  int kind;
};

// What every call object shares: its server context, a reference count (the pending accept, each
// CQ operation in flight and the exchange each hold one; the last Unref deletes the call), and
// the server's counts of live and accepted calls that shutdown waits on.
class CallBase {
 public:
  virtual ~CallBase() {
    if (accepted_) env_->active_calls->fetch_sub(1);
    env_->live_calls->fetch_sub(1);
  }
  virtual void Proceed(int kind, bool ok) = 0;

  // The CQ tag kind of a held refusal's alarm; each call's Proceed runs AnswerHeldRefusal() for it.
  static constexpr int kHeldRefusal = 100;

 protected:
  explicit CallBase(CallEnv* env) : env_(env) { env_->live_calls->fetch_add(1); }
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // A call arrived: it is in flight until the object is destroyed.
  void MarkAccepted() {
    accepted_ = true;
    env_->active_calls->fetch_add(1);
  }

  // A failed authentication's refusal waits for the peer's throttle (docs/security.md, "Brute
  // force"): true when `answer` will run later on this call's completion queue (an alarm, which
  // holds a reference; no thread waits); false when the caller answers now. Any other refusal,
  // and a valid key, never waits.
  bool HoldRefusal(const absl::Status& status, std::function<void()> answer) {
    if (status.code() != absl::StatusCode::kUnauthenticated || env_->auth_throttle == nullptr) {
      return false;
    }
    const PeerThrottle::Verdict verdict =
        env_->auth_throttle->RecordFailure(PeerAddressKey(ctx_.peer()));
    if (!verdict.throttled()) return false;
    held_answer_ = std::move(answer);
    held_alarm_ = std::make_unique<grpc::Alarm>();
    Ref();
    held_alarm_->Set(env_->cq,
                     std::chrono::system_clock::now() +
                         std::chrono::microseconds(absl::ToInt64Microseconds(verdict.hold)),
                     &held_tag_);
    return true;
  }
  void AnswerHeldRefusal() {
    env_->auth_throttle->Release();
    std::function<void()> answer = std::move(held_answer_);
    answer();
    Unref();
  }

  CallEnv* const env_;
  grpc::ServerContext ctx_;

 private:
  std::atomic<int> refs_{1};
  bool accepted_ = false;
  std::unique_ptr<grpc::Alarm> held_alarm_;
  std::function<void()> held_answer_;
  CallTag held_tag_{this, kHeldRefusal};
};

// Starts accepting one call of each kind on env's completion queue; each accepted call replaces
// itself, so the number of pending accepts stays constant.
void SpawnStreamCompletionCall(CallEnv* env);
void SpawnCompleteCall(CallEnv* env);
void SpawnEmbedCall(CallEnv* env);
void SpawnClassifyCall(CallEnv* env);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_CALL_ENV_H_
