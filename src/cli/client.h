// The CLI's HTTP client to a running `parallama serve` (OLLAMA_HOST, like Ollama's CLI).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace pl::cli {

struct ApiClient {
  std::string scheme = "http";  // https: TLS (a server behind a TLS proxy)
  std::string host;             // 0.0.0.0 is dialled as 127.0.0.1
  int port = 11434;
  std::string bearer;  // sent as "Authorization: Bearer ..." when set (the admin API's token)
  static ApiClient from_env();

  // One JSON request; throws pl::Error with the server's {"error"} message (or
  // "could not connect to parallama at host:port: is `parallama serve` running?").
  nlohmann::json call(const std::string& method, const std::string& path, const nlohmann::json& body = nullptr) const;
  // A streaming NDJSON request: on_line gets each object; an {"error"} line throws.
  // With `stop`: looked at every 50 ms, also while nothing arrives (a request
  // queued or in a long prefill); once it returns true the connection is closed,
  // which cancels the generation on the server, and stream() returns false.
  bool stream(const std::string& path, const nlohmann::json& body,
              const std::function<void(const nlohmann::json&)>& on_line,
              const std::function<bool()>& stop = nullptr) const;
  bool head(const std::string& path) const;                      // true on 200
  void upload(const std::string& path, const std::string& file) const;  // POST a file's bytes
};

}  // namespace pl::cli
