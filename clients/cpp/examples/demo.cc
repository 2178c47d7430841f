// turnpike_demo: the C++ client's example. One call to a Turnpike gateway, its result printed.
//
//   turnpike_demo --gateway=localhost:50051 stream CAPABILITY PROMPT
//   turnpike_demo --gateway=localhost:50051 complete CAPABILITY PROMPT
//   turnpike_demo --gateway=localhost:50051 embed CAPABILITY TEXT...
//
// The caller key comes from $TURNPIKE_CALLER_KEY. A failed call prints its decoded details on
// one line (code, reason, provider HTTP status, retry-after, attempts) and exits 1.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "turnpike/client.h"

namespace {

int Fail(const turnpike::Error& e) {
  std::cout << "error code=" << static_cast<int>(e.code) << " reason=" << e.reason
            << " provider_http_status="
            << (e.provider_error.has_value() ? e.provider_error->http_status() : 0)
            << " retry_after_ms=" << (e.retry_after.has_value() ? e.retry_after->count() : -1)
            << " attempts=" << (e.partial.has_value() ? e.partial->attempts_size() : 0)
            << " message=" << e.message << "\n";
  return 1;
}

void PrintUsage(const turnpike::v1::Usage& u) {
  std::cout << "usage input_tokens=" << u.input_tokens() << " output_tokens=" << u.output_tokens()
            << " cost_usd_micros=" << u.cost_usd_micros() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  turnpike::ClientOptions options;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--gateway=", 0) == 0) {
      options.address = a.substr(10);
    } else {
      args.push_back(a);
    }
  }
  if (args.size() < 3) {
    std::cerr << "usage: turnpike_demo [--gateway=HOST:PORT] stream|complete|embed CAPABILITY "
                 "TEXT...\n";
    return 2;
  }
  if (const char* key = std::getenv("TURNPIKE_CALLER_KEY")) options.caller_key = key;
  options.default_deadline = std::chrono::seconds(30);
  turnpike::Client client(options);
  const std::string& command = args[0];
  const std::string& capability = args[1];

  if (command == "stream") {
    auto request = turnpike::Client::Request(capability, {{turnpike::v1::ROLE_USER, args[2]}});
    auto stream = client.StreamCompletion(request);
    turnpike::CompletionEvent event;
    while (stream->Next(&event)) {
      switch (event.kind) {
        case turnpike::CompletionEvent::Kind::kStart:
          std::cout << "start provider=" << event.start.provider()
                    << " model=" << event.start.model() << "\n";
          break;
        case turnpike::CompletionEvent::Kind::kText:
          break;  // the whole text is printed once it is complete
        case turnpike::CompletionEvent::Kind::kFinish:
          std::cout << "text " << stream->text() << "\n";
          PrintUsage(event.finish.usage());
          break;
      }
    }
    if (stream->error().has_value()) {
      std::cout << "partial_text " << stream->text() << "\n";
      return Fail(*stream->error());
    }
    return 0;
  }
  if (command == "complete") {
    turnpike::v1::CompleteRequest request;
    request.set_capability(capability);
    auto* m = request.add_messages();
    m->set_role(turnpike::v1::ROLE_USER);
    m->set_content(args[2]);
    turnpike::Result<turnpike::v1::CompleteResponse> reply = client.Complete(request);
    if (!reply.ok()) return Fail(reply.error());
    std::cout << "text " << reply.value().text() << "\n";
    PrintUsage(reply.value().finish().usage());
    return 0;
  }
  if (command == "embed") {
    turnpike::v1::EmbedRequest request;
    request.set_capability(capability);
    for (size_t i = 2; i < args.size(); ++i) request.add_inputs(args[i]);
    turnpike::Result<turnpike::v1::EmbedResponse> result = client.Embed(request);
    if (!result.ok()) return Fail(result.error());
    for (const auto& e : result.value().embeddings()) {
      std::cout << "vector index=" << e.index() << " dimensions=" << e.values_size() << "\n";
    }
    return 0;
  }
  std::cerr << "unknown command " << command << "\n";
  return 2;
}
