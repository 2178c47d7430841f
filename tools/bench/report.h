// Turns a run's merged measurements into what people and scripts read: a short human report,
// a JSON document (--json) and one `bench-run:` summary line of key=value pairs that
// tools/bench.sh parses. Values that were not measured (no samples) are -1. Pure functions.
#ifndef TURNPIKE_TOOLS_BENCH_REPORT_H_
#define TURNPIKE_TOOLS_BENCH_REPORT_H_

#include <cstdint>
#include <map>
#include <string>

#include "tools/bench/recorder.h"

namespace turnpike::bench {

struct RunInfo {
  std::string name;      // label for the run, e.g. "gateway-latency"
  std::string target;    // host:port or URL
  std::string protocol;  // "grpc" or "http"
  bool streaming = true;
  std::string load;  // e.g. "closed concurrency=64" or "open rate=500/s"
};

struct RunReport {
  RunInfo info;
  int64_t started = 0;
  int64_t measured = 0;
  int64_t ok = 0;
  int64_t errors = 0;
  int64_t stalled = 0;
  int64_t not_sent = 0;
  std::map<std::string, int64_t> error_counts;
  double window_seconds = 0;
  double rps = 0;  // OK completions per second inside the measurement window
  // The load generator's own CPU time (user + system) per started call; -1 if not known.
  double client_cpu_us_per_call = -1;
  Distribution latency;
  Distribution ttft;
  Distribution gap;
};

// Consumes the recorder's samples (sorted in place).
RunReport BuildReport(const RunInfo& info, Recorder& recorder);

std::string FormatText(const RunReport& report);
std::string FormatJson(const RunReport& report);
// `bench-run: name=... started=N ok=N errors=N stalled=N rps=N p50_us=N ... gap_max_us=N`
std::string FormatSummaryLine(const RunReport& report);

}  // namespace turnpike::bench

#endif  // TURNPIKE_TOOLS_BENCH_REPORT_H_
