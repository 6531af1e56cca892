// One HTTP call from the server to a runner, read line by line while it streams.
//
// The call runs on its own thread (httplib's client blocks), so a handler can
// wait for the runner's status before it answers its own client (a prompt the
// runner refuses becomes a 400, not a broken stream) and can stop reading at
// any time: cancel() closes the connection at once (even while the runner has
// sent nothing yet, a request queued behind others), and the runner cancels
// the sequence.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace httplib {
class Client;
}

namespace pl::server {

class RunnerCall {
 public:
  RunnerCall(int port, std::string path, std::string body);
  ~RunnerCall();  // cancels and joins
  RunnerCall(const RunnerCall&) = delete;
  RunnerCall& operator=(const RunnerCall&) = delete;

  // Waits for the response status; 0 when the runner could not be reached or
  // the connection broke before a status (see transport_error()).
  int status();
  enum class Next { Line, End, Timeout };
  // The next complete line of the body (without the newline).
  Next next_line(std::string& line, std::chrono::milliseconds timeout);
  // After End: the transport error if the body ended abnormally, else "".
  std::string transport_error();
  // For a non-200 status: the whole body once it has arrived.
  std::string body();
  void cancel();

 private:
  void run(int port, std::string path, std::string body);

  std::mutex mu_;
  std::condition_variable cv_;
  int status_ = -1;          // -1: not yet
  bool ended_ = false;
  bool cancelled_ = false;
  httplib::Client* client_ = nullptr;  // run()'s client while it sends, for cancel() to stop
  std::string partial_;      // bytes after the last newline
  std::deque<std::string> lines_;
  std::string error_;
  std::thread thread_;
};

// A plain request/response to a runner (tokenize, embedding, parallel);
// status 0 + error when the runner could not be reached.
struct RunnerReply {
  int status = 0;
  std::string body;
  std::string error;
};
RunnerReply runner_post(int port, const std::string& path, const std::string& body,
                        std::chrono::seconds timeout = std::chrono::seconds(3600));
RunnerReply runner_get(int port, const std::string& path, std::chrono::seconds timeout = std::chrono::seconds(5));

}  // namespace pl::server
