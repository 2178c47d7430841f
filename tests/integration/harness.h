// Test harness for integration tests: real processes (turnpike-gateway, turnpike-control,
// turnpike-fake-provider) on ephemeral ports in a private temp dir, plain HTTP to the fake
// provider's introspection API, and deadline-bounded waits. Not thread-safe; one harness per test.
#ifndef TURNPIKE_TESTS_INTEGRATION_HARNESS_H_
#define TURNPIKE_TESTS_INTEGRATION_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace turnpike::testing {

// A private directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A child process with stdout and stderr captured to a log file. In a sanitized build its
// sanitizer reports go to <log_path>.sanitizer.<pid> (tests/sanitizer_reports.h), and the
// destructor fails the current test with their text.
class Process {
 public:
  Process(const std::string& binary, std::vector<std::string> args, const std::string& log_path,
          std::map<std::string, std::string> extra_env = {});
  // SIGTERM if still running (so LeakSanitizer runs at exit), SIGKILL if it has not exited within
  // 15 s; then fails the test if the process wrote a sanitizer report.
  ~Process();
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits up to `timeout` for exit; returns the exit code (128+signal if killed), or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string binary_;
  std::string log_path_;
};

// Polls `condition` every few milliseconds until it is true or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// Waits for a port file written by a server started with --port_file; -1 on timeout or if the
// process exited first.
int WaitForPort(const std::string& port_file, Process& process,
                std::chrono::milliseconds timeout = std::chrono::seconds(15));

struct HttpResponse {
  long status = 0;
  std::string body;
};
// A blocking HTTP request (for the fake provider's /_fake/* API).
HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::string& body = "");

// Reads the fake provider's /_fake/stats counter `name`.
long FakeStat(int fake_port, const std::string& name);

std::string FakeProviderBinary();
std::string GatewayBinary();
std::string ControlBinary();

// A fake provider process on an ephemeral port.
class FakeProvider {
 public:
  explicit FakeProvider(const TempDir& dir, std::vector<std::string> extra_args = {});
  int port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }

 private:
  std::unique_ptr<Process> process_;
  int port_ = -1;
};

// A turnpike-control process on the database <dir>/turnpike.db with the development master key
// and the admin token in <dir>/admin.token (written by the first start, reused by restarts). It
// signs audit checkpoints every second with the key <dir>/audit-signing.pem (made by the first
// start with the openssl CLI).
// `port` 0 picks a free port; a restart passes the previous run's port (and the same dir) to come
// back on the same address and database. Its log is <dir>/control.log, appended to by restarts.
class ControlPlane {
 public:
  explicit ControlPlane(const TempDir& dir, int port = 0, std::vector<std::string> extra_args = {});
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }
  // An admin-role token for the admin API (empty if the process did not start).
  const std::string& admin_token() const { return admin_token_; }
  // Its /metrics page; empty if it is not serving one.
  std::string Metrics() const;

 private:
  std::unique_ptr<Process> process_;
  int port_ = -1;
  int metrics_port_ = -1;
  std::string admin_token_;
};

// How a gateway gets its config from a control plane. `name` keeps the files of several gateways
// in one dir apart: <dir>/<name>.port, <name>.log, <name>-usage/ (the usage spool), and by
// default <name>-snapshot.pb as the last-good snapshot cache.
struct WatchSource {
  std::string control_plane;  // host:port
  std::string node_id;
  std::string name = "gateway";
  std::string snapshot_cache;  // empty: <dir>/<name>-snapshot.pb
  // The gateway's --node_token_file; empty starts it without one (the control plane then
  // refuses it).
  std::string node_token_file;
};

// A gateway process started from a config JSON string, or watching a control plane.
class Gateway {
 public:
  Gateway(const TempDir& dir, const std::string& config_json,
          std::vector<std::string> extra_args = {}, std::map<std::string, std::string> env = {});
  Gateway(const TempDir& dir, const WatchSource& source, std::vector<std::string> extra_args = {});
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }
  // The gateway's /metrics page (Prometheus text); empty if it is not serving one.
  std::string Metrics() const;
  int metrics_port() const { return metrics_port_; }

 private:
  std::unique_ptr<Process> process_;
  int port_ = -1;
  int metrics_port_ = -1;
};

// The value of one series (`name{labels}` exactly as rendered) in a Prometheus text page; -1 if
// absent.
double MetricValue(const std::string& page, const std::string& series);

}  // namespace turnpike::testing

#endif  // TURNPIKE_TESTS_INTEGRATION_HARNESS_H_
