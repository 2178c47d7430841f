#include "tools/bench/report.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json_writer.h"

namespace turnpike::bench {
namespace {

// Whole microseconds (or calls/s); -1 stays -1.
int64_t Round(double v) { return v < 0 ? -1 : static_cast<int64_t>(std::llround(v)); }

std::string DistributionLine(std::string_view what, const Distribution& d) {
  if (d.count == 0) return absl::StrFormat("  %-8s (no samples)\n", std::string(what));
  return absl::StrFormat(
      "  %-8s n=%-8d p50=%9.1f  p90=%9.1f  p99=%9.1f  p99.9=%9.1f  max=%9.1f  mean=%9.1f us\n",
      std::string(what), d.count, d.p50_us, d.p90_us, d.p99_us, d.p999_us, d.max_us, d.mean_us);
}

void DistributionJson(JsonWriter& w, std::string_view key, const Distribution& d) {
  w.Key(key).BeginObject();
  w.Key("count").Int(d.count);
  w.Key("mean_us").Double(d.mean_us);
  w.Key("p50_us").Double(d.p50_us);
  w.Key("p90_us").Double(d.p90_us);
  w.Key("p99_us").Double(d.p99_us);
  w.Key("p999_us").Double(d.p999_us);
  w.Key("max_us").Double(d.max_us);
  w.EndObject();
}

}  // namespace

RunReport BuildReport(const RunInfo& info, Recorder& recorder) {
  RunReport r;
  r.info = info;
  r.started = recorder.started;
  r.measured = recorder.measured;
  r.ok = recorder.ok;
  r.errors = recorder.errors;
  r.stalled = recorder.stalled;
  r.not_sent = recorder.not_sent;
  r.error_counts = recorder.error_counts;
  const Window& w = recorder.window();
  // A run bounded by a request count may end before the window does.
  const int64_t end = std::min(w.window_end_ns, std::max(recorder.last_end_ns, w.warmup_end_ns));
  r.window_seconds = static_cast<double>(end - w.warmup_end_ns) / 1e9;
  r.rps = r.window_seconds > 0 ? static_cast<double>(recorder.window_ok) / r.window_seconds : 0;
  r.latency = Summarize(recorder.latency_ns);
  r.ttft = Summarize(recorder.ttft_ns);
  r.gap = Summarize(recorder.gap_ns);
  return r;
}

std::string FormatText(const RunReport& r) {
  std::string out =
      absl::StrFormat("%s: %s %s %s, %s\n", r.info.name, r.info.protocol,
                      r.info.streaming ? "streaming" : "unary", r.info.target, r.info.load);
  absl::StrAppendFormat(&out,
                        "  calls    started=%d measured=%d ok=%d errors=%d stalled=%d "
                        "not_sent=%d  throughput=%.1f/s over %.2f s  client cpu=%.1f us/call\n",
                        r.started, r.measured, r.ok, r.errors, r.stalled, r.not_sent, r.rps,
                        r.window_seconds, r.client_cpu_us_per_call);
  for (const auto& [name, n] : r.error_counts) {
    absl::StrAppendFormat(&out, "  error    %s x%d\n", name, n);
  }
  out += DistributionLine("latency", r.latency);
  if (r.info.streaming) {
    out += DistributionLine("ttft", r.ttft);
    out += DistributionLine("gap", r.gap);
  }
  return out;
}

std::string FormatJson(const RunReport& r) {
  JsonWriter w;
  w.BeginObject();
  w.Key("name").String(r.info.name);
  w.Key("target").String(r.info.target);
  w.Key("protocol").String(r.info.protocol);
  w.Key("streaming").Bool(r.info.streaming);
  w.Key("load").String(r.info.load);
  w.Key("started").Int(r.started);
  w.Key("measured").Int(r.measured);
  w.Key("ok").Int(r.ok);
  w.Key("errors").Int(r.errors);
  w.Key("stalled").Int(r.stalled);
  w.Key("not_sent").Int(r.not_sent);
  w.Key("error_counts").BeginObject();
  for (const auto& [name, n] : r.error_counts) w.Key(name).Int(n);
  w.EndObject();
  w.Key("window_seconds").Double(r.window_seconds);
  w.Key("throughput_per_s").Double(r.rps);
  w.Key("client_cpu_us_per_call").Double(r.client_cpu_us_per_call);
  DistributionJson(w, "latency", r.latency);
  DistributionJson(w, "ttft", r.ttft);
  DistributionJson(w, "gap", r.gap);
  w.EndObject();
  std::string out = w.Release();
  out.push_back('\n');
  return out;
}

std::string FormatSummaryLine(const RunReport& r) {
  return absl::StrCat("bench-run: name=", r.info.name, " started=", r.started, " ok=", r.ok,
                      " errors=", r.errors, " stalled=", r.stalled, " not_sent=", r.not_sent,
                      " rps=", Round(r.rps), " p50_us=", Round(r.latency.p50_us),
                      " p90_us=", Round(r.latency.p90_us), " p99_us=", Round(r.latency.p99_us),
                      " p999_us=", Round(r.latency.p999_us), " ttft_p50_us=", Round(r.ttft.p50_us),
                      " ttft_p99_us=", Round(r.ttft.p99_us), " gap_p50_us=", Round(r.gap.p50_us),
                      " gap_p99_us=", Round(r.gap.p99_us), " gap_max_us=", Round(r.gap.max_us),
                      " client_cpu_us=", Round(r.client_cpu_us_per_call));
}

}  // namespace turnpike::bench
