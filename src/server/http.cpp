#include "server/http.h"

#include <ctime>

#include "core/error.h"

namespace pl::server {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, const std::string& msg) {
  send_json(res, status, json{{"error", msg}});
}

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

std::string type_of(const json& v) {
  if (v.is_number_float()) return "a fractional number";
  return v.type_name();
}

json parse_body(const std::string& body) {
  if (body.empty()) fail("missing request body");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond double
    fail("invalid JSON in the request body: {}", e.what());
  }
  if (!j.is_object()) fail("the request body must be a JSON object, got {}", type_of(j));
  return j;
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

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const json& body, const char* name, const std::string& def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_string()) fail("field '{}' must be a string, got {}", name, type_of(*v));
  return v->get<std::string>();
}

bool get_bool(const json& body, const char* name, bool def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_boolean()) fail("field '{}' must be a boolean, got {}", name, type_of(*v));
  return v->get<bool>();
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
