#include "tools/bench/floor_server.h"

#include <grpcpp/alarm.h>

#include <chrono>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace turnpike::bench {
namespace {

constexpr int kMaxChunks = 100000;
constexpr int kMaxDelayMs = 60000;
// Requests kept posted per method and queue, so a burst of new calls does not wait for re-arming.
constexpr int kPostedPerMethod = 32;

// Each thread serializes its own copies: protobuf caches sizes inside messages, so sharing
// one message between threads that serialize it concurrently is a data race.
struct Messages {
  explicit Messages(int default_chunks) {
    v1::CompletionStart* s = start.mutable_start();
    s->set_request_id("floor-0000000000000000");
    s->set_provider("floor");
    s->set_model("floor-model");
    s->set_attempt(1);
    static constexpr std::string_view kWords[] = {"Hello", " from", " the", " fake", " provider"};
    for (std::string_view word : kWords)
      deltas.emplace_back().mutable_delta()->set_text(std::string(word));
    v1::CompletionFinish* f = finish.mutable_finish();
    f->set_finish_reason(v1::FINISH_REASON_STOP);
    f->mutable_usage()->set_input_tokens(32);
    f->mutable_usage()->set_output_tokens(default_chunks);
    f->set_provider_finish_reason("stop");
    complete = Complete(default_chunks);
  }

  v1::CompleteResponse Complete(int chunks) const {
    v1::CompleteResponse r;
    *r.mutable_start() = start.start();
    for (int i = 0; i < chunks; ++i)
      r.mutable_text()->append(deltas[i % deltas.size()].delta().text());
    *r.mutable_finish() = finish.finish();
    return r;
  }

  v1::StreamCompletionResponse start;
  std::vector<v1::StreamCompletionResponse> deltas;
  v1::StreamCompletionResponse finish;
  v1::CompleteResponse complete;
};

struct ThreadState {
  v1::CompletionService::AsyncService* service;
  grpc::ServerCompletionQueue* cq;
  const FloorServer::Options* options;
  Messages messages;
};

enum Op : uintptr_t { kAccepted = 1, kWritten = 2, kAlarm = 3, kDone = 4 };
constexpr uintptr_t kOpMask = 7;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void OnEvent(Op op, bool ok) = 0;

 protected:
  void* Tag(Op op) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(this) | op); }

  static int MetadataInt(const grpc::ServerContext& ctx, const char* key, int fallback, int max) {
    const auto& md = ctx.client_metadata();
    const auto it = md.find(key);
    int value;
    if (it == md.end() ||
        !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &value) ||
        value < 0 || value > max) {
      return fallback;
    }
    return value;
  }
};

class StreamHandler final : public Handler {
 public:
  explicit StreamHandler(ThreadState& state) : state_(state), writer_(&context_) {
    state.service->RequestStreamCompletion(&context_, &request_, &writer_, state.cq, state.cq,
                                           Tag(kAccepted));
  }

  void OnEvent(Op op, bool ok) override {
    switch (op) {
      case kAccepted:
        if (!ok) {  // shutting down
          delete this;
          return;
        }
        new StreamHandler(state_);
        chunks_ = MetadataInt(context_, "x-fake-chunks", state_.options->chunks, kMaxChunks);
        delay_ms_ = MetadataInt(context_, "x-fake-chunk-delay-ms", state_.options->chunk_delay_ms,
                                kMaxDelayMs);
        writer_.Write(state_.messages.start, Tag(kWritten));
        return;
      case kWritten:
        if (!ok) {  // the client went away
          writer_.Finish(grpc::Status::CANCELLED, Tag(kDone));
          return;
        }
        Next();
        return;
      case kAlarm:
        WriteDelta();
        return;
      case kDone:
        delete this;
        return;
    }
  }

 private:
  void Next() {
    if (sent_ >= chunks_) {
      writer_.WriteAndFinish(state_.messages.finish, grpc::WriteOptions(), grpc::Status::OK,
                             Tag(kDone));
    } else if (delay_ms_ > 0 && sent_ > 0) {
      alarm_ = std::make_unique<grpc::Alarm>();
      alarm_->Set(state_.cq,
                  std::chrono::system_clock::now() + std::chrono::milliseconds(delay_ms_),
                  Tag(kAlarm));
    } else {
      WriteDelta();
    }
  }

  void WriteDelta() {
    const auto& deltas = state_.messages.deltas;
    writer_.Write(deltas[static_cast<size_t>(sent_) % deltas.size()], Tag(kWritten));
    ++sent_;
  }

  ThreadState& state_;
  grpc::ServerContext context_;
  v1::StreamCompletionRequest request_;
  grpc::ServerAsyncWriter<v1::StreamCompletionResponse> writer_;
  std::unique_ptr<grpc::Alarm> alarm_;
  int chunks_ = 0;
  int delay_ms_ = 0;
  int sent_ = 0;
};

class UnaryHandler final : public Handler {
 public:
  explicit UnaryHandler(ThreadState& state) : state_(state), responder_(&context_) {
    state.service->RequestComplete(&context_, &request_, &responder_, state.cq, state.cq,
                                   Tag(kAccepted));
  }

  void OnEvent(Op op, bool ok) override {
    if (op != kAccepted || !ok) {
      delete this;
      return;
    }
    new UnaryHandler(state_);
    const int chunks = MetadataInt(context_, "x-fake-chunks", state_.options->chunks, kMaxChunks);
    if (chunks == state_.options->chunks) {
      responder_.Finish(state_.messages.complete, grpc::Status::OK, Tag(kDone));
    } else {
      custom_ = state_.messages.Complete(chunks);
      responder_.Finish(custom_, grpc::Status::OK, Tag(kDone));
    }
  }

 private:
  ThreadState& state_;
  grpc::ServerContext context_;
  v1::CompleteRequest request_;
  grpc::ServerAsyncResponseWriter<v1::CompleteResponse> responder_;
  v1::CompleteResponse custom_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FloorServer>> FloorServer::Start(const Options& options) {
  if (options.chunks < 0 || options.chunks > kMaxChunks || options.chunk_delay_ms < 0 ||
      options.chunk_delay_ms > kMaxDelayMs) {
    return absl::InvalidArgumentError("chunks or chunk_delay_ms out of range");
  }
  std::unique_ptr<FloorServer> floor(new FloorServer(options));
  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &floor->port_);
  builder.RegisterService(&floor->service_);
  for (int i = 0; i < threads; ++i) floor->cqs_.push_back(builder.AddCompletionQueue());
  floor->server_ = builder.BuildAndStart();
  if (floor->server_ == nullptr || floor->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  for (auto& cq : floor->cqs_) {
    grpc::ServerCompletionQueue* q = cq.get();
    FloorServer* self = floor.get();
    floor->threads_.emplace_back([self, q] { self->Serve(q); });
  }
  return floor;
}

void FloorServer::Serve(grpc::ServerCompletionQueue* cq) {
  ThreadState state{&service_, cq, &options_, Messages(options_.chunks)};
  for (int i = 0; i < kPostedPerMethod; ++i) {
    new StreamHandler(state);
    new UnaryHandler(state);
  }
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
    const uintptr_t bits = reinterpret_cast<uintptr_t>(tag);
    reinterpret_cast<Handler*>(bits & ~kOpMask)->OnEvent(static_cast<Op>(bits & kOpMask), ok);
  }
}

void FloorServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  for (auto& cq : cqs_) cq->Shutdown();
  for (auto& t : threads_) t.join();
}

FloorServer::~FloorServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace turnpike::bench
