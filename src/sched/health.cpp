#include "sched/health.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace pl::sched {

HealthReply check_health(int port, std::chrono::milliseconds timeout) {
  httplib::Client c("127.0.0.1", port);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  c.set_connection_timeout(us / 1000000, us % 1000000);
  c.set_read_timeout(us / 1000000, us % 1000000);
  c.set_write_timeout(us / 1000000, us % 1000000);
  auto res = c.Get("/health");
  HealthReply r;
  if (!res) return r;
  if (res->status == 200) {
    r.health = Health::Ready;
  } else if (res->status == 503) {
    r.health = Health::Loading;
  } else {
    r.health = Health::Failed;
    const auto body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    if (body.is_object() && body.contains("error") && body["error"].is_string())
      r.error = body["error"].get<std::string>();
    else
      r.error = "GET /health answered " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
  }
  return r;
}

std::string post_parallel(int port, int n, std::chrono::milliseconds timeout) {
  httplib::Client c("127.0.0.1", port);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  c.set_connection_timeout(us / 1000000, us % 1000000);
  c.set_read_timeout(us / 1000000, us % 1000000);
  auto res = c.Post("/parallel", nlohmann::json{{"n", n}}.dump(), "application/json");
  if (!res) return "the runner did not answer: " + httplib::to_string(res.error());
  if (res->status == 200) return "";
  const auto body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) return body["error"].get<std::string>();
  return "POST /parallel answered " + std::to_string(res->status);
}

}  // namespace pl::sched
