// turnpike-gateway: the data plane. Reads its config from a file (--config) and serves
// turnpike.v1.CompletionService, EmbeddingService and ClassificationService until SIGTERM/SIGINT,
// then drains.
#include <signal.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/listen_address.h"
#include "common/metrics_http_server.h"
#include "common/port_file.h"
#include "server/core/gateway_core.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/listener_credentials.h"
#include "server/http/http_front_door.h"
#include "spdlog/async.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "Address to serve on: host:port or unix:/path");
ABSL_FLAG(std::string, port_file, "", "If set, write the bound port here once listening");
ABSL_FLAG(std::string, config, "", "Config file: the JSON form of turnpike.config.v1.Snapshot");
ABSL_FLAG(
    std::string, control_plane, "",
    "Control plane address (host:port); replaces --config: config arrives on the watch stream");
ABSL_FLAG(std::string, node_id, "",
          "This gateway's id on the watch stream (default: hostname-pid)");
ABSL_FLAG(std::string, snapshot_cache, "var/gateway-snapshot.pb",
          "With --control_plane: where the last good snapshot is kept (mode 0600) and started from "
          "when the control plane is down; empty disables it");
ABSL_FLAG(std::string, control_plane_ca, "", "PEM CA bundle: use TLS to the control plane");
ABSL_FLAG(std::string, control_plane_cert, "", "PEM client certificate for mutual TLS");
ABSL_FLAG(std::string, control_plane_key, "", "PEM client private key for mutual TLS");
ABSL_FLAG(std::string, node_token_file, "",
          "With --control_plane: file holding this gateway's node token (tpn_..., issued by "
          "AdminService/CreateNodeToken for its --node_id); sent on every call to the control "
          "plane, which refuses calls without it");
ABSL_FLAG(absl::Duration, health_report_interval, absl::Seconds(5),
          "With --control_plane: how often upstream health (circuit breakers) is reported to it");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGTERM/SIGINT, how long streams in flight may take to finish");
ABSL_FLAG(int, max_request_bytes, 4 << 20, "Largest request message accepted");
ABSL_FLAG(int, threads, 0, "gRPC completion-queue threads (0 = half the cores, at least one)");
ABSL_FLAG(int, upstream_loops, 0,
          "Upstream HTTP event loops (0 = one per completion-queue thread)");
ABSL_FLAG(std::string, http_listen, "",
          "Address (host:port) of the OpenAI-compatible HTTP front door (/v1/chat/completions, "
          "/v1/embeddings, /v1/models; docs/openai-compatible.md); empty disables it");
ABSL_FLAG(std::string, http_port_file, "", "If set, write the HTTP front door's port here");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Address (host:port) of the Prometheus /metrics endpoint; empty disables it");
ABSL_FLAG(std::string, metrics_port_file, "", "If set, write the /metrics port here");
ABSL_FLAG(bool, access_log, true, "Log one line per request");
ABSL_FLAG(std::string, request_log, "off",
          "Request log, one JSON line per request: stdout, a file path, or off "
          "(docs/request-log.md)");
ABSL_FLAG(int, request_log_max_mb, 100, "Rotate the request log file at this size, MiB (0: never)");
ABSL_FLAG(int, request_log_keep, 5, "Rotated request log files kept (PATH.1 ... PATH.N)");
ABSL_FLAG(int, request_log_excerpt_bytes, 2048,
          "CONTENT_POLICY_REDACTED: most bytes of request text, and of reply text, per request-log "
          "line and per audit entry");
ABSL_FLAG(std::string, usage_spool_dir, "var/usage-spool",
          "With --control_plane: where usage records wait (fsynced) until the control plane has "
          "them; empty turns metering off");
ABSL_FLAG(int, usage_spool_max_mb, 256, "Bound of the usage spool (disk and queue), MiB");
ABSL_FLAG(std::string, usage_spool_full, "drop",
          "When the usage spool is full: drop (keep serving, count the records not kept) or "
          "reject (refuse new requests with UNAVAILABLE)");
ABSL_FLAG(absl::Duration, usage_commit_interval, absl::Milliseconds(20),
          "Longest a finished request's usage record waits in memory before it is fsynced");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");
// Callers over TLS (docs/tls.md): read only by ListenerTlsFlags() below.
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the gRPC listener and /metrics (enables TLS 1.2+); reloaded "
          "when the file changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: callers present a certificate it signed (mutual TLS); a caller whose "
          "certificate names one of its cert_sans is that caller");
ABSL_FLAG(std::string, tls_client_auth, "require",
          "With --tls_client_ca: require (no certificate, no connection) or optional (callers "
          "without one connect and use their key)");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "How often the TLS files are checked for a new certificate");
ABSL_FLAG(bool, allow_insecure_non_loopback, false,
          "Allow listening without TLS on a non-loopback address (logged as a warning)");

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

std::string ReadFileOrDie(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *ok = false;
    return "";
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The listeners' TLS from the flags (server/grpc/listener_credentials.h).
ListenerTlsOptions ListenerTlsFlags() {
  ListenerTlsOptions tls;
  tls.listen = absl::GetFlag(FLAGS_listen);
  tls.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  tls.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  tls.tls_key = absl::GetFlag(FLAGS_tls_key);
  tls.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  tls.tls_client_auth = absl::GetFlag(FLAGS_tls_client_auth);
  tls.allow_insecure_non_loopback = absl::GetFlag(FLAGS_allow_insecure_non_loopback);
  tls.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  return tls;
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

// This gateway's node id: --node_id, or host-pid.
std::string NodeId() {
  if (!absl::GetFlag(FLAGS_node_id).empty()) return absl::GetFlag(FLAGS_node_id);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, "-", getpid());
}

// The control plane's channel credentials: TLS with --control_plane_ca, else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ControlPlaneCredentials() {
  if (absl::GetFlag(FLAGS_control_plane_ca).empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions tls;
  bool ok = true;
  tls.pem_root_certs = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_ca), &ok);
  if (!absl::GetFlag(FLAGS_control_plane_cert).empty()) {
    tls.pem_cert_chain = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_cert), &ok);
    tls.pem_private_key = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_key), &ok);
  }
  if (!ok) return absl::InvalidArgumentError("cannot read a --control_plane_* TLS file");
  return grpc::SslCredentials(tls);
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

// The core's options from the flags.
absl::StatusOr<GatewayCore::Options> CoreOptions(int threads) {
  GatewayCore::Options core;
  core.config_file = absl::GetFlag(FLAGS_config);
  core.control_plane = absl::GetFlag(FLAGS_control_plane);
  core.node_id = NodeId();
  core.snapshot_cache = absl::GetFlag(FLAGS_snapshot_cache);
  core.node_token_file = absl::GetFlag(FLAGS_node_token_file);
  if (!core.control_plane.empty() && core.node_token_file.empty()) {
    spdlog::warn(
        "no --node_token_file: the control plane will refuse this gateway's watch "
        "stream, health reports and usage (docs/security.md)");
  }
  if (!core.control_plane.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ControlPlaneCredentials();
    if (!credentials.ok()) return credentials.status();
    core.control_plane_credentials = *std::move(credentials);
  }
  core.build_version = "turnpike-gateway";
  core.health_report_interval = absl::GetFlag(FLAGS_health_report_interval);
  core.usage_spool_dir = absl::GetFlag(FLAGS_usage_spool_dir);
  core.usage_spool_max_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_usage_spool_max_mb)) << 20;
  core.usage_commit_interval = absl::GetFlag(FLAGS_usage_commit_interval);
  const std::string full_policy = absl::GetFlag(FLAGS_usage_spool_full);
  if (full_policy != "drop" && full_policy != "reject") {
    return absl::InvalidArgumentError(
        absl::StrCat("--usage_spool_full must be drop or reject, not \"", full_policy, "\""));
  }
  core.usage_reject_when_full = full_policy == "reject";
  if (const std::string where = absl::GetFlag(FLAGS_request_log); where != "off") {
    if (where.empty())
      return absl::InvalidArgumentError("--request_log: needs stdout, a path or off");
    core.request_log = where;
  }
  core.request_log_max_bytes = int64_t{absl::GetFlag(FLAGS_request_log_max_mb)} << 20;
  core.request_log_keep = absl::GetFlag(FLAGS_request_log_keep);
  core.excerpt_max_bytes =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_request_log_excerpt_bytes)));
  core.upstream_loops =
      absl::GetFlag(FLAGS_upstream_loops) > 0 ? absl::GetFlag(FLAGS_upstream_loops) : threads;
  core.access_log = absl::GetFlag(FLAGS_access_log);
  core.log = &LogCore;
  return core;
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
  absl::StatusOr<GatewayCore::Options> core_options = CoreOptions(threads);
  if (!core_options.ok()) {
    spdlog::error("{}", std::string(core_options.status().message()));
    spdlog::shutdown();
    return 2;
  }
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
  absl::ParseCommandLine(argc, argv);
  // Abseil's lock-order graph costs time on every Mutex acquisition; locks here are leaf locks.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return turnpike::Run();
}
