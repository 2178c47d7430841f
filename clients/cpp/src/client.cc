#include "turnpike/client.h"

#include <sstream>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace turnpike {

Error Error::FromStatus(const grpc::Status& status) {
  Error e;
  e.code = status.error_code();
  e.message = status.error_message();
  google::rpc::Status rpc;
  if (status.error_details().empty() || !rpc.ParseFromString(status.error_details())) return e;
  for (const google::protobuf::Any& any : rpc.details()) {
    v1::ProviderError provider;
    v1::PartialCompletion partial;
    google::rpc::RetryInfo retry;
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&provider)) {
      e.provider_error = std::move(provider);
    } else if (any.UnpackTo(&partial)) {
      e.partial = std::move(partial);
    } else if (any.UnpackTo(&retry)) {
      e.retry_after = std::chrono::milliseconds(retry.retry_delay().seconds() * 1000 +
                                                retry.retry_delay().nanos() / 1000000);
    } else if (any.UnpackTo(&info)) {
      e.reason = info.reason();
      e.metadata = {info.metadata().begin(), info.metadata().end()};
    }
  }
  return e;
}

std::string Error::ToString() const {
  std::ostringstream out;
  out << "code " << static_cast<int>(code) << ": " << message;
  if (!reason.empty()) out << " [" << reason << "]";
  if (retry_after.has_value()) out << " (retry after " << retry_after->count() << " ms)";
  return out.str();
}

CompletionStream::~CompletionStream() {
  if (reader_ != nullptr && !done_) {
    context_.TryCancel();
    CompletionEvent ignored;
    while (Next(&ignored)) {
    }
  }
}

bool CompletionStream::Next(CompletionEvent* event) {
  if (done_) return false;
  v1::StreamCompletionResponse response;
  while (reader_->Read(&response)) {
    switch (response.event_case()) {
      case v1::StreamCompletionResponse::kStart:
        event->kind = CompletionEvent::Kind::kStart;
        event->start = response.start();
        return true;
      case v1::StreamCompletionResponse::kDelta:
        event->kind = CompletionEvent::Kind::kText;
        event->text = response.delta().text();
        text_ += event->text;
        return true;
      case v1::StreamCompletionResponse::kFinish:
        event->kind = CompletionEvent::Kind::kFinish;
        event->finish = response.finish();
        return true;
      default:
        continue;  // an event this client does not know yet
    }
  }
  done_ = true;
  grpc::Status status = reader_->Finish();
  if (!status.ok()) error_ = Error::FromStatus(status);
  return false;
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  channel_ = options_.channel;
  if (channel_ == nullptr) {
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (options_.tls) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = options_.root_certs_pem;
      ssl.pem_cert_chain = options_.client_cert_pem;
      ssl.pem_private_key = options_.client_key_pem;
      creds = grpc::SslCredentials(ssl);
    }
    channel_ = grpc::CreateChannel(options_.address, creds);
  }
  completions_ = v1::CompletionService::NewStub(channel_);
  embeddings_ = v1::EmbeddingService::NewStub(channel_);
}

void Client::Prepare(grpc::ClientContext* context, std::chrono::milliseconds deadline) const {
  if (!options_.caller_key.empty()) {
    context->AddMetadata("authorization", "Bearer " + options_.caller_key);
  }
  if (deadline.count() == 0) deadline = options_.default_deadline;
  if (deadline.count() > 0) context->set_deadline(std::chrono::system_clock::now() + deadline);
}

std::unique_ptr<CompletionStream> Client::StreamCompletion(
    const v1::StreamCompletionRequest& request, std::chrono::milliseconds deadline) {
  std::unique_ptr<CompletionStream> stream(new CompletionStream());
  Prepare(&stream->context_, deadline);
  stream->reader_ = completions_->StreamCompletion(&stream->context_, request);
  return stream;
}

Result<v1::CompleteResponse> Client::Complete(const v1::CompleteRequest& request,
                                              std::chrono::milliseconds deadline) {
  grpc::ClientContext context;
  Prepare(&context, deadline);
  v1::CompleteResponse response;
  grpc::Status status = completions_->Complete(&context, request, &response);
  if (!status.ok()) return Error::FromStatus(status);
  return response;
}

Result<v1::EmbedResponse> Client::Embed(const v1::EmbedRequest& request,
                                        std::chrono::milliseconds deadline) {
  grpc::ClientContext context;
  Prepare(&context, deadline);
  v1::EmbedResponse response;
  grpc::Status status = embeddings_->Embed(&context, request, &response);
  if (!status.ok()) return Error::FromStatus(status);
  return response;
}

v1::StreamCompletionRequest Client::Request(
    const std::string& capability, const std::vector<std::pair<v1::Role, std::string>>& messages) {
  v1::StreamCompletionRequest request;
  request.set_capability(capability);
  for (const auto& [role, text] : messages) {
    v1::Message* m = request.add_messages();
    m->set_role(role);
    m->set_content(text);
  }
  return request;
}

}  // namespace turnpike
