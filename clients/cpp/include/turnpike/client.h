// turnpike::Client: a C++ client of the Turnpike gateway's data-plane API (turnpike.v1 over
// gRPC): streamed and whole completions, embeddings, and errors that decode the details the
// gateway attaches (docs/errors.md). See clients/cpp/README.md.
//
// Thread safety: a Client may be shared by threads (one gRPC channel). A CompletionStream belongs
// to the thread that reads it; Cancel() may be called from any thread.
#ifndef TURNPIKE_CLIENTS_CPP_CLIENT_H_
#define TURNPIKE_CLIENTS_CPP_CLIENT_H_

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "turnpike/v1/completion.grpc.pb.h"
#include "turnpike/v1/embedding.grpc.pb.h"

namespace turnpike {

struct ClientOptions {
  // "host:port", or "unix:/path" for a gateway running as a sidecar.
  std::string address = "localhost:50051";
  // Sent as `authorization: Bearer <key>`; empty for an open route or a client certificate.
  std::string caller_key;
  // The deadline of a call that sets none; zero for none.
  std::chrono::milliseconds default_deadline{0};
  // TLS (docs/tls.md): verify the gateway with `root_certs_pem` (empty: the system's roots);
  // add a client certificate and key for mutual TLS. Without `tls` the channel is plaintext.
  bool tls = false;
  std::string root_certs_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
  // Use this channel instead of opening one (address and TLS settings are then ignored).
  std::shared_ptr<grpc::Channel> channel;
};

// A failed call, with the details the gateway sent.
struct Error {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  // The provider's answer that caused it (HTTP status, error type, message).
  std::optional<v1::ProviderError> provider_error;
  // What a stream used before it failed, and every attempt.
  std::optional<v1::PartialCompletion> partial;
  // When to retry (google.rpc.RetryInfo).
  std::optional<std::chrono::milliseconds> retry_after;
  // google.rpc.ErrorInfo: e.g. reason "BUDGET_EXHAUSTED", metadata {"budget": "..."}.
  std::string reason;
  std::map<std::string, std::string> metadata;

  static Error FromStatus(const grpc::Status& status);
  std::string ToString() const;
};

// A value, or the Error that prevented it.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// One event of a stream.
struct CompletionEvent {
  enum class Kind { kStart, kText, kFinish };
  Kind kind = Kind::kText;
  v1::CompletionStart start;    // kStart: provider, model, request id
  std::string text;             // kText: the next piece of the reply
  v1::CompletionFinish finish;  // kFinish: reason, usage and cost, every attempt
};

class CompletionStream {
 public:
  ~CompletionStream();
  // The next event; false at the end of the stream, and then error() says whether it failed.
  bool Next(CompletionEvent* event);
  // Set once Next() returned false because the call failed.
  const std::optional<Error>& error() const { return error_; }
  // Ends the call; the gateway stops the provider's transfer. Any thread.
  void Cancel() { context_.TryCancel(); }
  // The text received so far.
  const std::string& text() const { return text_; }

 private:
  friend class Client;
  CompletionStream() = default;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::StreamCompletionResponse>> reader_;
  std::optional<Error> error_;
  std::string text_;
  bool done_ = false;
};

class Client {
 public:
  explicit Client(ClientOptions options);

  // Streams a completion; read it with Next().
  std::unique_ptr<CompletionStream> StreamCompletion(
      const v1::StreamCompletionRequest& request,
      std::chrono::milliseconds deadline = std::chrono::milliseconds(0));
  // The whole completion at once.
  Result<v1::CompleteResponse> Complete(
      const v1::CompleteRequest& request,
      std::chrono::milliseconds deadline = std::chrono::milliseconds(0));
  Result<v1::EmbedResponse> Embed(
      const v1::EmbedRequest& request,
      std::chrono::milliseconds deadline = std::chrono::milliseconds(0));

  // A request of one capability from (role, text) pairs, roles v1::ROLE_SYSTEM/USER/ASSISTANT.
  static v1::StreamCompletionRequest Request(
      const std::string& capability, const std::vector<std::pair<v1::Role, std::string>>& messages);

 private:
  void Prepare(grpc::ClientContext* context, std::chrono::milliseconds deadline) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CompletionService::Stub> completions_;
  std::unique_ptr<v1::EmbeddingService::Stub> embeddings_;
};

}  // namespace turnpike

#endif  // TURNPIKE_CLIENTS_CPP_CLIENT_H_
