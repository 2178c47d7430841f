// CSV for the usage export (docs/usage.md): RFC 4180 (comma separated, CRLF line ends, a field
// quoted when it holds a comma, quote, CR or LF, quotes doubled), a header row first, times in
// RFC 3339 UTC, money both as dollars with six decimals and as integer micro-dollars. A text
// field starting with = + - @ TAB or CR is prefixed with a single quote so a spreadsheet shows it
// instead of running it as a formula (callers choose end-user ids and tags). Stateless functions;
// thread-safe.
#ifndef TURNPIKE_CONTROLPLANE_USAGE_CSV_H_
#define TURNPIKE_CONTROLPLANE_USAGE_CSV_H_

#include <string>
#include <string_view>
#include <vector>

#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike::controlplane {

// Appends `value` as one CSV field (quoted when needed; formula-guarded).
void AppendCsvText(std::string& out, std::string_view value);
// 1234567 -> "1.234567".
std::string MicrosToDollars(int64_t micros);

// Header and rows of a spend query's answer; the grouped columns follow `request.group_by`.
std::string SpendCsvHeader(const usage::v1::QuerySpendRequest& request);
void AppendSpendCsvRow(std::string& out, const usage::v1::QuerySpendRequest& request,
                       const usage::v1::SpendRow& row);

// Header and rows of raw usage records (tags as one JSON object field).
std::string RecordCsvHeader();
void AppendRecordCsvRow(std::string& out, const usage::v1::UsageRecord& record);

}  // namespace turnpike::controlplane

#endif  // TURNPIKE_CONTROLPLANE_USAGE_CSV_H_
