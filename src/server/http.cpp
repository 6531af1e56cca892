#include "server/http.h"

#include <ctime>

#include "core/error.h"

namespace pl::server {

using nlohmann::json;

json openai_error(int status, const std::string& msg) {
  const char* type = status == 404 ? "not_found_error"
                     : status < 500 ? "invalid_request_error"
                     : status == 503 ? "server_busy"
                                     : "api_error";
  return json{{"error", {{"message", msg}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}};
}

void send_openai_error(httplib::Response& res, int status, const std::string& msg) {
  send_json(res, status, openai_error(status, msg));
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, static_cast<long long>(ns % 1000000000));
}

std::string now_rfc3339() { return rfc3339(std::chrono::system_clock::now()); }

int64_t unix_of_rfc3339(const std::string& t) {
  std::tm tm{};
  if (strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

namespace {
template <class Send>
Handler wrap(std::function<void(const httplib::Request&, httplib::Response&)> h, Send send) {
  return [h = std::move(h), send](const httplib::Request& req, httplib::Response& res) {
    try {
      h(req, res);
    } catch (const HttpError& e) {
      send(res, e.status, e.what());
    } catch (const Error& e) {
      send(res, 400, e.what());
    } catch (const json::exception& e) {
      send(res, 400, std::string("bad request: ") + e.what());
    } catch (const std::exception& e) {
      send(res, 500, std::string("internal error: ") + e.what());
    }
  };
}
}  // namespace

Handler ollama_handler(std::function<void(const httplib::Request&, httplib::Response&)> h) {
  return wrap(std::move(h), send_error);
}

Handler openai_handler(std::function<void(const httplib::Request&, httplib::Response&)> h) {
  return wrap(std::move(h), send_openai_error);
}

std::string model_field(const json& body) {
  std::string m = get_string(body, "model");
  if (m.empty()) m = get_string(body, "name");
  if (m.empty()) fail("missing field 'model'");
  return m;
}

}  // namespace pl::server
