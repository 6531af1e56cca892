// OLLAMA_HOST's forms, with Ollama's defaults: 11434 without a scheme, 80 with
// http://, 443 with https://; a bare IPv6 address is a host, not host:port.
#include <gtest/gtest.h>

#include "core/error.h"
#include "server/server.h"

namespace pl::server {
namespace {

void expect(const std::string& value, const std::string& scheme, const std::string& host, int port) {
  const HostSpec h = parse_host(value);
  EXPECT_EQ(h.scheme, scheme) << value;
  EXPECT_EQ(h.host, host) << value;
  EXPECT_EQ(h.port, port) << value;
}

TEST(Host, OllamaForms) {
  expect("0.0.0.0", "http", "0.0.0.0", 11434);
  expect(":8080", "http", "127.0.0.1", 8080);
  expect("10.0.0.1:11500", "http", "10.0.0.1", 11500);
  expect("example.com", "http", "example.com", 11434);
  expect("http://10.0.0.1:11434", "http", "10.0.0.1", 11434);
  expect("http://10.0.0.1", "http", "10.0.0.1", 80);
  expect("https://ollama.example.com", "https", "ollama.example.com", 443);
  expect("https://ollama.example.com:8443/", "https", "ollama.example.com", 8443);
  expect("[::1]:11500", "http", "::1", 11500);
  expect("[::]", "http", "::", 11434);
  expect("::1", "http", "::1", 11434);  // bare IPv6: no port in it
  expect("fe80::1", "http", "fe80::1", 11434);
}

TEST(Host, BadFormsAreErrors) {
  for (const char* bad : {"127.0.0.1:99999", "127.0.0.1:x", "ftp://host", "[::1", "[::1]x", "host:1/prefix"})
    EXPECT_THROW(parse_host(bad), Error) << bad;
}

}  // namespace
}  // namespace pl::server
