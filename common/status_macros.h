// Small status-propagation macros, because Abseil 20220623 ships no status_macros.h.
// TP_RETURN_IF_ERROR(expr) returns a non-OK absl::Status; TP_ASSIGN_OR_RETURN(lhs, expr)
// unwraps an absl::StatusOr or returns its status. Header-only, no state.
#ifndef TURNPIKE_COMMON_STATUS_MACROS_H_
#define TURNPIKE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TP_STATUS_CONCAT_INNER_(a, b) a##b
#define TP_STATUS_CONCAT_(a, b) TP_STATUS_CONCAT_INNER_(a, b)

#define TP_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status tp_status_ = (expr);      \
    if (!tp_status_.ok()) return tp_status_; \
  } while (0)

#define TP_ASSIGN_OR_RETURN(lhs, expr) \
  TP_ASSIGN_OR_RETURN_IMPL_(TP_STATUS_CONCAT_(tp_statusor_, __LINE__), lhs, expr)

#define TP_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                              \
  if (!var.ok()) return std::move(var).status();  \
  lhs = std::move(var).value()

#endif  // TURNPIKE_COMMON_STATUS_MACROS_H_
