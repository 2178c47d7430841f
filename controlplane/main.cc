// turnpike-control: the control plane process. Flags are read here and nowhere else.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/metrics_http_server.h"
#include "common/port_file.h"
#include "common/tls_server_credentials.h"
#include "controlplane/alerts/alert_metrics.h"
#include "controlplane/budget/budget_metrics.h"
#include "controlplane/caller_keys.h"
#include "controlplane/control_plane.h"
#include "controlplane/dashboard/dashboard.h"
#include "controlplane/secret_box.h"
#include "grpcpp/security/server_credentials.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50052", "gRPC listen address (host:port; port 0 = any)");
ABSL_FLAG(std::string, port_file, "", "if set, write the bound port to this file once serving");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9465",
          "address (host:port) of the HTTP port: Prometheus /metrics and the /dashboard page "
          "(docs/dashboard.md); empty disables both");
ABSL_FLAG(std::string, metrics_port_file, "", "if set, write the /metrics port to this file");
ABSL_FLAG(std::string, db, "./var/turnpike.db", "SQLite database file (created if missing)");
ABSL_FLAG(std::string, master_key_file, "",
          "file holding the 32-byte master key (64 hex chars or base64); "
          "or set TURNPIKE_MASTER_KEY");
ABSL_FLAG(std::string, previous_master_key_file, "",
          "during a master key rotation: file holding the key being rotated away from (the new "
          "one is --master_key_file); credentials sealed under either key open, new ones are "
          "sealed under the new key, and RotateMasterKey re-seals the rest (docs/security.md)");
ABSL_FLAG(int32_t, master_key_rotation_batch, 32,
          "credential versions re-sealed per transaction by a master key rotation");
ABSL_FLAG(absl::Duration, master_key_rotation_test_pause, absl::ZeroDuration(),
          "TESTS ONLY: wait this long between two batches of a master key rotation");
ABSL_FLAG(bool, dev_insecure_master_key, false,
          "DEVELOPMENT ONLY: use a fixed, publicly known master key (tools/dev up)");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "how often the TLS files are checked for a new certificate (no restart needed)");
ABSL_FLAG(absl::Duration, usage_retention, absl::Hours(24 * 90),
          "how long raw usage records are kept (e.g. 2160h); hourly spend rollups are kept for "
          "good");
ABSL_FLAG(std::string, audit_signing_key_file, "",
          "PEM Ed25519 private key that signs the audit trail's checkpoints (make one with "
          "`openssl genpkey -algorithm ed25519 -out FILE`; docs/audit.md); empty: entries are "
          "chained but not signed");
ABSL_FLAG(absl::Duration, audit_checkpoint_interval, absl::Minutes(1),
          "how often the audit trail's head is signed when entries were added");
ABSL_FLAG(absl::Duration, audit_retention, absl::ZeroDuration(),
          "audit entries covered by a checkpoint older than this are pruned (0: kept for good)");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(30),
          "how long a budget or rate-limit lease lives unless its gateway renews it (1s to 1h); "
          "a gateway that dies loses its lease this long after its last renewal");
ABSL_FLAG(absl::Duration, alert_eval_interval, absl::Seconds(15),
          "how often alert rules are evaluated (1s to 10m; docs/alerts.md)");
ABSL_FLAG(int, alert_max_attempts, 5,
          "attempts per alert notification before it is recorded as failed (1 to 20)");
ABSL_FLAG(bool, allow_insecure_non_loopback, false,
          "no longer supported (plaintext is for loopback and unix sockets only); kept so a "
          "command line that passes it fails with an explanation");
ABSL_FLAG(absl::Duration, auth_failure_max_delay, absl::Seconds(2),
          "failed authentications beyond 5 a minute are answered after a delay doubling from 50ms "
          "every 5 failures up to this; 0 turns the slowdown off (docs/security.md)");
ABSL_FLAG(std::string, bootstrap_admin_token_file, "",
          "file holding the first admin token (a tpa_ token, registered with role admin if it is "
          "not stored yet); if the file does not exist, a new token is written there (mode 0600). "
          "Without this flag, a database with no admin token gets one printed once on stderr");

namespace {

using turnpike::controlplane::ControlPlane;
using turnpike::controlplane::MasterKey;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<MasterKey> LoadKeyFile(const std::string& file) {
  struct stat st;
  if (stat(file.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    spdlog::warn("master key file {} is readable by group or others; chmod 0400 it", file);
  }
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) return text.status();
  absl::StatusOr<MasterKey> key = MasterKey::Parse(*text);
  if (!key.ok())
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", key.status().message()));
  return key;
}

absl::StatusOr<MasterKey> LoadMasterKey() {
  const std::string file = absl::GetFlag(FLAGS_master_key_file);
  const char* env = std::getenv("TURNPIKE_MASTER_KEY");
  if (!file.empty()) {
    if (env != nullptr)
      spdlog::warn("both --master_key_file and TURNPIKE_MASTER_KEY set; using the file");
    return LoadKeyFile(file);
  }
  if (env != nullptr) {
    absl::StatusOr<MasterKey> key = MasterKey::Parse(env);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("TURNPIKE_MASTER_KEY: ", key.status().message()));
    }
    return key;
  }
  if (absl::GetFlag(FLAGS_dev_insecure_master_key)) {
    spdlog::warn("*************************************************************************");
    spdlog::warn("* --dev_insecure_master_key: credentials are sealed with a PUBLIC key.   *");
    spdlog::warn("* Anyone with the database can read every provider key. DEVELOPMENT ONLY. *");
    spdlog::warn("*************************************************************************");
    return MasterKey::InsecureDevelopmentKey();
  }
  return absl::FailedPreconditionError(
      "no master key: pass --master_key_file=PATH or set TURNPIKE_MASTER_KEY (generate one with "
      "`openssl rand -hex 32`); --dev_insecure_master_key is for local development only");
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const std::string& listen) {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (cert.empty()) {
    if (!ca.empty())
      return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert/--tls_key");
    if (absl::GetFlag(FLAGS_allow_insecure_non_loopback)) {
      return absl::FailedPreconditionError(
          "--allow_insecure_non_loopback is no longer supported: admin and node tokens and "
          "provider keys would cross the network in clear. Use --tls_cert/--tls_key (and "
          "--tls_client_ca), or a loopback address");
    }
    if (!turnpike::controlplane::IsLoopbackAddress(listen)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to listen on ", listen,
          " without TLS: tokens and config snapshots (provider API keys) would cross the network "
          "in clear. Use --tls_cert/--tls_key (and --tls_client_ca), or a loopback address"));
    }
    return std::shared_ptr<grpc::ServerCredentials>();  // local credentials (ControlPlane)
  }
  // Reloaded from disk when the files change (common/tls_server_credentials.h).
  turnpike::ServerTlsOptions tls;
  tls.files = {cert, key, ca};
  tls.client_certs =
      ca.empty() ? turnpike::ClientCertMode::kNone : turnpike::ClientCertMode::kRequire;
  tls.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  return turnpike::ReloadingServerCredentials(tls);
}

// --bootstrap_admin_token_file: the token in the file, or a new one written to it.
absl::StatusOr<std::string> BootstrapAdminToken(const std::string& path) {
  if (std::filesystem::exists(path)) {
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) return text.status();
    std::string token(absl::StripAsciiWhitespace(*text));
    return token;
  }
  absl::StatusOr<turnpike::controlplane::GeneratedCallerKey> key =
      turnpike::controlplane::GenerateKeyWithPrefix(turnpike::controlplane::kAdminTokenPrefix);
  if (!key.ok()) return key.status();
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return absl::FailedPreconditionError(absl::StrCat("cannot create ", path));
  const std::string line = key->key + "\n";
  const bool ok =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  spdlog::info("wrote a new admin token to {} (role admin)", path);
  return key->key;
}

int Fail(const absl::Status& s) {
  spdlog::error("turnpike-control: {}", std::string(s.message()));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "turnpike-control: Turnpike's control plane (admin API + config watch)");
  // --help lists this binary's flags (Abseil's default matches only a file named after the
  // program, and none is).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "controlplane/");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);

  // Signals are taken by sigwait() below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<MasterKey> master_key = LoadMasterKey();
  if (!master_key.ok()) return Fail(master_key.status());
  std::optional<MasterKey> previous_master_key;
  if (const std::string file = absl::GetFlag(FLAGS_previous_master_key_file); !file.empty()) {
    absl::StatusOr<MasterKey> previous = LoadKeyFile(file);
    if (!previous.ok()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--previous_master_key_file: ", previous.status().message())));
    }
    previous_master_key = *std::move(previous);
  }

  ControlPlane::Options options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.db_path = absl::GetFlag(FLAGS_db);
  options.usage.retention = absl::GetFlag(FLAGS_usage_retention);
  options.auth_throttle.max_delay = absl::GetFlag(FLAGS_auth_failure_max_delay);
  options.admin.master_key_rotation_batch = absl::GetFlag(FLAGS_master_key_rotation_batch);
  if (options.admin.master_key_rotation_batch < 1) {
    return Fail(absl::InvalidArgumentError("--master_key_rotation_batch must be at least 1"));
  }
  options.admin.master_key_rotation_pause = absl::GetFlag(FLAGS_master_key_rotation_test_pause);
  options.admin.on_rotation_progress = [](int64_t resealed, int64_t remaining) {
    spdlog::info("master key rotation: {} credential version(s) re-sealed, {} left", resealed,
                 remaining);
  };
  if (options.usage.retention <= absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError("--usage_retention must be positive"));
  }
  options.audit_signing_key_file = absl::GetFlag(FLAGS_audit_signing_key_file);
  options.audit_checkpoint_interval = absl::GetFlag(FLAGS_audit_checkpoint_interval);
  options.audit.retention = absl::GetFlag(FLAGS_audit_retention);
  if (options.audit_checkpoint_interval <= absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError("--audit_checkpoint_interval must be positive"));
  }
  if (options.audit.retention < absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError("--audit_retention must not be negative"));
  }
  options.leases.lease_ttl = absl::GetFlag(FLAGS_lease_ttl);
  if (absl::Status s = turnpike::controlplane::LeaseLedger::ValidateOptions(options.leases);
      !s.ok()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--lease_ttl: ", s.message())));
  }
  options.alerts.eval_interval = absl::GetFlag(FLAGS_alert_eval_interval);
  if (options.alerts.eval_interval < absl::Seconds(1) ||
      options.alerts.eval_interval > absl::Minutes(10)) {
    return Fail(absl::InvalidArgumentError("--alert_eval_interval must be between 1s and 10m"));
  }
  options.alerts.notifier.max_attempts = absl::GetFlag(FLAGS_alert_max_attempts);
  if (options.alerts.notifier.max_attempts < 1 || options.alerts.notifier.max_attempts > 20) {
    return Fail(absl::InvalidArgumentError("--alert_max_attempts must be between 1 and 20"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      ServerCredentials(options.listen_address);
  if (!creds.ok()) return Fail(creds.status());
  options.server_credentials = *creds;

  if (const std::string file = absl::GetFlag(FLAGS_bootstrap_admin_token_file); !file.empty()) {
    absl::StatusOr<std::string> token = BootstrapAdminToken(file);
    if (!token.ok()) return Fail(token.status());
    options.bootstrap_admin_token = *token;
  }

  std::filesystem::path parent = std::filesystem::path(options.db_path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Fail(absl::FailedPreconditionError(
          absl::StrCat("cannot create ", parent.string(), ": ", ec.message())));
    }
  }

  absl::StatusOr<std::unique_ptr<ControlPlane>> cp =
      ControlPlane::Start(options, *master_key, turnpike::Clock::Real(),
                          previous_master_key.has_value() ? &*previous_master_key : nullptr);
  if (!cp.ok()) return Fail(cp.status());
  if (!(*cp)->identities().HasAdminTokens()) {
    // First start of an empty database without --bootstrap_admin_token_file: the only time a
    // token is printed. It goes to stderr directly, not through the log.
    absl::StatusOr<turnpike::admin::v1::CreateAdminTokenResponse> first =
        (*cp)->identities().CreateAdminToken("bootstrap", turnpike::admin::v1::ADMIN_ROLE_ADMIN,
                                             "system");
    if (!first.ok()) return Fail(first.status());
    std::fprintf(stderr,
                 "\nNo admin token existed, so one was made (role admin, name \"bootstrap\"). It "
                 "is shown this once:\n\n  %s\n\nUse it as metadata \"authorization: Bearer "
                 "<token>\" (docs/security.md).\n\n",
                 first->token().c_str());
  }
  spdlog::info("turnpike-control serving on port {} (db {}, schema v{}, {})", (*cp)->port(),
               options.db_path, turnpike::controlplane::EmbeddedMigrations().size(),
               absl::GetFlag(FLAGS_tls_cert).empty() ? "plaintext" : "TLS");
  // Metrics, read at scrape time (docs/metrics.md).
  turnpike::MetricsRegistry metrics;
  turnpike::controlplane::ControlPlane* raw = cp->get();
  using turnpike::MetricSample;
  using Type = turnpike::MetricsRegistry::Type;
  metrics.AddCollector("turnpike_control_config_version",
                       "The current config version (every committed admin change bumps it).",
                       Type::kGauge, {}, [raw] {
                         absl::StatusOr<turnpike::controlplane::ConfigVersion> v =
                             raw->admin().GetConfigVersion();
                         if (!v.ok()) return std::vector<MetricSample>{};
                         return std::vector<MetricSample>{{{}, static_cast<double>(v->version)}};
                       });
  metrics.AddCollector(
      "turnpike_control_data_planes",
      "Gateways with an open watch stream (state=connected), and those of them that have acked the "
      "current version (state=current).",
      Type::kGauge, {"state"}, [raw] {
        absl::StatusOr<turnpike::controlplane::ConfigVersion> v = raw->admin().GetConfigVersion();
        const auto [connected, current] =
            raw->registry().Count(v.ok() ? absl::StrCat(v->version) : std::string());
        return std::vector<MetricSample>{{{"connected"}, static_cast<double>(connected)},
                                         {{"current"}, static_cast<double>(current)}};
      });
  metrics.AddCollector(
      "turnpike_control_active_calls", "gRPC calls in flight (admin calls and watch streams).",
      Type::kGauge, {}, [raw] {
        return std::vector<MetricSample>{{{}, static_cast<double>(raw->active_calls())}};
      });
  metrics.AddCollector(
      "turnpike_usage_records_ingested_total",
      "Usage records stored (first delivery of a request id).", Type::kCounter, {}, [raw] {
        return std::vector<MetricSample>{{{}, static_cast<double>(raw->ledger().ingested_total())}};
      });
  metrics.AddCollector("turnpike_usage_records_duplicate_total",
                       "Usage records skipped because their request id was already stored "
                       "(a gateway resent a batch).",
                       Type::kCounter, {}, [raw] {
                         return std::vector<MetricSample>{
                             {{}, static_cast<double>(raw->ledger().duplicate_total())}};
                       });
  metrics.AddCollector(
      "turnpike_usage_ledger_lag_seconds",
      "Seconds between now and the start time of the newest usage record stored since the "
      "control plane started (0 before the first); grows when gateways stop reporting.",
      Type::kGauge, {}, [raw] {
        return std::vector<MetricSample>{{{}, raw->ledger().lag_seconds()}};
      });
  // Lease ledger counters, per quota unit (docs/budgets.md).
  using turnpike::controlplane::LeaseLedger;
  auto lease_counter = [&metrics, raw](const char* name, const char* help,
                                       int64_t LeaseLedger::Counters::*field) {
    metrics.AddCollector(name, help, Type::kCounter, {"unit"}, [raw, field] {
      std::vector<MetricSample> out;
      for (auto [unit, label] :
           {std::pair{turnpike::budget::v1::QUOTA_UNIT_USD_MICROS, "usd_micros"},
            std::pair{turnpike::budget::v1::QUOTA_UNIT_REQUESTS, "requests"},
            std::pair{turnpike::budget::v1::QUOTA_UNIT_TOKENS, "tokens"}}) {
        out.push_back({{label}, static_cast<double>(raw->leases().counters(unit).*field)});
      }
      return out;
    });
  };
  lease_counter("turnpike_control_lease_grants_total",
                "Lease acquisitions and top-ups that granted more than 0.",
                &LeaseLedger::Counters::grants);
  lease_counter("turnpike_control_lease_grants_refused_total",
                "Lease acquisitions and top-ups that asked for more than 0 and got 0 (the quota "
                "was exhausted for the window).",
                &LeaseLedger::Counters::refused);
  lease_counter("turnpike_control_leases_expired_total",
                "Leases that lapsed unrenewed and were charged their last reported spent + "
                "reserved.",
                &LeaseLedger::Counters::expired);
  lease_counter("turnpike_control_lease_overrun_total",
                "Amount closed leases spent beyond what they were granted (a provider overran the "
                "bound the gateway reserved), in the unit's own unit.",
                &LeaseLedger::Counters::overrun);
  // Each budget's limit, spent, reserved and remaining (docs/metrics.md, "Budgets").
  turnpike::controlplane::AddBudgetMetrics(metrics, raw->leases());
  // Each alert's state (docs/metrics.md, "Alerts").
  turnpike::controlplane::AddAlertMetrics(
      metrics, [raw] { return raw->alerts().Alerts(); },
      [raw] { return raw->alerts().evaluations(); });
  metrics.AddCollector(
      "turnpike_control_auth_refusals_total",
      "Calls the control plane refused before any handler ran, by reason: missing, malformed, "
      "invalid (unknown or revoked token), permission_denied (wrong role or kind), "
      "unknown_method (no row in the access policy), wrong_node (a node token used for another "
      "node id).",
      Type::kCounter, {"reason"}, [raw] {
        const turnpike::controlplane::Authenticator::Counts c = raw->authenticator().counts();
        return std::vector<MetricSample>{
            {{"missing"}, static_cast<double>(c.missing)},
            {{"malformed"}, static_cast<double>(c.malformed)},
            {{"invalid"}, static_cast<double>(c.invalid)},
            {{"permission_denied"}, static_cast<double>(c.permission_denied)},
            {{"unknown_method"}, static_cast<double>(c.unknown_method)},
            {{"wrong_node"}, static_cast<double>(c.wrong_node)}};
      });
  metrics.AddCollector(
      "turnpike_control_auth_refusals_held_total",
      "Failed authentications whose refusal was held back (a delay growing with the failures of "
      "the last minute) to slow down token guessing.",
      Type::kCounter, {}, [raw] {
        return std::vector<MetricSample>{
            {{}, static_cast<double>(raw->authenticator().counts().held)}};
      });
  metrics.AddCollector("process_resident_memory_bytes", "Resident memory size in bytes.",
                       Type::kGauge, {}, [] {
                         return std::vector<MetricSample>{{{}, turnpike::ProcessResidentBytes()}};
                       });
  // The budget and spend page and its JSON endpoints, on the same port (docs/dashboard.md).
  const turnpike::controlplane::Dashboard dashboard({raw->budget_service(), raw->usage_service(),
                                                     raw->alert_service(), raw->admin_service(),
                                                     raw->authenticator()});
  std::unique_ptr<turnpike::MetricsHttpServer> metrics_server;
  if (const std::string listen = absl::GetFlag(FLAGS_metrics_listen); !listen.empty()) {
    absl::StatusOr<std::unique_ptr<turnpike::MetricsHttpServer>> started =
        turnpike::MetricsHttpServer::Start(
            listen, metrics, nullptr,
            [&dashboard](const turnpike::HttpGet& get) { return dashboard.Handle(get); });
    if (!started.ok()) {
      (*cp)->Shutdown(absl::ZeroDuration());
      return Fail(
          absl::Status(started.status().code(),
                       absl::StrCat(started.status().message(),
                                    " (set --metrics_listen, or empty to disable /metrics)")));
    }
    metrics_server = *std::move(started);
    const std::string metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file);
    if (!metrics_port_file.empty()) {
      if (absl::Status s = turnpike::WritePortFile(metrics_port_file, metrics_server->port());
          !s.ok()) {
        return Fail(s);
      }
    }
  }

  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty()) {
    if (absl::Status s = turnpike::WritePortFile(port_file, (*cp)->port()); !s.ok()) return Fail(s);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("turnpike-control: {} received, shutting down",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (metrics_server != nullptr) metrics_server->Stop();
  (*cp)->Shutdown(absl::Seconds(5));
  spdlog::info("turnpike-control: stopped");
  return 0;
}
