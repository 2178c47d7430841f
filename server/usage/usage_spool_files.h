// The usage spool's files (server/usage/usage_spool.h): the frame each record is written in,
// the names of the segment files, and the few POSIX file operations the spool needs, with errors
// as absl::Status. Stateless functions, thread-safe; each works only on the paths it is given.
#ifndef TURNPIKE_SERVER_USAGE_USAGE_SPOOL_FILES_H_
#define TURNPIKE_SERVER_USAGE_USAGE_SPOOL_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "turnpike/usage/v1/usage.pb.h"

namespace turnpike {

// One record's frame on disk: 4-byte little-endian length, 4-byte CRC-32 of the bytes, bytes.
std::string FrameUsageRecord(const usage::v1::UsageRecord& record);

namespace usage_spool_files {

// The same frame, written into `frame` (what it held is replaced): a caller that keeps the
// buffer allocates nothing per record.
void FrameInto(const usage::v1::UsageRecord& record, std::string& frame);

// Parses whole frames from `data` into `records` (null: only count); returns the length of the
// valid prefix. A torn, oversized or corrupt frame ends it.
size_t ParseFrames(std::string_view data, std::vector<usage::v1::UsageRecord>* records);

// "<prefix>-<sequence, 20 digits>.log".
std::string SegmentName(const char* prefix, uint64_t sequence);

// The segment files of `dir` whose names start with `prefix` ("seg-", "open-", "bad-"), by
// sequence: (sequence, file name). Empty if `dir` cannot be read.
std::vector<std::pair<uint64_t, std::string>> ListSegments(const std::string& dir,
                                                           absl::string_view prefix);

// The total size of the quarantined (`bad-`) segments in `dir`.
uint64_t QuarantinedBytes(const std::string& dir);

// The whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// fsyncs the directory, so the renames and unlinks in it are durable.
absl::Status SyncDir(const std::string& dir);

// INTERNAL "<what> <path>: <strerror(errno)>", for a failed system call.
absl::Status Errno(absl::string_view what, const std::string& path);

}  // namespace usage_spool_files
}  // namespace turnpike

#endif  // TURNPIKE_SERVER_USAGE_USAGE_SPOOL_FILES_H_
