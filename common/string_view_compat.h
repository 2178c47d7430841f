// Debian's Abseil 20220623 has its own absl::string_view (not an alias of std::string_view), so
// the two do not convert implicitly. These helpers convert at the boundary. Header-only.
#ifndef TURNPIKE_COMMON_STRING_VIEW_COMPAT_H_
#define TURNPIKE_COMMON_STRING_VIEW_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace turnpike {

inline absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_STRING_VIEW_COMPAT_H_
