#include "server/runner_call.h"

#include <httplib.h>

#include <algorithm>

namespace pl::server {

RunnerCall::RunnerCall(int port, std::string path, std::string body) {
  thread_ = std::thread([this, port, p = std::move(path), b = std::move(body)]() mutable {
    run(port, std::move(p), std::move(b));
  });
}

RunnerCall::~RunnerCall() {
  cancel();
  if (thread_.joinable()) thread_.join();
}

void RunnerCall::run(int port, std::string path, std::string body) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(3600, 0);  // a long prompt on a busy runner may take minutes before its first token
  cli.set_write_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = std::move(path);
  req.body = std::move(body);
  req.set_header("Content-Type", "application/json");
  req.response_handler = [this](const httplib::Response& r) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = r.status;
    cv_.notify_all();
    return !cancelled_;
  };
  req.content_receiver = [this](const char* data, size_t n, uint64_t, uint64_t) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return false;
    partial_.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
      lines_.emplace_back(partial_, start, nl - start);
    partial_.erase(0, start);
    cv_.notify_all();
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) {
      ended_ = true;
      status_ = std::max(status_, 0);
      cv_.notify_all();
      return;
    }
    client_ = &cli;
  }
  const bool ok = cli.send(req, res, err);
  std::lock_guard<std::mutex> lock(mu_);
  client_ = nullptr;
  if (!partial_.empty()) lines_.push_back(std::move(partial_));
  if (!ok && !cancelled_) error_ = httplib::to_string(err);
  if (status_ < 0) status_ = ok ? res.status : 0;
  ended_ = true;
  cv_.notify_all();
}

int RunnerCall::status() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return status_ >= 0; });
  return status_;
}

RunnerCall::Next RunnerCall::next_line(std::string& line, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !lines_.empty() || ended_; })) return Next::Timeout;
  if (lines_.empty()) return Next::End;
  line = std::move(lines_.front());
  lines_.pop_front();
  return Next::Line;
}

std::string RunnerCall::transport_error() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

std::string RunnerCall::body() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ended_; });
  std::string out;
  for (auto& l : lines_) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

void RunnerCall::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  // A blocked read (nothing from the runner yet) would otherwise hold the
  // destructor's join, and the lease, until the runner's first token.
  if (client_ != nullptr) client_->stop();
  cv_.notify_all();
}

namespace {
RunnerReply reply_of(const httplib::Result& r) {
  RunnerReply out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  return out;
}
}  // namespace

RunnerReply runner_post(int port, const std::string& path, const std::string& body, std::chrono::seconds timeout) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(static_cast<time_t>(timeout.count()), 0);
  return reply_of(cli.Post(path, body, "application/json"));
}

RunnerReply runner_get(int port, const std::string& path, std::chrono::seconds timeout) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(static_cast<time_t>(timeout.count()), 0);
  return reply_of(cli.Get(path));
}

}  // namespace pl::server
