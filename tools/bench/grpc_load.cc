#include "tools/bench/grpc_load.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "turnpike/v1/completion.grpc.pb.h"

namespace turnpike::bench {
namespace {

using Stub = v1::CompletionService::Stub;

std::string_view CodeName(grpc::StatusCode code) {
  static constexpr std::string_view kNames[] = {"OK",
                                                "CANCELLED",
                                                "UNKNOWN",
                                                "INVALID_ARGUMENT",
                                                "DEADLINE_EXCEEDED",
                                                "NOT_FOUND",
                                                "ALREADY_EXISTS",
                                                "PERMISSION_DENIED",
                                                "RESOURCE_EXHAUSTED",
                                                "FAILED_PRECONDITION",
                                                "ABORTED",
                                                "OUT_OF_RANGE",
                                                "UNIMPLEMENTED",
                                                "INTERNAL",
                                                "UNAVAILABLE",
                                                "DATA_LOSS",
                                                "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : "UNKNOWN_CODE";
}

std::chrono::system_clock::time_point InNs(int64_t ns) {
  return std::chrono::system_clock::now() + std::chrono::nanoseconds(ns);
}

// Completion-queue tags are a Call pointer with the operation in the low bits.
enum Op : uintptr_t { kStart = 1, kRead = 2, kFinish = 3 };
constexpr uintptr_t kOpMask = 7;

class Worker;

class Call {
 public:
  virtual ~Call() = default;
  virtual void OnEvent(Op op, bool ok) = 0;

 protected:
  void* Tag(Op op) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(this) | op); }
};

class Worker {
 public:
  Worker(const LoadOptions& options, const GrpcTarget& target, int index, int workers,
         std::vector<std::shared_ptr<grpc::Channel>> channels)
      : options_(options),
        target_(target),
        index_(index),
        workers_(workers),
        cq_(std::make_unique<grpc::CompletionQueue>()),
        stream_request_(target.request) {
    unary_request_.ParseFromString(target.request.SerializeAsString());
    for (auto& channel : channels) stubs_.push_back(v1::CompletionService::NewStub(channel));
  }

  void Run(int64_t start_ns);
  Recorder& recorder() { return *recorder_; }
  const Schedule& schedule() const { return *schedule_; }
  const GrpcTarget& target() const { return target_; }
  grpc::CompletionQueue* cq() { return cq_.get(); }
  const v1::StreamCompletionRequest& stream_request() const { return stream_request_; }
  const v1::CompleteRequest& unary_request() const { return unary_request_; }

  // Called by a call once it has ended and recorded itself.
  void OnCallDone();

 private:
  void StartCall(int64_t intended_ns);
  void OnAlarm();
  void ArmAlarm(int64_t at_ns);

  // Constant after construction.
  const LoadOptions& options_;
  const GrpcTarget& target_;
  const int index_;
  const int workers_;
  std::unique_ptr<grpc::CompletionQueue> cq_;
  std::vector<std::unique_ptr<Stub>> stubs_;
  const v1::StreamCompletionRequest stream_request_;
  v1::CompleteRequest unary_request_;

  // Owned by the worker's thread.
  std::optional<Schedule> schedule_;
  std::optional<Recorder> recorder_;
  size_t next_stub_ = 0;
  int inflight_ = 0;
  std::unique_ptr<grpc::Alarm> alarm_;
  bool alarm_pending_ = false;
};

class StreamCall final : public Call {
 public:
  StreamCall(Worker& worker, Stub& stub, int64_t intended_ns) : worker_(worker) {
    timer_.Start(worker.recorder(), intended_ns, worker.schedule().stall_ns());
    context_.set_deadline(InNs(worker.schedule().deadline_ns()));
    for (const auto& [key, value] : worker.target().metadata) context_.AddMetadata(key, value);
    reader_ = stub.PrepareAsyncStreamCompletion(&context_, worker.stream_request(), worker.cq());
    reader_->StartCall(Tag(kStart));
    reader_->Read(&response_, Tag(kRead));  // allowed before StartCall completes
  }

  void OnEvent(Op op, bool ok) override {
    switch (op) {
      case kStart:
        start_done_ = true;
        break;
      case kRead:
        if (ok) {
          saw_finish_ = saw_finish_ || response_.has_finish();
          timer_.OnMessage(worker_.recorder(), NowNs(), response_.has_delta());
          reader_->Read(&response_, Tag(kRead));
          return;
        }
        reader_->Finish(&status_, Tag(kFinish));
        return;
      case kFinish:
        end_ns_ = NowNs();
        finished_ = true;
        break;
    }
    if (!start_done_ || !finished_) return;
    std::string_view error;
    if (!status_.ok()) {
      error = CodeName(status_.error_code());
    } else if (!saw_finish_) {
      error = "OK_WITHOUT_FINISH_MESSAGE";
    }
    timer_.Finish(worker_.recorder(), end_ns_, error);
    Worker& worker = worker_;
    delete this;
    worker.OnCallDone();
  }

 private:
  Worker& worker_;
  CallTimer timer_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReader<v1::StreamCompletionResponse>> reader_;
  v1::StreamCompletionResponse response_;
  grpc::Status status_;
  int64_t end_ns_ = 0;
  bool start_done_ = false;
  bool finished_ = false;
  bool saw_finish_ = false;
};

class UnaryCall final : public Call {
 public:
  UnaryCall(Worker& worker, Stub& stub, int64_t intended_ns) : worker_(worker) {
    timer_.Start(worker.recorder(), intended_ns, worker.schedule().stall_ns());
    context_.set_deadline(InNs(worker.schedule().deadline_ns()));
    for (const auto& [key, value] : worker.target().metadata) context_.AddMetadata(key, value);
    reader_ = stub.PrepareAsyncComplete(&context_, worker.unary_request(), worker.cq());
    reader_->StartCall();
    reader_->Finish(&response_, &status_, Tag(kFinish));
  }

  void OnEvent(Op, bool) override {
    const int64_t now = NowNs();
    timer_.Finish(worker_.recorder(), now, status_.ok() ? "" : CodeName(status_.error_code()));
    Worker& worker = worker_;
    delete this;
    worker.OnCallDone();
  }

 private:
  Worker& worker_;
  CallTimer timer_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::CompleteResponse>> reader_;
  v1::CompleteResponse response_;
  grpc::Status status_;
};

void Worker::Run(int64_t start_ns) {
  schedule_.emplace(options_, index_, workers_, start_ns);
  recorder_.emplace(schedule_->window());
  if (schedule_->open_loop()) {
    if (const int64_t first = schedule_->NextArrival(); first >= 0) ArmAlarm(first);
  } else {
    for (int i = 0; i < schedule_->slots(); ++i) {
      const int64_t now = NowNs();
      if (!schedule_->TakeClosed(now)) break;
      StartCall(now);
    }
  }
  void* tag;
  bool ok;
  while (inflight_ > 0 || alarm_pending_) {
    if (!cq_->Next(&tag, &ok)) break;
    if (tag == &alarm_) {
      alarm_pending_ = false;
      OnAlarm();
      continue;
    }
    const uintptr_t bits = reinterpret_cast<uintptr_t>(tag);
    reinterpret_cast<Call*>(bits & ~kOpMask)->OnEvent(static_cast<Op>(bits & kOpMask), ok);
  }
  cq_->Shutdown();
  while (cq_->Next(&tag, &ok)) {
  }
}

void Worker::StartCall(int64_t intended_ns) {
  ++inflight_;
  Stub& stub = *stubs_[next_stub_];
  next_stub_ = (next_stub_ + 1) % stubs_.size();
  if (target_.unary) {
    new UnaryCall(*this, stub, intended_ns);
  } else {
    new StreamCall(*this, stub, intended_ns);
  }
}

void Worker::OnCallDone() {
  --inflight_;
  if (schedule_->open_loop()) return;
  const int64_t now = NowNs();
  if (schedule_->TakeClosed(now)) StartCall(now);
}

void Worker::OnAlarm() {
  const int64_t now = NowNs();
  for (int64_t at = schedule_->NextArrival(); at >= 0 && at <= now; at = schedule_->NextArrival()) {
    schedule_->TakeArrival();
    if (inflight_ >= schedule_->max_inflight()) {
      ++recorder_->not_sent;
      continue;
    }
    StartCall(at);
  }
  if (const int64_t next = schedule_->NextArrival(); next >= 0) ArmAlarm(next);
}

void Worker::ArmAlarm(int64_t at_ns) {
  alarm_ = std::make_unique<grpc::Alarm>();
  alarm_->Set(cq_.get(), InNs(at_ns - NowNs()), &alarm_);
  alarm_pending_ = true;
}

}  // namespace

absl::StatusOr<Recorder> RunGrpcLoad(const LoadOptions& options, const GrpcTarget& target) {
  const int workers = Workers(options);
  std::vector<std::unique_ptr<Worker>> pool;
  for (int w = 0; w < workers; ++w) {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    const int64_t n = std::max<int64_t>(1, Share(target.channels, workers, w));
    for (int64_t c = 0; c < n; ++c) {
      grpc::ChannelArguments args;
      // Its own subchannel, hence its own TCP connection, for every channel.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetMaxReceiveMessageSize(-1);
      std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
      if (!target.tls_ca_pem.empty()) {
        grpc::SslCredentialsOptions tls;
        tls.pem_root_certs = target.tls_ca_pem;
        credentials = grpc::SslCredentials(tls);
      }
      auto channel = grpc::CreateCustomChannel(target.address, credentials, args);
      if (!channel->WaitForConnected(InNs(absl::ToInt64Nanoseconds(target.connect_timeout)))) {
        // States: 0 idle, 1 connecting, 2 ready, 3 transient failure, 4 shutdown.
        return absl::UnavailableError(
            absl::StrCat("cannot connect to ", target.address, " within ",
                         absl::FormatDuration(target.connect_timeout), " (channel state ",
                         static_cast<int>(channel->GetState(false)), ")"));
      }
      channels.push_back(std::move(channel));
    }
    pool.push_back(std::make_unique<Worker>(options, target, w, workers, std::move(channels)));
  }
  const int64_t start_ns = NowNs();
  std::vector<std::thread> threads;
  for (auto& worker : pool) threads.emplace_back([&worker, start_ns] { worker->Run(start_ns); });
  for (auto& t : threads) t.join();
  Recorder merged(pool[0]->recorder().window());
  for (auto& worker : pool) merged.Merge(worker->recorder());
  return merged;
}

}  // namespace turnpike::bench
