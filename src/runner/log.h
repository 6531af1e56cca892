// The runner's log: one line per event on stderr, with a UTC timestamp, so the
// server that spawned the runner can forward or parse it line by line.
#pragma once

#include <fmt/core.h>

#include <string_view>

namespace pl::runner {

void log_line(std::string_view msg);

template <class... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  log_line(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace pl::runner
