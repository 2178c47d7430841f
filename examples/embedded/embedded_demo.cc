// turnpike_embedded_demo: an application with the gateway linked in (docs/embedded.md). It
// starts turnpike::Embedded on a config file (or a control plane), streams one completion to
// stdout, asks for one whole completion and one embedding, and exits non-zero on any error.
//
//   turnpike_embedded_demo --config=gateway.json [--capability=demo] [--caller_key=tpk_...]
//   turnpike_embedded_demo --control_plane=127.0.0.1:50052 --node_token_file=node.token
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "server/embedded/embedded.h"

namespace {

// The value of --name=value in argv, or `fallback`.
std::string Flag(int argc, char** argv, std::string_view name, std::string fallback = "") {
  const std::string prefix = "--" + std::string(name) + "=";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, prefix.size()) == prefix) return std::string(arg.substr(prefix.size()));
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  turnpike::Embedded::Options options;
  options.config_file = Flag(argc, argv, "config");
  options.control_plane = Flag(argc, argv, "control_plane");
  options.node_token_file = Flag(argc, argv, "node_token_file");
  options.usage_spool_dir = Flag(argc, argv, "usage_spool_dir");
  options.log = [](const std::string& message) { std::cerr << "turnpike: " << message << "\n"; };
  absl::StatusOr<std::unique_ptr<turnpike::Embedded>> gateway =
      turnpike::Embedded::Create(std::move(options));
  if (!gateway.ok()) {
    std::cerr << "cannot start: " << gateway.status() << "\n";
    return 2;
  }
  if (absl::Status ready = (*gateway)->WaitUntilReady(absl::Seconds(30)); !ready.ok()) {
    std::cerr << ready << "\n";
    return 2;
  }
  turnpike::Embedded::CallOptions call;
  call.caller_key = Flag(argc, argv, "caller_key");
  call.timeout = absl::Seconds(30);
  const std::string capability = Flag(argc, argv, "capability", "demo");

  // 1. A streamed completion: the callbacks run on the library's thread; keep them short.
  turnpike::v1::StreamCompletionRequest request;
  request.set_capability(capability);
  auto* message = request.add_messages();
  message->set_role(turnpike::v1::ROLE_USER);
  message->set_content("Say hello from inside the application.");
  absl::Mutex mu;
  absl::Status outcome;
  turnpike::Embedded::StreamCallbacks callbacks;
  callbacks.on_start = [](const turnpike::v1::CompletionStart& start) {
    std::cout << "start: " << start.provider() << "/" << start.model() << "\n";
  };
  callbacks.on_text = [](std::string_view text) { std::cout << "text: " << text << "\n"; };
  callbacks.on_done = [&](const absl::Status& status, const turnpike::v1::CompletionFinish& f) {
    absl::MutexLock lock(&mu);
    outcome = status;
    if (status.ok()) {
      std::cout << "finish: " << turnpike::v1::FinishReason_Name(f.finish_reason())
                << " input_tokens=" << f.usage().input_tokens()
                << " output_tokens=" << f.usage().output_tokens() << "\n";
    }
  };
  std::unique_ptr<turnpike::Embedded::Stream> stream =
      (*gateway)->StreamCompletion(request, call, std::move(callbacks));
  stream->Wait();
  {
    absl::MutexLock lock(&mu);
    if (!outcome.ok()) {
      std::cerr << "stream failed: " << outcome << "\n";
      return 1;
    }
  }

  // 2. The blocking convenience: the whole reply at once.
  turnpike::v1::CompleteRequest whole;
  whole.set_capability(capability);
  *whole.mutable_messages() = request.messages();
  absl::StatusOr<turnpike::v1::CompleteResponse> complete = (*gateway)->Complete(whole, call);
  if (!complete.ok()) {
    std::cerr << "complete failed: " << complete.status() << "\n";
    return 1;
  }
  std::cout << "complete: " << complete->text() << "\n";

  // 3. Embeddings.
  turnpike::v1::EmbedRequest embed;
  embed.set_capability(capability);
  embed.add_inputs("a sentence to embed");
  absl::StatusOr<turnpike::v1::EmbedResponse> vectors = (*gateway)->Embed(embed, call);
  if (!vectors.ok()) {
    std::cerr << "embed failed: " << vectors.status() << "\n";
    return 1;
  }
  std::cout << "embedding: " << vectors->embeddings_size() << " vector(s) of "
            << (vectors->embeddings_size() > 0 ? vectors->embeddings(0).values_size() : 0)
            << " dimensions\n";
  return 0;
}
