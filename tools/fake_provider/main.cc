// turnpike-fake-provider: a local stand-in for the AI providers the gateway talks to.
//
//   turnpike-fake-provider --listen=127.0.0.1:0 --port_file=/tmp/x/port
//       --api_key=fake-key --chunks=5 --chunk_delay_ms=0
//
// Binds --listen (port 0 picks a free port), writes the real port to --port_file (atomically:
// temp file + rename) and prints "turnpike-fake-provider listening on HOST:PORT". Runs one
// libevent loop until SIGTERM or SIGINT, then exits 0.
#include <event2/event.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/fake_provider/fake_provider.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to listen on (port 0 = ephemeral)");
ABSL_FLAG(std::string, port_file, "", "if set, the bound port is written here (then newline)");
ABSL_FLAG(std::string, api_key, "fake-key",
          "credential every cloud provider route expects; empty disables auth checks");
ABSL_FLAG(int, chunks, 5, "default number of content chunks per answer");
ABSL_FLAG(int, chunk_delay_ms, 0, "default delay between stream chunks");
ABSL_FLAG(int, stall_timeout_ms, 60000, "how long stall_after_chunks holds a connection");
ABSL_FLAG(int, max_recorded_requests, 10000, "how many requests /_fake/requests keeps");
ABSL_FLAG(int, idle_timeout_s, 300, "idle keep-alive connection timeout");

namespace {

using turnpike::fake_provider::FakeProvider;

absl::Status ParseListen(const std::string& listen, FakeProvider::Options* options) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("--listen must be host:port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port;
  if (host.empty() || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad --listen value '", listen, "'"));
  }
  options->listen_host = host;
  options->listen_port = port;
  return absl::OkStatus();
}

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot create ", tmp));
  const bool ok = std::fprintf(f, "%d\n", port) > 0 && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

void OnSignal(evutil_socket_t, short, void* arg) {
  event_base_loopbreak(static_cast<event_base*>(arg));
}

// Runs the server on `base` until the loop is broken by a signal. The server (and its
// connections) are destroyed before returning, i.e. before the base.
int Serve(event_base* base, const FakeProvider::Options& options) {
  absl::StatusOr<std::unique_ptr<FakeProvider>> server = FakeProvider::Create(base, options);
  if (!server.ok()) {
    std::fprintf(stderr, "turnpike-fake-provider: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const int port = (*server)->port();
  // Print first, so whoever waits for the port file also finds the line on stdout.
  std::printf("turnpike-fake-provider listening on %s:%d\n", options.listen_host.c_str(), port);
  std::fflush(stdout);
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty()) {
    if (absl::Status st = WritePortFile(port_file, port); !st.ok()) {
      std::fprintf(stderr, "turnpike-fake-provider: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  return event_base_dispatch(base) < 0 ? 1 : 0;
}

int Run() {
  FakeProvider::Options options;
  if (absl::Status st = ParseListen(absl::GetFlag(FLAGS_listen), &options); !st.ok()) {
    std::fprintf(stderr, "turnpike-fake-provider: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  options.api_key = absl::GetFlag(FLAGS_api_key);
  options.default_chunks = absl::GetFlag(FLAGS_chunks);
  options.default_chunk_delay_ms = absl::GetFlag(FLAGS_chunk_delay_ms);
  options.stall_timeout_ms = absl::GetFlag(FLAGS_stall_timeout_ms);
  options.max_recorded_requests =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_max_recorded_requests)));
  options.idle_timeout_s = absl::GetFlag(FLAGS_idle_timeout_s);

  // Writes to a client that already left must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  // Precise timers: chunk_delay_ms must mean milliseconds, not the coarse-clock tick.
  event_config* event_cfg = event_config_new();
  event_config_set_flag(event_cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
  event_base* base = event_base_new_with_config(event_cfg);
  event_config_free(event_cfg);
  if (base == nullptr) {
    std::fprintf(stderr, "turnpike-fake-provider: event_base_new failed\n");
    return 1;
  }
  // Catch SIGTERM/SIGINT before anything else, so a stop request that arrives during
  // start-up still ends in a clean exit 0 (the loop below returns at once).
  event* sigterm = evsignal_new(base, SIGTERM, &OnSignal, base);
  event* sigint = evsignal_new(base, SIGINT, &OnSignal, base);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  const int rc = Serve(base, options);
  event_free(sigterm);
  event_free(sigint);
  event_base_free(base);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
