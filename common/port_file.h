// The port a server bound, written where a launcher (tools/dev up, the tests) waits for it: the
// file appears whole, with the port and a newline, or not at all (written beside it, then
// renamed). Used by both services' main. Thread-compatible.
#ifndef TURNPIKE_COMMON_PORT_FILE_H_
#define TURNPIKE_COMMON_PORT_FILE_H_

#include <string>

#include "absl/status/status.h"

namespace turnpike {

// UNAVAILABLE naming the file when it cannot be written.
absl::Status WritePortFile(const std::string& path, int port);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_PORT_FILE_H_
