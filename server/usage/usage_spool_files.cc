// The usage spool's files: frames, segment names and file operations
// (server/usage/usage_spool_files.h).
#include "server/usage/usage_spool_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace turnpike {
namespace usage_spool_files {
namespace {

constexpr size_t kFrameHeader = 8;
// A record larger than this is corrupt (records are a few hundred bytes).
constexpr uint32_t kMaxRecordBytes = 1 << 20;

uint32_t Crc(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// The sequence number of "<prefix>-<n>.log", or 0.
uint64_t SequenceOf(absl::string_view name, absl::string_view prefix) {
  if (!absl::StartsWith(name, prefix) || !absl::EndsWith(name, ".log")) return 0;
  name.remove_prefix(prefix.size());
  name.remove_suffix(4);
  uint64_t n = 0;
  return absl::SimpleAtoi(name, &n) ? n : 0;
}

}  // namespace

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

std::string SegmentName(const char* prefix, uint64_t sequence) {
  return absl::StrFormat("%s-%020d.log", prefix, sequence);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  std::string data;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return Errno("read", path);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

void FrameInto(const usage::v1::UsageRecord& record, std::string& frame) {
  frame.assign(kFrameHeader, '\0');
  record.AppendToString(&frame);
  const std::string_view bytes(frame.data() + kFrameHeader, frame.size() - kFrameHeader);
  std::string header;
  header.reserve(kFrameHeader);
  PutU32(&header, static_cast<uint32_t>(bytes.size()));
  PutU32(&header, Crc(bytes));
  frame.replace(0, kFrameHeader, header);
}

size_t ParseFrames(std::string_view data, std::vector<usage::v1::UsageRecord>* records) {
  size_t pos = 0;
  while (data.size() - pos >= kFrameHeader) {
    const uint32_t len = GetU32(data.data() + pos);
    const uint32_t crc = GetU32(data.data() + pos + 4);
    if (len > kMaxRecordBytes || data.size() - pos - kFrameHeader < len) break;
    const std::string_view bytes = data.substr(pos + kFrameHeader, len);
    if (Crc(bytes) != crc) break;
    usage::v1::UsageRecord record;
    if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) break;
    if (records != nullptr) records->push_back(std::move(record));
    pos += kFrameHeader + len;
  }
  return pos;
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  const int rc = fsync(fd);
  close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("fsync", dir);
}

std::vector<std::pair<uint64_t, std::string>> ListSegments(const std::string& dir,
                                                           absl::string_view prefix) {
  std::vector<std::pair<uint64_t, std::string>> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (uint64_t n = SequenceOf(e->d_name, prefix); n != 0) out.emplace_back(n, e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t QuarantinedBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& [sequence, name] : ListSegments(dir, "bad-")) {
    struct stat st;
    if (stat(absl::StrCat(dir, "/", name).c_str(), &st) == 0) bytes += st.st_size;
  }
  return bytes;
}

}  // namespace usage_spool_files

std::string FrameUsageRecord(const usage::v1::UsageRecord& record) {
  std::string frame;
  usage_spool_files::FrameInto(record, frame);
  return frame;
}

}  // namespace turnpike
