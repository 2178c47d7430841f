// Whether a listen address ("host:port", "[v6]:port", "unix:/path") is reachable only from this
// machine. Both services refuse to listen without TLS elsewhere unless told to. Thread-safe.
#ifndef TURNPIKE_COMMON_LISTEN_ADDRESS_H_
#define TURNPIKE_COMMON_LISTEN_ADDRESS_H_

#include <string>

namespace turnpike {

// localhost, 127.0.0.0/8, ::1 and unix sockets are loopback; everything else (0.0.0.0, a host
// name, an empty host) is not.
bool IsLoopbackAddress(const std::string& address);

// Splits "host:port" ("[v6]:port" too) for a libevent listener: an empty host is 0.0.0.0,
// "localhost" is 127.0.0.1. False unless the port is 0-65535.
bool SplitHostPort(const std::string& listen, std::string* host, int* port);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_LISTEN_ADDRESS_H_
