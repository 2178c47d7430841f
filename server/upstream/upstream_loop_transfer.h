// UpstreamLoop::Transfer, one running HTTP transfer: what upstream_loop.cc (the loop, its
// commands) and upstream_loop_transfers.cc (a transfer's start, end, deadlines and libcurl
// callbacks) both touch. Internal to server/upstream; every field is read and written on the
// loop thread only, after Start() hands the transfer over.
#ifndef TURNPIKE_SERVER_UPSTREAM_UPSTREAM_LOOP_TRANSFER_H_
#define TURNPIKE_SERVER_UPSTREAM_UPSTREAM_LOOP_TRANSFER_H_

#include <curl/curl.h>

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "server/upstream/upstream_loop.h"

namespace turnpike {

struct UpstreamLoop::Transfer {
  UpstreamLoop* loop = nullptr;
  TransferId id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest request;
  TransferOptions options;
  std::shared_ptr<TransferHandler> handler;
  int64_t retry_after_ms = 0;
  bool response_started = false;
  bool paused = false;
  bool got_data = false;
  absl::Time started;
  absl::Time last_data;
  char error[CURL_ERROR_SIZE] = {0};
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_UPSTREAM_UPSTREAM_LOOP_TRANSFER_H_
