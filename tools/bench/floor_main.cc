// turnpike-bench-floor: the gRPC floor server (see floor_server.h).
//
//   turnpike-bench-floor --listen=127.0.0.1:0 --port_file=/tmp/x/floor.port --chunks=20
//
// Writes the bound port to --port_file (temp file + rename), serves until SIGTERM or SIGINT,
// then exits 0.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "tools/bench/floor_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to serve on (port 0 = ephemeral)");
ABSL_FLAG(std::string, port_file, "", "if set, the bound port is written here");
ABSL_FLAG(int, threads, 0, "completion-queue threads (0: one per core)");
ABSL_FLAG(int, chunks, 5, "deltas per stream (metadata x-fake-chunks overrides per call)");
ABSL_FLAG(int, chunk_delay_ms, 0,
          "delay between deltas (metadata x-fake-chunk-delay-ms overrides per call)");

namespace {

bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fprintf(f, "%d\n", port) > 0;
  if (std::fclose(f) != 0 || !ok) return false;
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Signals are taken synchronously by sigwait(); block them before gRPC starts any thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  turnpike::bench::FloorServer::Options options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.chunks = absl::GetFlag(FLAGS_chunks);
  options.chunk_delay_ms = absl::GetFlag(FLAGS_chunk_delay_ms);
  auto server = turnpike::bench::FloorServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "turnpike-bench-floor: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() && !WritePortFile(port_file, (*server)->port())) {
    std::fprintf(stderr, "turnpike-bench-floor: cannot write %s\n", port_file.c_str());
    return 1;
  }
  std::printf("turnpike-bench-floor listening on port %d\n", (*server)->port());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  (*server)->Shutdown(absl::Seconds(1));
  return 0;
}
