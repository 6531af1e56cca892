// The engine's counters in the Prometheus text exposition format (0.0.4), for
// GET /metrics. Built from an EngineStats snapshot only, so a scrape never
// waits for a forward pass.
#pragma once

#include <string>

#include "engine/engine.h"

namespace pl::runner {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4";

std::string metrics_text(const EngineStats& s);

}  // namespace pl::runner
