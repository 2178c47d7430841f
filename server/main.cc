// turnpike-gateway: the data plane. Reads its config from a file (--config) and serves
// turnpike.v1.CompletionService, EmbeddingService and ClassificationService until SIGTERM/SIGINT,
// then drains. The flags and the component Options built from them are in gateway_flags.cc;
// this file starts the core and the listeners, waits for a signal and drains.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/listen_address.h"
#include "common/metrics_http_server.h"
#include "common/port_file.h"
#include "server/core/gateway_core.h"
#include "server/gateway_flags.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/listener_credentials.h"
#include "server/http/http_front_door.h"
#include "spdlog/async.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

#ifdef TURNPIKE_JEMALLOC
// jemalloc reads this at start-up: two arenas for the gateway's few hot threads (fewer idle
// pages), and one background thread that returns freed pages to the OS within about a second,
// so memory goes back near idle after a burst. MALLOC_CONF in the environment overrides it.
extern "C" {
const char* malloc_conf =
    "narenas:2,background_thread:true,max_background_threads:1,dirty_decay_ms:1000,"
    "muzzy_decay_ms:0";
}
#endif

namespace turnpike {
namespace {

void SetUpLogging() {
  spdlog::init_thread_pool(8192, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>(
      "gateway", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  spdlog::flush_every(std::chrono::seconds(1));
}

void LogTls(absl::LogSeverity severity, const std::string& message) {
  if (severity >= absl::LogSeverity::kError) {
    spdlog::error("tls: {}", message);
  } else if (severity >= absl::LogSeverity::kWarning) {
    spdlog::warn("tls: {}", message);
  } else {
    spdlog::info("tls: {}", message);
  }
}

void LogCore(GatewayCore::LogLevel level, const std::string& message) {
  switch (level) {
    case GatewayCore::LogLevel::kDebug:
      spdlog::debug("{}", message);
      break;
    case GatewayCore::LogLevel::kInfo:
      spdlog::info("{}", message);
      break;
    case GatewayCore::LogLevel::kWarning:
      spdlog::warn("{}", message);
      break;
    case GatewayCore::LogLevel::kError:
      spdlog::error("{}", message);
      break;
  }
}

int Run() {
  // Signals are taken synchronously by sigwait() below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  SetUpLogging();

  const bool from_file = !absl::GetFlag(FLAGS_config).empty();
  const bool from_control_plane = !absl::GetFlag(FLAGS_control_plane).empty();
  if (from_file == from_control_plane) {
    spdlog::error("pass exactly one of --config=FILE or --control_plane=HOST:PORT");
    spdlog::shutdown();
    return 2;
  }
  absl::StatusOr<ListenerCredentials> listener =
      MakeListenerCredentials(ListenerTlsFlags(), Clock::Real(), &LogTls);
  if (!listener.ok()) {
    spdlog::error("{}", std::string(listener.status().message()));
    spdlog::shutdown();
    return 2;
  }
  const int threads = absl::GetFlag(FLAGS_threads) > 0 ? absl::GetFlag(FLAGS_threads)
                                                       : GatewayServer::DefaultThreads();
  // Every component the doors serve with (server/core/gateway_core.h); it goes after them.
  absl::StatusOr<GatewayCore::Options> core_options = CoreOptionsFromFlags(threads);
  if (!core_options.ok()) {
    spdlog::error("{}", std::string(core_options.status().message()));
    spdlog::shutdown();
    return 2;
  }
  core_options->log = &LogCore;
  absl::StatusOr<std::unique_ptr<GatewayCore>> created = GatewayCore::Create(*core_options);
  if (!created.ok()) {
    spdlog::error("{}", std::string(created.status().message()));
    spdlog::shutdown();
    return 2;
  }
  GatewayCore& core = **created;

  MetricsHttpServer::TlsSource metrics_tls;
  if (const CertificateWatch* cert_watch = listener->watch.get(); cert_watch != nullptr) {
    AddTlsMetrics(core.metrics(), *cert_watch);
    metrics_tls = [cert_watch] { return cert_watch->current(); };
  }
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (const std::string listen = absl::GetFlag(FLAGS_metrics_listen); !listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        MetricsHttpServer::Start(listen, core.metrics().registry(), metrics_tls);
    if (!started.ok()) {
      spdlog::error("{} (set --metrics_listen, or empty to disable /metrics)",
                    std::string(started.status().message()));
      spdlog::shutdown();
      return 1;
    }
    metrics_server = *std::move(started);
    if (!absl::GetFlag(FLAGS_metrics_port_file).empty()) {
      if (absl::Status s =
              WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), metrics_server->port());
          !s.ok()) {
        spdlog::error("{}", std::string(s.message()));
      }
    }
  }

  GatewayServer::Options options;
  options.resilience = &core.resilience();
  options.metrics = &core.metrics();
  options.listen = absl::GetFlag(FLAGS_listen);
  options.credentials = listener->grpc;
  options.threads = threads;
  options.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  options.access_log = absl::GetFlag(FLAGS_access_log);
  options.admission = core.admission();
  options.finished = core.finished();
  options.usage = core.usage();
  options.auth_throttle = &core.auth_throttle();
  absl::StatusOr<std::unique_ptr<GatewayServer>> server =
      GatewayServer::Start(options, core.store(), core.loops());
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    spdlog::shutdown();
    return 1;
  }
  // The OpenAI-compatible front door: the same call environments, so the same admission,
  // exchanges and sinks as the gRPC calls (docs/openai-compatible.md).
  std::unique_ptr<HttpFrontDoor> http;
  if (const std::string listen = absl::GetFlag(FLAGS_http_listen); !listen.empty()) {
    if (!IsLoopbackAddress(listen) && !absl::GetFlag(FLAGS_allow_insecure_non_loopback)) {
      spdlog::error(
          "--http_listen={} is not a loopback address and the HTTP front door has no TLS; put "
          "a TLS proxy in front and pass --allow_insecure_non_loopback",
          listen);
      spdlog::shutdown();
      return 2;
    }
    // A client that leaves mid-reply must cost an EPIPE on the next write, not the process.
    signal(SIGPIPE, SIG_IGN);
    HttpFrontDoor::Options http_options;
    http_options.listen = listen;
    http_options.max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_request_bytes));
    absl::StatusOr<std::unique_ptr<HttpFrontDoor>> started =
        HttpFrontDoor::Start(http_options, (*server)->call_envs());
    if (!started.ok()) {
      spdlog::error("{} (set --http_listen, or leave it empty)",
                    std::string(started.status().message()));
      spdlog::shutdown();
      return 1;
    }
    http = *std::move(started);
    if (!absl::GetFlag(FLAGS_http_port_file).empty()) {
      if (absl::Status s = WritePortFile(absl::GetFlag(FLAGS_http_port_file), http->port());
          !s.ok()) {
        spdlog::error("{}", std::string(s.message()));
      }
    }
    spdlog::info("OpenAI-compatible HTTP front door on {} (port {})", listen, http->port());
  }
  // The gateway reports NOT_SERVING until a config is in force: the file's now, or the control
  // plane's once a full snapshot arrives (from the cache file or the stream).
  GatewayServer* grpc_door = server->get();
  if (absl::Status started = core.Start([grpc_door, from_file](const std::string& version) {
        grpc_door->SetServing(true);
        spdlog::info("config {} applied: serving",
                     from_file && version.empty() ? "(unversioned)" : version);
      });
      !started.ok()) {
    spdlog::error("{}", std::string(started.message()));
    metrics_server.reset();  // its collectors read the core's components
    spdlog::shutdown();
    return 2;
  }
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    if (absl::Status s = WritePortFile(absl::GetFlag(FLAGS_port_file), (*server)->port());
        !s.ok()) {
      spdlog::error("{}", std::string(s.message()));
    }
  }
  spdlog::info("turnpike-gateway listening on {} (port {}, {})", options.listen, (*server)->port(),
               listener->watch == nullptr                   ? "plaintext"
               : absl::GetFlag(FLAGS_tls_client_ca).empty() ? "TLS"
                                                            : "mutual TLS");

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("received {}: draining for up to {}",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT",
               absl::FormatDuration(absl::GetFlag(FLAGS_drain_timeout)));
  core.StopWatching();
  // Both front doors drain together: HTTP in a thread beside gRPC.
  std::thread http_drain;
  if (http != nullptr) {
    http_drain = std::thread([&http] { http->Shutdown(absl::GetFlag(FLAGS_drain_timeout)); });
  }
  (*server)->Shutdown(absl::GetFlag(FLAGS_drain_timeout));
  if (http_drain.joinable()) http_drain.join();
  // /metrics goes first: its collectors read what the core's Shutdown stops.
  if (metrics_server != nullptr) metrics_server->Stop();
  // Every request has ended: make the usage records durable (the shipper sends them now or after
  // the restart), stop the upstream loops, give the leases back.
  core.Shutdown();
  spdlog::info("turnpike-gateway stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace
}  // namespace turnpike

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "turnpike-gateway (--config=FILE | --control_plane=HOST:PORT) [--listen=127.0.0.1:50051]");
  // --help lists this binary's flags (Abseil's default matches only a file named after the
  // program, and none is).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "server/");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  // Abseil's lock-order graph costs time on every Mutex acquisition; locks here are leaf locks.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return turnpike::Run();
}
