#include "server/exchange/request_finished.h"

namespace turnpike {

const char* RequestMethodName(RequestMethod method) {
  switch (method) {
    case RequestMethod::kStreamCompletion:
      return "StreamCompletion";
    case RequestMethod::kComplete:
      return "Complete";
    case RequestMethod::kEmbed:
      return "Embed";
  }
  return "Unknown";
}

}  // namespace turnpike
