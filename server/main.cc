// turnpike-gateway: the data plane. Reads its config from a file (--config) and serves
// turnpike.v1.CompletionService and EmbeddingService until SIGTERM/SIGINT, then drains.
#include <signal.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/bearer_channel.h"
#include "common/listen_address.h"
#include "common/metrics_http_server.h"
#include "common/port_file.h"
#include "server/admission/gateway_admission.h"
#include "server/config/config_store.h"
#include "server/config/config_watch_client.h"
#include "server/config/health_reporter.h"
#include "server/config/key_use_table.h"
#include "server/config/runtime_config.h"
#include "server/grpc/gateway_server.h"
#include "server/grpc/listener_credentials.h"
#include "server/http/http_front_door.h"
#include "server/resilience/resilience.h"
#include "server/telemetry/gateway_metrics.h"
#include "server/telemetry/request_log.h"
#include "server/telemetry/request_telemetry.h"
#include "server/upstream/upstream_loop.h"
#include "server/usage/usage_recorder.h"
#include "server/usage/usage_shipper.h"
#include "server/usage/usage_spool.h"
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
ABSL_FLAG(int, threads, 0, "gRPC completion-queue threads (0 = one per core)");
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

// Subscribes to the control plane. The gateway reports NOT_SERVING until it holds a full
// snapshot, from the cache file or the stream.
absl::StatusOr<std::unique_ptr<ConfigWatchClient>> StartWatch(ConfigStore& store,
                                                              GatewayServer& server,
                                                              Resilience& resilience,
                                                              KeyUseTable& key_uses,
                                                              absl::BitGenRef rng) {
  ConfigWatchClient::Options options;
  options.target = absl::GetFlag(FLAGS_control_plane);
  options.node_id = NodeId();
  options.snapshot_path = absl::GetFlag(FLAGS_snapshot_cache);
  if (!options.snapshot_path.empty()) {
    std::error_code ec;
    const auto parent = std::filesystem::path(options.snapshot_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  }
  options.build_version = "turnpike-gateway";
  if (const std::string file = absl::GetFlag(FLAGS_node_token_file); !file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(file);
    if (!token.ok()) return token.status();
    options.node_token = *std::move(token);
  } else {
    spdlog::warn(
        "no --node_token_file: the control plane will refuse this gateway's watch "
        "stream, health reports and usage (docs/security.md)");
  }
  if (!absl::GetFlag(FLAGS_control_plane_ca).empty()) {
    grpc::SslCredentialsOptions tls;
    bool ok = true;
    tls.pem_root_certs = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_ca), &ok);
    if (!absl::GetFlag(FLAGS_control_plane_cert).empty()) {
      tls.pem_cert_chain = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_cert), &ok);
      tls.pem_private_key = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_key), &ok);
    }
    if (!ok) return absl::InvalidArgumentError("cannot read a --control_plane_* TLS file");
    options.credentials = grpc::SslCredentials(tls);
  } else {
    options.credentials = grpc::InsecureChannelCredentials();
  }
  options.log = [](absl::LogSeverity severity, const std::string& message) {
    if (severity >= absl::LogSeverity::kWarning) {
      spdlog::warn("config watch: {}", message);
    } else {
      spdlog::info("config watch: {}", message);
    }
  };
  auto apply = [&store, &server, &resilience,
                &key_uses](const config::v1::Snapshot& snapshot) -> absl::Status {
    absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config =
        RuntimeConfig::Build(snapshot, RuntimeConfig::ProcessEnv(), resilience, &key_uses);
    if (!config.ok()) return config.status();
    store.Set(*config);
    server.SetServing(true);
    spdlog::info("config {} applied: serving", snapshot.version());
    return absl::OkStatus();
  };
  absl::StatusOr<std::unique_ptr<ConfigWatchClient>> client =
      ConfigWatchClient::Create(std::move(options), apply, Clock::Real(), rng);
  if (!client.ok()) return client.status();
  absl::Status cached = (*client)->LoadCachedSnapshot();
  if (cached.ok()) {
    spdlog::info("started from the last good snapshot {}", (*client)->applied_version());
  } else if (cached.code() != absl::StatusCode::kNotFound) {
    spdlog::warn("last good snapshot not used: {}", std::string(cached.message()));
  }
  (*client)->Start();
  return client;
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
  // Created before any config: every snapshot resolves its targets' state in it.
  absl::BitGen bitgen;     // Resilience's (it seeds new upstreams, under its lock)
  absl::BitGen watch_rng;  // the config watch client's (reconnect jitter, on its thread)
  Resilience::Options resilience_options;
  resilience_options.on_event = [](const std::string& event) { spdlog::warn("{}", event); };
  Resilience resilience(resilience_options, Clock::Real(), bitgen);
  // When each caller key was last used (to the minute), for the health reports.
  KeyUseTable key_uses;
  std::shared_ptr<const RuntimeConfig> file_config;
  if (from_file) {
    absl::StatusOr<config::v1::Snapshot> snapshot = LoadSnapshotFile(absl::GetFlag(FLAGS_config));
    if (!snapshot.ok()) {
      spdlog::error("{}", std::string(snapshot.status().message()));
      spdlog::shutdown();
      return 2;
    }
    absl::StatusOr<std::shared_ptr<const RuntimeConfig>> config =
        RuntimeConfig::Build(*snapshot, RuntimeConfig::ProcessEnv(), resilience);
    if (!config.ok()) {
      spdlog::error("{}: {}", absl::GetFlag(FLAGS_config), std::string(config.status().message()));
      spdlog::shutdown();
      return 2;
    }
    file_config = *std::move(config);
  }

  const int threads = absl::GetFlag(FLAGS_threads) > 0
                          ? absl::GetFlag(FLAGS_threads)
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int loop_count =
      absl::GetFlag(FLAGS_upstream_loops) > 0 ? absl::GetFlag(FLAGS_upstream_loops) : threads;
  std::vector<std::unique_ptr<UpstreamLoop>> loops;
  std::vector<UpstreamLoop*> loop_ptrs;
  for (int i = 0; i < loop_count; ++i) {
    absl::StatusOr<std::unique_ptr<UpstreamLoop>> loop = UpstreamLoop::Create({});
    if (!loop.ok()) {
      spdlog::error("upstream loop: {}", std::string(loop.status().message()));
      spdlog::shutdown();
      return 1;
    }
    loop_ptrs.push_back(loop->get());
    loops.push_back(*std::move(loop));
  }
  ConfigStore store;

  GatewayMetrics metrics;
  metrics.AddResilience(&resilience);
  metrics.AddGauge("turnpike_upstream_active_transfers", "Upstream HTTP transfers in flight.",
                   [&loop_ptrs] {
                     double n = 0;
                     for (UpstreamLoop* l : loop_ptrs) n += l->active_transfers();
                     return n;
                   });
  metrics.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                   [] { return ProcessResidentBytes(); });
  // Rate limits and budgets (docs/limits.md): leases from the control plane, or from a local
  // ledger over the config file's limits. Declared before the /metrics server, which reads it.
  GatewayAdmission admission =
      MakeGatewayAdmission(NodeId(), from_control_plane, store, Clock::Real(),
                           [](const std::string& message) { spdlog::warn("{}", message); });
  AddAdmissionMetrics(metrics, *admission.admission);
  metrics.AddConfigVersion([&store] {
    std::shared_ptr<const RuntimeConfig> config = store.Get();
    return config != nullptr ? config->version() : std::string();
  });
  MetricsHttpServer::TlsSource metrics_tls;
  if (const CertificateWatch* cert_watch = listener->watch.get(); cert_watch != nullptr) {
    AddTlsMetrics(metrics, *cert_watch);
    metrics_tls = [cert_watch] { return cert_watch->current(); };
  }
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (const std::string listen = absl::GetFlag(FLAGS_metrics_listen); !listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        MetricsHttpServer::Start(listen, metrics.registry(), metrics_tls);
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
  options.resilience = &resilience;
  options.metrics = &metrics;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.credentials = listener->grpc;
  options.threads = threads;
  options.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  options.access_log = absl::GetFlag(FLAGS_access_log);
  options.admission = admission.admission.get();
  AdmissionSettler settler;
  // Where every request ends: the access log and metrics, admission's settlement, then metering
  // (docs/usage.md).
  RequestTelemetry telemetry(options.access_log, &metrics);
  std::vector<RequestFinishedSink*> sinks = {&telemetry, &settler};
  // The request log (docs/request-log.md); shared with its /metrics collectors.
  std::shared_ptr<RequestLog> request_log;
  if (const std::string where = absl::GetFlag(FLAGS_request_log); where != "off") {
    RequestLog::Options log_options;
    log_options.path = where;
    log_options.max_bytes = int64_t{absl::GetFlag(FLAGS_request_log_max_mb)} << 20;
    log_options.max_files = absl::GetFlag(FLAGS_request_log_keep);
    log_options.excerpt_max_bytes =
        static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_request_log_excerpt_bytes)));
    absl::StatusOr<std::unique_ptr<RequestLog>> opened = RequestLog::Create(log_options);
    if (!opened.ok()) {
      spdlog::error("--request_log: {}", std::string(opened.status().message()));
      spdlog::shutdown();
      return 2;
    }
    request_log = *std::move(opened);
    sinks.push_back(request_log.get());
    metrics.AddCounter("turnpike_request_log_lines_total", "Request log lines written.",
                       [request_log] { return static_cast<double>(request_log->stats().written); });
    metrics.AddCounter("turnpike_request_log_dropped_total",
                       "Request log lines dropped because the writer's queue was full.",
                       [request_log] { return static_cast<double>(request_log->stats().dropped); });
    metrics.AddCounter(
        "turnpike_request_log_write_errors_total", "Failed request log writes and rotations.",
        [request_log] { return static_cast<double>(request_log->stats().write_errors); });
  }
  std::unique_ptr<UsageSpool> spool;
  std::unique_ptr<UsageRecorder> recorder;
  const std::string full_policy = absl::GetFlag(FLAGS_usage_spool_full);
  if (full_policy != "drop" && full_policy != "reject") {
    spdlog::error("--usage_spool_full must be drop or reject, not \"{}\"", full_policy);
    spdlog::shutdown();
    return 2;
  }
  if (from_control_plane && !absl::GetFlag(FLAGS_usage_spool_dir).empty()) {
    UsageSpool::Options spool_options;
    spool_options.dir = absl::GetFlag(FLAGS_usage_spool_dir);
    spool_options.max_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_usage_spool_max_mb)) << 20;
    spool_options.commit_interval = absl::GetFlag(FLAGS_usage_commit_interval);
    std::error_code ec;
    const auto parent = std::filesystem::path(spool_options.dir).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    absl::StatusOr<std::unique_ptr<UsageSpool>> opened =
        UsageSpool::Open(spool_options, Clock::Real());
    if (!opened.ok()) {
      spdlog::error("{} (set --usage_spool_dir)", std::string(opened.status().message()));
      spdlog::shutdown();
      return 2;
    }
    spool = *std::move(opened);
    const UsageSpool::Stats recovered = spool->stats();
    if (recovered.recovered > 0 || recovered.truncated_bytes > 0) {
      spdlog::info("usage spool: {} records from before the restart to ship ({} torn bytes cut)",
                   recovered.recovered, recovered.truncated_bytes);
    }
    UsageSpool* full_spool = spool.get();
    UsageRecorder::Options recorder_options;
    recorder_options.reject_when_full = full_policy == "reject";
    recorder_options.excerpt_max_bytes =
        static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_request_log_excerpt_bytes)));
    recorder = std::make_unique<UsageRecorder>(*spool, NodeId(), recorder_options, [full_spool] {
      // At most one line a minute, however many records are dropped.
      static std::atomic<int64_t> last_log_ns{0};
      const int64_t now = absl::GetCurrentTimeNanos();
      int64_t last = last_log_ns.load(std::memory_order_relaxed);
      if (now - last < int64_t{60} * 1000000000 ||
          !last_log_ns.compare_exchange_strong(last, now)) {
        return;
      }
      spdlog::error(
          "usage spool full: {} usage records dropped so far (is the control plane "
          "reachable? see turnpike_usage_records_dropped_total)",
          full_spool->stats().dropped);
    });
    sinks.push_back(recorder.get());
    UsageSpool* sp = spool.get();
    metrics.AddGauge("turnpike_usage_spool_bytes", "Usage records on disk or queued, bytes.",
                     [sp] { return static_cast<double>(sp->stats().bytes); });
    metrics.AddCounter("turnpike_usage_records_spooled_total",
                       "Usage records accepted into the spool.",
                       [sp] { return static_cast<double>(sp->stats().appended); });
    metrics.AddCounter("turnpike_usage_records_dropped_total",
                       "Usage records not kept because the spool was full.",
                       [sp] { return static_cast<double>(sp->stats().dropped); });
    UsageRecorder* rec = recorder.get();
    metrics.AddCounter(
        "turnpike_usage_inline_digests_total",
        "Audit evidence hashed and redacted on a request's thread: the digest queue was full.",
        [rec] { return static_cast<double>(rec->inline_digests()); });
  }
  RequestFinishedFanout finished(sinks);
  options.finished = &finished;
  options.usage = recorder.get();
  absl::StatusOr<std::unique_ptr<GatewayServer>> server =
      GatewayServer::Start(options, store, loop_ptrs);
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
  std::unique_ptr<ConfigWatchClient> watch;
  std::unique_ptr<HealthReporter> health;
  std::unique_ptr<UsageShipper> shipper;  // before `spool` goes
  if (from_file) {
    store.Set(file_config);
    (*server)->SetServing(true);
    spdlog::info("config {} applied: serving",
                 file_config->version().empty() ? "(unversioned)" : file_config->version());
  } else {
    absl::StatusOr<std::unique_ptr<ConfigWatchClient>> client =
        StartWatch(store, **server, resilience, key_uses, watch_rng);
    if (!client.ok()) {
      spdlog::error("{}", std::string(client.status().message()));
      spdlog::shutdown();
      return 2;
    }
    watch = *std::move(client);
    admission.control_plane->SetChannel(watch->channel());
    if (spool != nullptr) {
      shipper = std::make_unique<UsageShipper>(*spool, watch->channel(), UsageShipper::Options(),
                                               Clock::Real());
      UsageShipper* sh = shipper.get();
      metrics.AddCounter("turnpike_usage_records_shipped_total",
                         "Usage records the control plane acknowledged.",
                         [sh] { return static_cast<double>(sh->stats().shipped); });
    }
    ConfigWatchClient* w = watch.get();
    metrics.AddCounter("turnpike_config_snapshots_applied_total",
                       "Config snapshots applied (from the control plane or the cache).",
                       [w] { return static_cast<double>(w->stats().applied); });
    metrics.AddCounter("turnpike_config_snapshots_rejected_total",
                       "Config snapshots rejected (NACKed) as invalid.",
                       [w] { return static_cast<double>(w->stats().nacked); });
    absl::StatusOr<std::unique_ptr<HealthReporter>> reporter = HealthReporter::Create(
        {.node_id = watch->node_id(),
         .interval = absl::GetFlag(FLAGS_health_report_interval),
         .log_failure = [](const std::string& m) { spdlog::debug("{}", m); },
         .key_uses = [&key_uses] { return key_uses.Uses(); }},
        watch->channel(), [&resilience] { return resilience.Status(); }, Clock::Real());
    if (!reporter.ok()) {
      spdlog::error("{}", std::string(reporter.status().message()));
      metrics_server.reset();  // its collectors read `watch`, which goes first on return
      spdlog::shutdown();
      return 2;
    }
    health = *std::move(reporter);
    health->Start();
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
  if (health != nullptr) health->Stop();
  if (watch != nullptr) watch->Stop();
  // Both front doors drain together: HTTP in a thread beside gRPC.
  std::thread http_drain;
  if (http != nullptr) {
    http_drain = std::thread([&http] { http->Shutdown(absl::GetFlag(FLAGS_drain_timeout)); });
  }
  (*server)->Shutdown(absl::GetFlag(FLAGS_drain_timeout));
  if (http_drain.joinable()) http_drain.join();
  // Every request has ended: its usage record is queued; make it durable before exiting (the
  // shipper sends it now or after the restart).
  if (recorder != nullptr) recorder->Flush();
  if (spool != nullptr) spool->Flush();
  if (request_log != nullptr) request_log->Flush();
  for (auto& loop : loops) loop->Stop();
  if (metrics_server != nullptr) metrics_server->Stop();
  // Every request has settled: give the leases back (what they did not spend returns at once).
  admission.admission.reset();
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
