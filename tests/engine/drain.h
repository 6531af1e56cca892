// Reads a request's events to the end (the engine tests' common helper).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace pl::test {

struct Result {
  std::vector<int32_t> tokens;
  std::string text;
  Event last;  // the final event (done)
};

inline Result drain(Request& r) {
  Result out;
  Event e;
  while (r.next(e, std::chrono::milliseconds(60000))) {
    out.tokens.insert(out.tokens.end(), e.tokens.begin(), e.tokens.end());
    out.text += e.text;
    if (e.done) {
      out.last = e;
      break;
    }
  }
  EXPECT_TRUE(out.last.done) << "request did not finish";
  return out;
}

}  // namespace pl::test
