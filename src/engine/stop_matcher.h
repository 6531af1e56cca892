// Stop strings over streamed text. Text that could still be the start of a
// stop string is held back until it is known not to be, so a client never sees
// part of a stop string; once one appears, the text before it is released and
// generation stops.
#pragma once

#include <string>
#include <vector>

namespace pl {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends text; returns what may be sent now. Sets stopped() when a stop
  // string has appeared (the returned text ends right before it).
  std::string push(const std::string& text);
  // The held-back text, at the end of generation without a stop.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace pl
