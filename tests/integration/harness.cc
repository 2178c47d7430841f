#include "tests/integration/harness.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "tests/sanitizer_reports.h"

extern char** environ;

namespace turnpike::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/turnpike-test-XXXXXX";
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Process::Process(const std::string& binary, std::vector<std::string> args,
                 const std::string& log_path, std::map<std::string, std::string> extra_env)
    : binary_(binary), log_path_(log_path) {
  for (auto& [name, value] : ChildSanitizerEnv(log_path + ".sanitizer")) {
    extra_env.emplace(name, value);  // a caller's own value wins
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (extra_env.count(name) == 0) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : extra_env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  args.insert(args.begin(), binary);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data()) != 0) {
    pid_ = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
}

// Signals go only to a child that has not been reaped: until waitpid returns it, its pid stays
// reserved (as a zombie at worst) and cannot name another process. Once reaped, exit_code_ is set
// and the pid is never used again; a pid is only ever reaped here.
Process::~Process() {
  if (pid_ > 0 && !exit_code_.has_value()) {
    kill(pid_, SIGTERM);
    if (!Wait(std::chrono::seconds(15)).has_value()) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }
  const std::string reports = TakeSanitizerReports(log_path_ + ".sanitizer");
  if (!reports.empty()) {
    ADD_FAILURE() << binary_ << " (log " << log_path_ << ") wrote a sanitizer report:\n" << reports;
  }
}

void Process::Signal(int sig) {
  if (pid_ > 0 && !exit_code_.has_value()) kill(pid_, sig);
}

bool Process::Running() {
  if (exit_code_.has_value() || pid_ <= 0) return false;
  int status;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  if (r < 0) {
    // Not our child to wait for (it cannot happen unless someone else reaped it): treat it as
    // gone, with an exit code no real exit has, so that it is never signalled again.
    exit_code_ = -1;
    return false;
  }
  return true;
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  WaitFor([this] { return !Running(); }, timeout);
  return exit_code_;
}

std::string Process::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int WaitForPort(const std::string& port_file, Process& process, std::chrono::milliseconds timeout) {
  int port = -1;
  WaitFor(
      [&] {
        std::ifstream in(port_file);
        if (in >> port && port > 0) return true;
        port = -1;
        return !process.Running();
      },
      timeout);
  return port;
}

namespace {
size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}
}  // namespace

HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::string& body) {
  HttpResponse response;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  }
  curl_easy_cleanup(curl);
  return response;
}

long FakeStat(int fake_port, const std::string& name) {
  HttpResponse r =
      HttpRequest("GET", "http://127.0.0.1:" + std::to_string(fake_port) + "/_fake/stats");
  const std::string key = "\"" + name + "\":";
  const size_t pos = r.body.find(key);
  if (pos == std::string::npos) return -1;
  return std::strtol(r.body.c_str() + pos + key.size(), nullptr, 10);
}

std::string FakeProviderBinary() { return FAKE_PROVIDER_BIN; }
std::string GatewayBinary() { return GATEWAY_BIN; }
std::string ControlBinary() { return CONTROL_BIN; }

FakeProvider::FakeProvider(const TempDir& dir, std::vector<std::string> extra_args) {
  const std::string port_file = dir.File("fake.port");
  std::filesystem::remove(port_file);
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--port_file=" + port_file,
                                   "--api_key=fake-key"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(FakeProviderBinary(), args, dir.File("fake.log"));
  port_ = WaitForPort(port_file, *process_);
}

Gateway::Gateway(const TempDir& dir, const std::string& config_json,
                 std::vector<std::string> extra_args, std::map<std::string, std::string> env) {
  const std::string config_path = dir.File("gateway-config.json");
  std::ofstream(config_path) << config_json;
  const std::string port_file = dir.File("gateway.port");
  std::filesystem::remove(
      port_file);  // a gateway restarted in the same dir must not read the old port
  const std::string metrics_port_file = dir.File("gateway-metrics.port");
  std::filesystem::remove(metrics_port_file);
  std::vector<std::string> args = {
      "--config=" + config_path,      "--listen=127.0.0.1:0",
      "--port_file=" + port_file,     "--drain_timeout=5s",
      "--metrics_listen=127.0.0.1:0", "--metrics_port_file=" + metrics_port_file};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  if (env.count("TURNPIKE_FAKE_KEY") == 0) env["TURNPIKE_FAKE_KEY"] = "fake-key";
  process_ = std::make_unique<Process>(GatewayBinary(), args, dir.File("gateway.log"), env);
  port_ = WaitForPort(port_file, *process_);
  // The metrics port is written before the gRPC one, so it is there once port_ is.
  if (port_ > 0) metrics_port_ = WaitForPort(metrics_port_file, *process_);
}

std::string Gateway::Metrics() const {
  if (metrics_port_ <= 0) return "";
  return HttpRequest("GET", "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics").body;
}

double MetricValue(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

Gateway::Gateway(const TempDir& dir, const WatchSource& source,
                 std::vector<std::string> extra_args) {
  const std::string port_file = dir.File(source.name + ".port");
  std::filesystem::remove(port_file);
  const std::string metrics_port_file = dir.File(source.name + "-metrics.port");
  std::filesystem::remove(metrics_port_file);
  const std::string cache = source.snapshot_cache.empty() ? dir.File(source.name + "-snapshot.pb")
                                                          : source.snapshot_cache;
  std::vector<std::string> args = {"--control_plane=" + source.control_plane,
                                   "--node_id=" + source.node_id,
                                   "--snapshot_cache=" + cache,
                                   "--usage_spool_dir=" + dir.File(source.name + "-usage"),
                                   "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file,
                                   "--drain_timeout=5s",
                                   "--metrics_listen=127.0.0.1:0",
                                   "--metrics_port_file=" + metrics_port_file};
  if (!source.node_token_file.empty())
    args.push_back("--node_token_file=" + source.node_token_file);
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(GatewayBinary(), args, dir.File(source.name + ".log"));
  port_ = WaitForPort(port_file, *process_);
  if (port_ > 0) metrics_port_ = WaitForPort(metrics_port_file, *process_);
}

std::string ControlPlane::Metrics() const {
  if (metrics_port_ <= 0) return "";
  return HttpRequest("GET", "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics").body;
}

ControlPlane::ControlPlane(const TempDir& dir, int port, std::vector<std::string> extra_args) {
  const std::string port_file = dir.File("control.port");
  std::filesystem::remove(port_file);  // a restart must not read the previous run's port
  const std::string metrics_port_file = dir.File("control-metrics.port");
  std::filesystem::remove(metrics_port_file);
  std::vector<std::string> args = {"--listen=127.0.0.1:" + std::to_string(port),
                                   "--port_file=" + port_file,
                                   "--db=" + dir.File("turnpike.db"),
                                   "--dev_insecure_master_key",
                                   "--metrics_listen=127.0.0.1:0",
                                   "--bootstrap_admin_token_file=" + dir.File("admin.token"),
                                   "--metrics_port_file=" + metrics_port_file,
                                   "--audit_signing_key_file=" + dir.File("audit-signing.pem"),
                                   "--audit_checkpoint_interval=1s"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  // The audit trail's checkpoint key, made by the first start and kept by restarts.
  if (!std::filesystem::exists(dir.File("audit-signing.pem"))) {
    const std::string make_key = "openssl genpkey -algorithm ed25519 -out '" +
                                 dir.File("audit-signing.pem") + "' 2>/dev/null";
    if (std::system(make_key.c_str()) != 0) ADD_FAILURE() << "cannot run: " << make_key;
  }
  process_ = std::make_unique<Process>(ControlBinary(), args, dir.File("control.log"));
  port_ = WaitForPort(port_file, *process_);
  if (port_ > 0) metrics_port_ = WaitForPort(metrics_port_file, *process_);
  std::ifstream token(dir.File("admin.token"));
  std::getline(token, admin_token_);
}

}  // namespace turnpike::testing
