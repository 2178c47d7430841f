#include "tests/fake_provider/test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "tests/sanitizer_reports.h"

extern char** environ;

namespace turnpike::fake_provider::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);
constexpr auto kPoll = std::chrono::milliseconds(5);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t WriteCb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* ctx = static_cast<std::pair<HttpResponse*, size_t>*>(userdata);
  ctx->first->body.append(ptr, size * nmemb);
  if (ctx->second > 0 && ctx->first->body.size() >= ctx->second) return 0;  // abort
  return size * nmemb;
}

size_t HeaderCb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* resp = static_cast<HttpResponse*>(userdata);
  std::string line(ptr, size * nmemb);
  const size_t colon = line.find(':');
  if (colon != std::string::npos && line.rfind("HTTP/", 0) != 0) {
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    resp->headers.emplace_back(Lower(line.substr(0, colon)), value);
  }
  return size * nmemb;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

bool HttpResponse::HasHeader(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return true;
  }
  return false;
}

FakeProviderProcess::FakeProviderProcess(std::vector<std::string> extra_args) {
  std::string tmpl = ::testing::TempDir() + "fake_provider_test.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  // One start, no retry: a child that dies before it is ready is a failure, whatever the signal.
  // (Stray SIGTERMs used to come from tools/bench.sh signalling pids it had already reaped; see
  // there. Nothing here signals a pid it has reaped: pid_ is reset the moment waitpid returns it.)
  Spawn(extra_args);
  if (port_ > 0) curl_ = curl_easy_init();
}

void FakeProviderProcess::Spawn(const std::vector<std::string>& extra_args) {
  const std::string port_file = dir_ + "/port";
  const std::string out_path = dir_ + "/stdout";
  const std::string err_path = dir_ + "/stderr";
  std::remove(port_file.c_str());
  std::vector<std::string> args = {FAKE_PROVIDER_BIN, "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  // The parent's environment, with sanitizer reports sent to files the destructor checks.
  const std::map<std::string, std::string> sanitizer_env =
      turnpike::testing::ChildSanitizerEnv(dir_ + "/sanitizer");
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (sanitizer_env.count(entry.substr(0, entry.find('='))) == 0) env_strings.push_back(entry);
  }
  for (const auto& [name, value] : sanitizer_env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << argv[0] << " failed: " << rc;
    pid_ = -1;
    return;
  }
  const auto deadline = Clock::now() + kDeadline;
  while (Clock::now() < deadline) {
    const std::string text = ReadFile(port_file);
    if (!text.empty() && text.back() == '\n') {
      port_ = std::atoi(text.c_str());
      break;
    }
    int status;
    const pid_t reaped = waitpid(pid_, &status, WNOHANG);
    if (reaped != 0) {
      // Reaped (or, with -1, not ours to wait for): the pid may be reused from here on, so it
      // is forgotten before anything else.
      pid_ = -1;
      ADD_FAILURE() << "fake provider exited during start-up ("
                    << (reaped < 0            ? std::string("waitpid failed")
                        : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                              : "exit " + std::to_string(WEXITSTATUS(status)))
                    << "): stderr=" << ReadFile(err_path) << " stdout=" << ReadFile(out_path);
      return;
    }
    std::this_thread::sleep_for(kPoll);
  }
  if (port_ <= 0) {
    // Still our unreaped child: the destructor stops it.
    ADD_FAILURE() << "fake provider did not write its port file within 10 s: stderr="
                  << ReadFile(err_path);
    return;
  }
  // The listening line is printed before the port file is written, so it is there now.
  stdout_ = ReadFile(out_path);
}

FakeProviderProcess::~FakeProviderProcess() {
  if (pid_ > 0) Stop();
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
  if (!dir_.empty()) {
    const std::string reports = turnpike::testing::TakeSanitizerReports(dir_ + "/sanitizer");
    if (!reports.empty()) ADD_FAILURE() << "fake provider wrote a sanitizer report:\n" << reports;
    for (const char* f : {"/port", "/stdout", "/stderr"}) std::remove((dir_ + f).c_str());
    rmdir(dir_.c_str());
  }
}

int FakeProviderProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  // pid_ is an unreaped child here (a zombie at worst), so it cannot name another process.
  kill(pid_, signal);
  const auto deadline = Clock::now() + kDeadline;
  int status = 0;
  while (Clock::now() < deadline) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    if (r < 0) {  // not our child any more: never signal that pid again
      const int error = errno;
      ADD_FAILURE() << "waitpid(" << pid_ << ") failed: errno " << error;
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(kPoll);
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

HttpResponse FakeProviderProcess::Send(const HttpRequest& request, bool fresh_connection) {
  HttpResponse resp;
  CURL* curl = fresh_connection ? curl_easy_init() : curl_;
  if (curl == nullptr) {
    resp.curl_code = CURLE_FAILED_INIT;
    return resp;
  }
  curl_easy_reset(curl);
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + request.path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  std::pair<HttpResponse*, size_t> write_ctx(&resp, request.abort_after_bytes);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteCb);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &write_ctx);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &HeaderCb);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  resp.curl_code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &resp.seconds);
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &resp.connects);
  curl_slist_free_all(headers);
  if (fresh_connection) curl_easy_cleanup(curl);
  return resp;
}

HttpResponse FakeProviderProcess::Post(const std::string& path, const std::string& body,
                                       std::vector<std::string> headers) {
  HttpRequest r;
  r.path = path;
  r.body = body;
  r.headers = std::move(headers);
  return Send(r);
}

HttpResponse FakeProviderProcess::Get(const std::string& path) {
  HttpRequest r;
  r.method = "GET";
  r.path = path;
  return Send(r);
}

HttpResponse FakeProviderProcess::Delete(const std::string& path) {
  HttpRequest r;
  r.method = "DELETE";
  r.path = path;
  return Send(r);
}

SseParse ParseSse(std::string_view body) {
  SseParse out;
  std::string event;
  std::string data;
  bool have_data = false;
  size_t i = 0;
  size_t last_dispatch_end = 0;
  while (i < body.size()) {
    size_t end = i;
    while (end < body.size() && body[end] != '\n' && body[end] != '\r') ++end;
    if (end == body.size()) break;  // unterminated line: discarded
    const std::string_view line = body.substr(i, end - i);
    size_t next = end + 1;
    if (body[end] == '\r' && next < body.size() && body[next] == '\n') ++next;
    i = next;
    if (line.empty()) {
      if (have_data) {
        out.events.push_back({event, data});
        last_dispatch_end = i;
      }
      event.clear();
      data.clear();
      have_data = false;
      continue;
    }
    if (line[0] == ':') {
      ++out.comment_lines;
      continue;
    }
    const size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    if (field == "event") {
      event = std::string(value);
    } else if (field == "data") {
      if (have_data) data.push_back('\n');
      data.append(value);
      have_data = true;
    }
  }
  out.trailing_partial =
      last_dispatch_end < body.size() &&
      body.find_first_not_of("\r\n", last_dispatch_end) != std::string_view::npos;
  return out;
}

simdjson::dom::element ParseJson(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element doc;
  const auto err = parser.parse(json).get(doc);
  EXPECT_EQ(err, simdjson::SUCCESS) << "invalid JSON: " << json;
  return doc;
}

int64_t Stat(FakeProviderProcess& fp, const std::string& field) {
  HttpResponse r = fp.Get("/_fake/stats");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.body).get(doc) != simdjson::SUCCESS) return -1;
  int64_t v = -1;
  if (doc[field].get_int64().get(v) != simdjson::SUCCESS) return -1;
  return v;
}

bool WaitForStat(FakeProviderProcess& fp, const std::string& field, int64_t want) {
  const auto deadline = Clock::now() + kDeadline;
  while (Clock::now() < deadline) {
    if (Stat(fp, field) == want) return true;
    std::this_thread::sleep_for(kPoll);
  }
  return false;
}

}  // namespace turnpike::fake_provider::testing
