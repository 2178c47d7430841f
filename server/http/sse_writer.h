// SseWriter writes the server-sent events of one streamed chat reply on evhttp and keeps the
// accounting behind its backpressure (docs/architecture.md, "Backpressure"): the bytes of events
// posted to the door's thread and not yet written, plus the bytes in the connection's output
// buffer. Above 64 KiB Congested() says yes (the exchange pauses the upstream); once the socket
// has drained and fewer than 16 KiB are queued, `resume` runs.
//
// Threading: Queued() and Congested() on the upstream loop; everything else on the door's thread.
// The writer must outlive the reply (evhttp calls back into it after each write).
#ifndef TURNPIKE_SERVER_HTTP_SSE_WRITER_H_
#define TURNPIKE_SERVER_HTTP_SSE_WRITER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>

struct evhttp_connection;
struct evhttp_request;

namespace turnpike {

class SseWriter {
 public:
  // Above this many bytes not yet written the exchange pauses; it resumes below kResumeBytes.
  static constexpr int64_t kCongestedBytes = 64 << 10;
  static constexpr int64_t kResumeBytes = 16 << 10;

  // `resume` runs on the door's thread when a paused upstream may go on.
  explicit SseWriter(std::function<void()> resume) : resume_(std::move(resume)) {}

  // Upstream loop: an event of `bytes` was posted to the door's thread.
  void Queued(int64_t bytes) { unsent_.fetch_add(bytes); }
  // Upstream loop: true (and the writer remembers to resume) while too much waits.
  bool Congested();

  // The 200 and its headers (added to `request` before) are out; events may follow.
  void Start(evhttp_request* request);
  bool started() const { return started_; }
  // Writes `data` (one or more events). `queued`: it was counted by Queued(). Nothing is written
  // before Start() or once the client left (`connection` null). `connection` is the call's own
  // field, read again after the write: evhttp may report the client gone during it.
  void Write(evhttp_request* request, evhttp_connection* const& connection, std::string_view data,
             bool queued = false);

 private:
  static void OnFlushed(evhttp_connection* connection, void* self);

  const std::function<void()> resume_;
  bool started_ = false;              // event thread
  std::atomic<int64_t> unsent_{0};    // event bytes posted, not yet handed to evhttp
  std::atomic<int64_t> buffered_{0};  // bytes in the connection's output buffer
  std::atomic<bool> paused_{false};   // Congested() said yes; resume once drained
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_HTTP_SSE_WRITER_H_
