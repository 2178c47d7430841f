// turnpike-bench: load generator for turnpike.v1.CompletionService, and for the same requests
// sent straight to the fake provider (the "direct" baseline).
//
//   turnpike-bench --target=127.0.0.1:50051 --capability=demo --concurrency=64 --duration=10s
//   turnpike-bench --target=127.0.0.1:50051 --rate=500 --unary
//   turnpike-bench --direct=http://127.0.0.1:8080 --api_key=fake-key --header=x-fake-chunks:20
//
// Closed loop (--concurrency=N calls outstanding) unless --rate=R (open loop: R arrivals per
// second on a fixed schedule; latency counts from the scheduled arrival). Calls that start in the
// --warmup are not measured; no call starts after warmup + --duration, or after --requests calls.
// Prints the report, writes it as JSON with --json=PATH, and ends with one `bench-run:` line.
// Exits 0 when the run completed (even with call errors; they are in the report), 2 on bad flags,
// 1 when the target cannot be reached.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "tools/bench/grpc_load.h"
#include "tools/bench/http_load.h"
#include "tools/bench/report.h"

ABSL_FLAG(std::string, target, "", "gRPC target host:port (the gateway or turnpike-bench-floor)");
ABSL_FLAG(std::string, direct, "",
          "instead of --target: the fake provider's base URL, e.g. http://127.0.0.1:8080");
ABSL_FLAG(std::string, name, "", "label for this run in the report (default: the mode)");
ABSL_FLAG(std::string, capability, "bench", "capability to request");
ABSL_FLAG(int, concurrency, 1, "closed loop: calls kept outstanding");
ABSL_FLAG(double, rate, 0, "open loop: calls started per second (overrides --concurrency)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "measured time");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "time before measuring starts");
ABSL_FLAG(int64_t, requests, 0, "stop starting calls after this many (0: no limit)");
ABSL_FLAG(bool, unary, false, "Complete instead of StreamCompletion (direct: \"stream\":false)");
ABSL_FLAG(int, message_bytes, 128, "size of the prompt (one user message)");
ABSL_FLAG(int, max_tokens, 0, "max_tokens to request (0: unset; direct sends 1024 then)");
ABSL_FLAG(int, threads, 0, "client worker threads (0: min(cores, concurrency))");
ABSL_FLAG(int, channels, 0, "gRPC channels (TCP connections) in total (0: 2 per thread)");
ABSL_FLAG(std::vector<std::string>, header, {},
          "name:value, repeatable or comma-separated: HTTP headers (direct) or gRPC metadata");
ABSL_FLAG(std::string, api_key, "", "sent as authorization: Bearer KEY");
ABSL_FLAG(std::string, tls_ca, "",
          "gRPC target over TLS: PEM CA bundle to trust (the target's host must be in the "
          "server's certificate, e.g. localhost:PORT)");
ABSL_FLAG(std::string, model, "gpt-4o-mini", "direct mode: the model in the request body");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(30), "per-call deadline");
ABSL_FLAG(absl::Duration, stall, absl::ZeroDuration(),
          "a call with a gap between messages longer than this counts as stalled (0: off)");
ABSL_FLAG(int, max_inflight, 20000, "open loop: arrivals beyond this many outstanding are skipped");
ABSL_FLAG(std::string, json, "", "write the report as JSON to this file");

namespace turnpike::bench {
namespace {

// CPU time (user + system) this process has used so far, in microseconds.
int64_t CpuMicros() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto us = [](const timeval& tv) { return int64_t{tv.tv_sec} * 1'000'000 + tv.tv_usec; };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

std::string Prompt(int bytes) {
  static constexpr std::string_view kText =
      "Summarize the claim below in two sentences for the adjuster. ";
  std::string prompt;
  prompt.reserve(static_cast<size_t>(std::max(bytes, 0)));
  while (static_cast<int>(prompt.size()) < bytes) {
    prompt.append(kText.substr(0, static_cast<size_t>(bytes) - prompt.size()));
  }
  return prompt;
}

int Run() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string direct = absl::GetFlag(FLAGS_direct);
  if (target.empty() == direct.empty()) {
    std::fprintf(stderr, "turnpike-bench: pass exactly one of --target or --direct\n");
    return 2;
  }
  LoadOptions load;
  load.concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  load.rate = absl::GetFlag(FLAGS_rate);
  load.warmup = absl::GetFlag(FLAGS_warmup);
  load.duration = absl::GetFlag(FLAGS_duration);
  load.max_requests = absl::GetFlag(FLAGS_requests);
  load.deadline = absl::GetFlag(FLAGS_deadline);
  load.stall = absl::GetFlag(FLAGS_stall);
  load.max_inflight = std::max(1, absl::GetFlag(FLAGS_max_inflight));
  if (load.rate < 0 || load.duration <= absl::ZeroDuration() ||
      load.warmup < absl::ZeroDuration()) {
    std::fprintf(stderr, "turnpike-bench: --rate must be >= 0, --duration > 0, --warmup >= 0\n");
    return 2;
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  load.threads = absl::GetFlag(FLAGS_threads);
  if (load.threads <= 0) {
    load.threads = load.rate > 0 ? std::min(cores, std::max(1, static_cast<int>(load.rate / 2000)))
                                 : std::min(cores, load.concurrency);
  }

  std::vector<std::pair<std::string, std::string>> headers;
  for (const std::string& h : absl::GetFlag(FLAGS_header)) {
    const size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::fprintf(stderr, "turnpike-bench: --header wants name:value, got '%s'\n", h.c_str());
      return 2;
    }
    std::string value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    headers.emplace_back(h.substr(0, colon), value);
  }

  RunInfo info;
  info.streaming = !absl::GetFlag(FLAGS_unary);
  info.load = load.rate > 0 ? absl::StrFormat("open loop rate=%g/s", load.rate)
                            : absl::StrFormat("closed loop concurrency=%d", load.concurrency);
  absl::StrAppendFormat(&info.load, " threads=%d warmup=%s duration=%s", load.threads,
                        absl::FormatDuration(load.warmup), absl::FormatDuration(load.duration));
  if (load.max_requests > 0) absl::StrAppendFormat(&info.load, " requests=%d", load.max_requests);

  absl::StatusOr<Recorder> result = absl::InternalError("not run");
  const int64_t cpu_before = CpuMicros();
  if (!target.empty()) {
    GrpcTarget t;
    t.address = target;
    if (const std::string ca = absl::GetFlag(FLAGS_tls_ca); !ca.empty()) {
      std::ifstream in(ca, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "turnpike-bench: cannot read --tls_ca %s\n", ca.c_str());
        return 2;
      }
      t.tls_ca_pem.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    t.unary = absl::GetFlag(FLAGS_unary);
    t.channels =
        absl::GetFlag(FLAGS_channels) > 0 ? absl::GetFlag(FLAGS_channels) : 2 * load.threads;
    t.metadata = headers;
    if (!absl::GetFlag(FLAGS_api_key).empty()) {
      t.metadata.emplace_back("authorization", "Bearer " + absl::GetFlag(FLAGS_api_key));
    }
    t.request.set_capability(absl::GetFlag(FLAGS_capability));
    v1::Message* m = t.request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content(Prompt(absl::GetFlag(FLAGS_message_bytes)));
    if (absl::GetFlag(FLAGS_max_tokens) > 0)
      t.request.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
    info.protocol = "grpc";
    info.target = target;
    absl::StrAppendFormat(&info.load, " channels=%d", t.channels);
    result = RunGrpcLoad(load, t);
  } else {
    HttpTarget t;
    t.base_url = direct;
    t.unary = absl::GetFlag(FLAGS_unary);
    t.model = absl::GetFlag(FLAGS_model);
    t.api_key = absl::GetFlag(FLAGS_api_key);
    for (const auto& [name, value] : headers) t.headers.push_back(absl::StrCat(name, ": ", value));
    t.prompt = Prompt(absl::GetFlag(FLAGS_message_bytes));
    if (absl::GetFlag(FLAGS_max_tokens) > 0) t.max_tokens = absl::GetFlag(FLAGS_max_tokens);
    info.protocol = "http";
    info.target = direct;
    result = RunHttpLoad(load, t);
  }
  if (!result.ok()) {
    std::fprintf(stderr, "turnpike-bench: %s\n", result.status().ToString().c_str());
    return 1;
  }
  info.name = absl::GetFlag(FLAGS_name);
  if (info.name.empty())
    info.name = absl::StrCat(info.protocol, info.streaming ? "-stream" : "-unary");
  const int64_t cpu_used = CpuMicros() - cpu_before;
  RunReport report = BuildReport(info, *result);
  if (report.started > 0) {
    report.client_cpu_us_per_call =
        static_cast<double>(cpu_used) / static_cast<double>(report.started);
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream out(path, std::ios::trunc);
    out << FormatJson(report);
    if (!out) {
      std::fprintf(stderr, "turnpike-bench: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  std::printf("%s%s\n", FormatText(report).c_str(), FormatSummaryLine(report).c_str());
  return 0;
}

}  // namespace
}  // namespace turnpike::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load generator for turnpike.v1.CompletionService (--target) or the fake provider "
      "(--direct); see tools/bench/bench_main.cc");
  absl::ParseCommandLine(argc, argv);
  return turnpike::bench::Run();
}
